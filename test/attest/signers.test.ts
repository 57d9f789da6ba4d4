// Who may decide which keys are trusted: only a global admin (API, CLI) or the server config file. An app's own
// admin, a CI that may push and release, and an anonymous caller are refused — and a key one of them tried to
// register verifies nothing. Every attempt is an audit row.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { IN_TOTO_PAYLOAD_TYPE, signEnvelope } from '../../src/attest/dsse.js';
import { keyIdOf } from '../../src/attest/signers.js';
import { predicateTypeOf, statementFor } from '../../src/attest/statement.js';
import { ADMIN_PASSWORD, auditRows, basic, member, pushImage, startAuthHub, type AuthHub, type PushedImage } from '../auth/auth-harness.js';

const APP = 'shop/web';

function newKey() {
  const pair = generateKeyPairSync('ed25519');
  return { ...pair, pem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

const fromConfig = newKey();

describe('trusted signers are a global admin’s to register', () => {
  let hub: AuthHub;
  let image: PushedImage;
  const admin = basic('admin', ADMIN_PASSWORD);
  let appAdmin: string;
  let ci: string;
  const json = (method: string, path: string, auth: string | undefined, body?: unknown) =>
    hub.req(path, { method, ...(auth ? { auth } : {}), headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const registration = (name: string, pem: string) => ({ name, publicKey: pem, apps: [APP], kinds: ['tests'], environments: ['*'] });

  before(async () => {
    const indented = fromConfig.pem.trim().split('\n').map((l) => `      ${l}`).join('\n');
    hub = await startAuthHub(`signers:\n  - name: release-bot\n    apps: ['shop/*']\n    kinds: [tests]\n    environments: [production]\n    publicKey: |\n${indented}\n`);
    image = await pushImage(hub, admin, APP, 'v1');
    appAdmin = await member(hub, 'owner', 'pull,push,delete,release,admin', 'shop/*');
    ci = await member(hub, 'ci', 'pull,push,release', APP);
  });
  after(() => hub.close());

  it('refuses a key registered by an app admin, a CI identity or nobody, and that key then verifies nothing', async () => {
    const rogue = newKey();
    for (const [who, auth, status] of [
      ['app admin', appAdmin, 403],
      ['ci', ci, 403],
      ['anonymous', undefined, 401],
    ] as const) {
      const res = await json('POST', '/api/v1/signers', auth, registration(`rogue-${who.replace(' ', '-')}`, rogue.pem));
      assert.equal(res.status, status, `${who}: ${await res.text()}`);
    }
    const signers = (await (await json('GET', '/api/v1/signers', ci)).json()) as { name: string }[];
    assert.deepEqual(signers.map((s) => s.name), ['release-bot'], 'anyone signed in may read the public keys; nothing was added');

    const statement = statementFor(APP, image.digest, predicateTypeOf('tests'), {
      commit: 'abc1234',
      runId: 'r',
      image: { id: image.config },
      steps: [{ name: 'unit', kind: 'test', exitCode: 0, durationMs: 1 }],
    });
    const envelope = signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), { keyid: keyIdOf(rogue.publicKey), privateKey: rogue.privateKey });
    const res = await json('POST', `/api/v1/apps/${APP}/attestations`, ci, { envelope });
    assert.equal(res.status, 403);
    assert.match(await res.text(), /not signed by a trusted key/);

    const rows = await auditRows(hub, { action: 'signer.add' }, 2);
    assert.deepEqual(rows.map((r) => [r.actor, r.result]).sort(), [
      ['ci', 'denied'],
      ['owner', 'denied'],
    ]);
  });

  it('refuses revocation by anyone but a global admin, and config-file signers over the API altogether', async () => {
    await json('POST', '/api/v1/signers', admin, registration('ci-key', newKey().pem)).then(async (r) => assert.equal(r.status, 201, await r.text()));
    for (const auth of [appAdmin, ci]) assert.equal((await json('DELETE', '/api/v1/signers/ci-key', auth)).status, 403);
    const fromFile = await json('DELETE', '/api/v1/signers/release-bot', admin);
    assert.equal(fromFile.status, 409);
    assert.match(await fromFile.text(), /comes from the server config file/);
    const revoked = await json('DELETE', '/api/v1/signers/ci-key', admin);
    assert.equal(revoked.status, 200);
    const list = (await (await json('GET', '/api/v1/signers', admin)).json()) as { name: string; source: string; revokedBy: string | null; createdBy: string | null; keyid: string }[];
    assert.deepEqual(list.map((s) => [s.name, s.source, s.createdBy, s.revokedBy]), [
      ['ci-key', 'api', 'admin', 'admin'],
      ['release-bot', 'config', null, null],
    ]);
    assert.equal(list[1]!.keyid, keyIdOf(fromConfig.publicKey));
    const rows = await auditRows(hub, { action: 'signer.revoke' }, 4);
    assert.deepEqual(rows.map((r) => [r.actor, r.target, r.result]).sort(), [
      ['admin', 'ci-key', 'ok'],
      ['admin', 'release-bot', 'failed'],
      ['ci', 'ci-key', 'denied'],
      ['owner', 'ci-key', 'denied'],
    ]);
  });

  it('a config-file signer signs for what the file says', async () => {
    const statement = statementFor(APP, image.digest, predicateTypeOf('tests'), {
      commit: 'abc1234',
      runId: 'r',
      image: { id: image.config },
      steps: [{ name: 'unit', kind: 'test', exitCode: 0, durationMs: 1 }],
    });
    const envelope = signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), { keyid: keyIdOf(fromConfig.publicKey), privateKey: fromConfig.privateKey });
    const res = await json('POST', `/api/v1/apps/${APP}/attestations`, ci, { envelope });
    assert.equal(res.status, 201, await res.text());
    const list = (await (await json('GET', `/api/v1/apps/${APP}/attestations/v1?environment=production`, ci)).json()) as { attestations: { verified: boolean; signer: { name: string } }[] };
    assert.deepEqual(list.attestations.map((a) => [a.verified, a.signer.name]), [[true, 'release-bot']]);
    const staging = (await (await json('GET', `/api/v1/apps/${APP}/attestations/v1?environment=staging`, ci)).json()) as { attestations: { verified: boolean; reason: string }[] };
    assert.deepEqual(staging.attestations.map((a) => a.verified), [false]);
    assert.match(staging.attestations[0]!.reason, /not trusted for the environment staging \(only production\)/);
  });
});
