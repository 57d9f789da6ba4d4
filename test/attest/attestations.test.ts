// Signed attestations over the management API and /v2: an envelope counts only when a signature verifies
// under a signer a global admin trusts for that app, kind and environment, and the signed statement names
// the digest. Each way to get a digest past the gate without that is refused: no signature, an untrusted key,
// a genuine envelope moved to another image, an altered payload, a key trusted for another app, kind or
// environment, a revoked key — and the server signs nothing for anyone.
import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ATTESTATION_ARTIFACT_TYPE, DSSE_MEDIA_TYPE } from '../../src/attest/artifact.js';
import { IN_TOTO_PAYLOAD_TYPE, signEnvelope, type Envelope } from '../../src/attest/dsse.js';
import { keyIdOf } from '../../src/attest/signers.js';
import { predicateTypeOf, statementFor } from '../../src/attest/statement.js';
import { OCI_MANIFEST } from '../../src/oci/media-types.js';
import { digestOf, expectError, pushBlob, putManifest, startRegistry, type Registry } from '../server/v2-harness.js';
import { api, errorMessage, pushImage } from '../delivery/delivery-harness.js';

const APP = 'shop/api';

interface Key {
  privateKey: KeyObject;
  publicKey: KeyObject;
  pem: string;
}

function newKey(type: 'ed25519' | 'ec' = 'ed25519'): Key {
  const pair = type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { ...pair, pem: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** A passing tests predicate for the image whose config is `configDigest`. */
function testsPredicate(configDigest: string, overrides: Record<string, unknown> = {}) {
  return {
    commit: 'abc1234def',
    runId: 'run-1',
    image: { id: configDigest },
    steps: [
      { name: 'build', kind: 'build', durationMs: 1200 },
      { name: 'unit', kind: 'test', command: ['/bin/sh', '-c', 'make test'], exitCode: 0, durationMs: 300 },
    ],
    startedAt: '2024-01-01T00:00:00.000Z',
    finishedAt: '2024-01-01T00:00:02.000Z',
    ci: { system: 'ci', url: 'https://ci.example/run/1' },
    ...overrides,
  };
}

function sign(key: Key, subject: string, kind = 'tests', predicate: Record<string, unknown> = {}, app = APP): Envelope {
  const statement = statementFor(app, subject, predicateTypeOf(kind), predicate);
  return signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), { keyid: keyIdOf(key.publicKey), privateKey: key.privateKey });
}

async function configOf(r: Registry, digest: string): Promise<string> {
  const res = await r.req(`/v2/${APP}/manifests/${digest}`, { headers: { accept: OCI_MANIFEST } });
  return ((await res.json()) as { config: { digest: string } }).config.digest;
}

/** Pushes an attestation artifact by hand, as anyone with push access (or cosign, oras) could: envelope blob + manifest. */
async function pushArtifact(r: Registry, subject: string, envelope: Envelope | Buffer): Promise<string> {
  const bytes = Buffer.isBuffer(envelope) ? envelope : Buffer.from(JSON.stringify(envelope));
  await pushBlob(r, APP, bytes);
  await pushBlob(r, APP, '{}');
  const subjectRes = await r.req(`/v2/${APP}/manifests/${subject}`, { headers: { accept: OCI_MANIFEST } });
  const subjectBody = Buffer.from(await subjectRes.arrayBuffer());
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: ATTESTATION_ARTIFACT_TYPE,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf('{}'), size: 2 },
    layers: [{ mediaType: DSSE_MEDIA_TYPE, digest: digestOf(bytes), size: bytes.length }],
    subject: { mediaType: OCI_MANIFEST, digest: subject, size: subjectBody.length },
    annotations: { 'dev.wharf.attestation.kind': 'tests' },
  });
  const digest = digestOf(manifest);
  const res = await putManifest(r, APP, digest, manifest);
  assert.equal(res.status, 201, await res.text());
  return digest;
}

async function envelopeOf(r: Registry, attestation: string): Promise<Envelope> {
  const m = (await (await r.req(`/v2/${APP}/manifests/${attestation}`, { headers: { accept: OCI_MANIFEST } })).json()) as { layers: { digest: string }[] };
  return (await (await r.req(`/v2/${APP}/blobs/${m.layers[0]!.digest}`)).json()) as Envelope;
}

describe('signed attestations and the release gate', () => {
  let r: Registry;
  const d: Record<string, string> = {};
  const ci = newKey();
  const forger = newKey();
  const release = (environment: string, ref: string) => api(r, 'POST', `/api/v1/apps/${APP}/releases`, { environment, ref });
  const listed = async (ref: string, environment?: string) =>
    (await api(r, 'GET', `/api/v1/apps/${APP}/attestations/${ref}${environment ? `?environment=${environment}` : ''}`, undefined, 200)).body as {
      digest: string;
      attestations: { digest: string; kind: string; verified: boolean; reason?: string; signer?: { name: string; revoked: boolean }; commit?: string }[];
    };
  const refusedBecause = async (environment: string, ref: string, why: RegExp) => {
    const res = await release(environment, ref);
    assert.equal(res.status, 403, JSON.stringify(res.body));
    assert.match(errorMessage(res.body), why);
  };

  before(async () => {
    r = await startRegistry();
    for (const tag of ['a', 'b', 'c', 'd', 'e', 'f']) d[tag] = await pushImage(r, APP, tag);
    await pushImage(r, 'shop/other', 'x');
    await api(r, 'POST', `/api/v1/apps/${APP}/environments`, { name: 'staging' }, 201);
    await api(r, 'POST', `/api/v1/apps/${APP}/environments`, { name: 'qa', requires: ['tests'] }, 201);
    await api(r, 'POST', `/api/v1/apps/${APP}/environments`, { name: 'production', requires: ['tests'] }, 201);
    const added = await api(r, 'POST', '/api/v1/signers', { name: 'ci', publicKey: ci.pem, apps: ['shop/*'], kinds: ['tests'], environments: ['qa', 'production'] }, 201);
    assert.equal(added.body.keyid, keyIdOf(ci.publicKey));
    assert.equal(added.body.algorithm, 'ed25519');
  });
  after(() => r.close());

  it('refuses to release a digest without any attestation, naming what is missing', async () => {
    await refusedBecause('qa', 'a', new RegExp(`^release to ${APP}/qa refused: it requires verified 'tests' attestations of ${d.a}; missing: 'tests' \\(no such attestation\\)$`));
    const releases = await api(r, 'GET', `/api/v1/apps/${APP}/releases?environment=qa`, undefined, 200);
    assert.deepEqual(releases.body, [], 'a refused release leaves no row');
  });

  it('the server signs nothing: a report of passing tests with push rights alone is refused', async () => {
    const config = await configOf(r, d.a!);
    const old = await api(r, 'POST', `/api/v1/apps/${APP}/attestations`, { digest: d.a, kind: 'tests', predicate: testsPredicate(config) });
    assert.equal(old.status, 400, JSON.stringify(old.body));
    const statement = statementFor(APP, d.a!, predicateTypeOf('tests'), testsPredicate(config));
    const unsigned = { payload: Buffer.from(JSON.stringify(statement)).toString('base64'), payloadType: IN_TOTO_PAYLOAD_TYPE, signatures: [] };
    const res = await api(r, 'POST', `/api/v1/apps/${APP}/attestations`, { envelope: unsigned });
    assert.equal(res.status, 403);
    assert.match(errorMessage(res.body), /^the attestation does not verify: the envelope carries no signature$/);
    const forged = await api(r, 'POST', `/api/v1/apps/${APP}/attestations`, { envelope: sign(forger, d.a!, 'tests', testsPredicate(config)) });
    assert.equal(forged.status, 403);
    assert.match(errorMessage(forged.body), /not signed by a trusted key/);
    const referrers = (await (await r.req(`/v2/${APP}/referrers/${d.a}`)).json()) as { manifests: unknown[] };
    assert.deepEqual(referrers.manifests, [], 'nothing refused was stored');
  });

  it('an unsigned envelope pushed over /v2 is listed, does not verify and does not pass the gate', async () => {
    const statement = statementFor(APP, d.a!, predicateTypeOf('tests'), testsPredicate(await configOf(r, d.a!)));
    const artifact = await pushArtifact(r, d.a!, { payload: Buffer.from(JSON.stringify(statement)).toString('base64'), payloadType: IN_TOTO_PAYLOAD_TYPE, signatures: [] });
    const l = await listed('a');
    assert.deepEqual(l.attestations.map((a) => [a.digest, a.kind, a.verified, a.reason]), [[artifact, 'tests', false, 'the envelope carries no signature']]);
    await refusedBecause('qa', 'a', new RegExp(`missing: 'tests' \\(attestation ${artifact} does not verify: the envelope carries no signature\\)`));
  });

  it('stores an envelope signed by the trusted CI key as a referrer, and the gate lets that digest through', async () => {
    const config = await configOf(r, d.a!);
    const envelope = sign(ci, d.a!, 'tests', testsPredicate(config));
    const res = await api(r, 'POST', `/api/v1/apps/${APP}/attestations`, { envelope }, 201);
    assert.deepEqual([res.body.subject, res.body.kind, res.body.signer, res.body.predicateType], [d.a, 'tests', 'ci', predicateTypeOf('tests')]);
    const index = (await (await r.req(`/v2/${APP}/referrers/${d.a}`)).json()) as { manifests: { digest: string; artifactType: string }[] };
    assert.ok(index.manifests.some((m) => m.digest === res.body.digest && m.artifactType === ATTESTATION_ARTIFACT_TYPE));
    assert.deepEqual(await envelopeOf(r, res.body.digest), envelope, 'the envelope is stored as signed');

    const l = await listed('a', 'production');
    const ok = l.attestations.find((a) => a.digest === res.body.digest)!;
    assert.deepEqual([ok.verified, ok.kind, ok.signer?.name, ok.commit], [true, 'tests', 'ci', 'abc1234def']);
    const rel = await release('qa', d.a!);
    assert.equal(rel.status, 201, JSON.stringify(rel.body));
    const list = await api(r, 'GET', `/api/v1/apps/${APP}/releases`, undefined, 200);
    assert.deepEqual(list.body.map((x: { environment: string; attestations: string[] }) => [x.environment, x.attestations]), [['qa', ['tests']]]);
  });

  it('refuses a signed report of tests that did not pass or ran in another image', async () => {
    const config = await configOf(r, d.b!);
    const failing = sign(ci, d.b!, 'tests', testsPredicate(config, { steps: [{ name: 'unit', kind: 'test', command: ['false'], exitCode: 1, durationMs: 5 }] }));
    const res = await api(r, 'POST', `/api/v1/apps/${APP}/attestations`, { envelope: failing });
    assert.equal(res.status, 403);
    assert.match(errorMessage(res.body), /unit exited with 1/);
    const elsewhere = sign(ci, d.b!, 'tests', testsPredicate(await configOf(r, d.c!)));
    const res2 = await api(r, 'POST', `/api/v1/apps/${APP}/attestations`, { envelope: elsewhere });
    assert.equal(res2.status, 403);
    assert.match(errorMessage(res2.body), /the tests ran in image/);
    const unknown = await api(r, 'POST', `/api/v1/apps/${APP}/attestations`, { envelope: sign(ci, `sha256:${'0'.repeat(64)}`, 'tests', testsPredicate(config)) });
    assert.equal(unknown.status, 404);
  });

  it('refuses an altered attestation: payload changed, signature kept', async () => {
    const [genuine] = (await listed('a')).attestations.filter((a) => a.verified);
    const envelope = await envelopeOf(r, genuine!.digest);
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString());
    statement.subject = [{ name: APP, digest: { sha256: d.b!.slice('sha256:'.length) } }];
    const altered = { ...envelope, payload: Buffer.from(JSON.stringify(statement)).toString('base64') };
    const artifact = await pushArtifact(r, d.b!, altered);
    const l = await listed(d.b!);
    assert.deepEqual(l.attestations.map((a) => [a.digest, a.verified]), [[artifact, false]]);
    assert.match(l.attestations[0]!.reason!, /altered after signing/);
    await refusedBecause('qa', d.b!, new RegExp(`missing: 'tests' \\(attestation ${artifact} does not verify: .*altered after signing`));
    const viaApi = await api(r, 'POST', `/api/v1/apps/${APP}/attestations`, { envelope: altered });
    assert.equal(viaApi.status, 403);
  });

  it('refuses a genuine attestation attached to another image (the signature covers another digest)', async () => {
    const [genuine] = (await listed('a')).attestations.filter((a) => a.verified);
    const artifact = await pushArtifact(r, d.d!, await envelopeOf(r, genuine!.digest));
    const l = await listed(d.d!);
    assert.deepEqual(l.attestations.map((a) => [a.digest, a.verified, a.signer?.name]), [[artifact, false, 'ci']]);
    assert.match(l.attestations[0]!.reason!, new RegExp(`the signed statement is about another image, not ${d.d}`));
    await refusedBecause('qa', d.d!, /about another image/);
  });

  it('refuses an attestation signed by a key nobody registered, also when it claims the trusted key id', async () => {
    const forged = sign(forger, d.c!, 'tests', testsPredicate(await configOf(r, d.c!)));
    await pushArtifact(r, d.c!, forged);
    await pushArtifact(r, d.c!, { ...forged, signatures: [{ keyid: keyIdOf(ci.publicKey), sig: forged.signatures[0]!.sig }] });
    const l = await listed(d.c!);
    assert.deepEqual(l.attestations.map((a) => a.verified), [false, false]);
    assert.ok(l.attestations.some((a) => /^not signed by a trusted key \(signed by sha256:/.test(a.reason!)), JSON.stringify(l));
    assert.ok(l.attestations.some((a) => /altered after signing/.test(a.reason!)), 'a lying key id is a signature that does not match');
    await refusedBecause('qa', d.c!, /not signed by a trusted key/);
  });

  it('a key counts only for the apps, kinds and environments a global admin named', async () => {
    const narrow = newKey();
    await api(r, 'POST', '/api/v1/signers', { name: 'staging-ci', publicKey: narrow.pem, apps: [APP], kinds: ['sbom'], environments: ['staging', 'qa'] }, 201);
    // for the app, but not for tests
    await pushArtifact(r, d.e!, sign(narrow, d.e!, 'tests', testsPredicate(await configOf(r, d.e!))));
    await refusedBecause('qa', d.e!, /signed by staging-ci, which is not trusted for 'tests' attestations \(only sbom\)/);
    // sbom is what it may sign, for qa but not for production
    await r.wharf.delivery.ensureEnvironment(APP, 'qa', { requires: ['tests', 'sbom'] });
    await pushArtifact(r, d.a!, sign(narrow, d.a!, 'sbom', { packages: [] }));
    assert.equal((await release('qa', d.a!)).status, 201, 'tests by ci and sbom by staging-ci: qa takes it');
    await r.wharf.delivery.ensureEnvironment(APP, 'production', { requires: ['tests', 'sbom'] });
    await refusedBecause('production', d.a!, /missing: 'sbom' \(attestation sha256:[0-9a-f]{64} does not verify: signed by staging-ci, which is not trusted for the environment production \(only staging, qa\)\)/);
    await r.wharf.delivery.ensureEnvironment(APP, 'production', { requires: ['tests'] });
    await r.wharf.delivery.ensureEnvironment(APP, 'qa', { requires: ['tests'] });
    // a key for shop/api signs nothing for shop/other
    const x = (await api(r, 'GET', '/api/v1/apps/shop/other/attestations/x', undefined, 200)).body.digest as string;
    const env = sign(narrow, x, 'sbom', { packages: [] }, 'shop/other');
    const res = await api(r, 'POST', '/api/v1/apps/shop/other/attestations', { envelope: env });
    assert.equal(res.status, 403);
    assert.match(errorMessage(res.body), /signed by staging-ci, which is not trusted for shop\/other/);
  });

  it('wharf verify without an environment says who signed and for which environments', async () => {
    const l = await listed('a');
    const rows = l.attestations.filter((a) => a.verified).map((a) => [a.kind, a.signer?.name]);
    assert.deepEqual(rows.sort(), [['sbom', 'staging-ci'], ['tests', 'ci']]);
  });

  it('a revoked key verifies nothing from then on; its successor does (rotation)', async () => {
    await api(r, 'DELETE', '/api/v1/signers/ci', undefined, 200);
    const l = await listed('a', 'production');
    const tests = l.attestations.find((a) => a.kind === 'tests' && a.signer?.name === 'ci')!;
    assert.equal(tests.verified, false);
    assert.match(tests.reason!, /^signed by ci, a key revoked at \d{4}-/);
    assert.equal(tests.signer?.revoked, true);
    await refusedBecause('production', d.a!, /signed by ci, a key revoked at/);
    const again = await api(r, 'POST', '/api/v1/signers', { name: 'ci-again', publicKey: ci.pem, apps: ['*'], kinds: ['tests'], environments: ['*'] });
    assert.equal(again.status, 409);
    assert.match(errorMessage(again.body), /already registered as ci, and revoked/);

    const next = newKey('ec');
    const added = await api(r, 'POST', '/api/v1/signers', { name: 'ci-2', publicKey: next.pem, apps: ['shop/*'], kinds: ['tests'], environments: ['production'] }, 201);
    assert.equal(added.body.algorithm, 'ecdsa-p256');
    await api(r, 'POST', `/api/v1/apps/${APP}/attestations`, { envelope: sign(next, d.a!, 'tests', testsPredicate(await configOf(r, d.a!))) }, 201);
    assert.equal((await release('production', d.a!)).status, 201, 'an ECDSA P-256 signer (cosign.pub style) counts');
    const signers = await api(r, 'GET', '/api/v1/signers', undefined, 200);
    assert.deepEqual(
      signers.body.map((s: { name: string; revokedAt: number | null }) => [s.name, s.revokedAt !== null]),
      [
        ['ci', true],
        ['ci-2', false],
        ['staging-ci', false],
      ],
    );
  });

  it('refuses a rollback to a digest without a verified attestation once the environment requires them', async () => {
    await api(r, 'POST', `/api/v1/apps/${APP}/environments`, { name: 'legacy' }, 201);
    await release('legacy', 'f');
    await release('legacy', 'a');
    await r.wharf.delivery.ensureEnvironment(APP, 'legacy', { requires: ['tests'] });
    const res = await api(r, 'POST', `/api/v1/apps/${APP}/rollback`, { environment: 'legacy' });
    assert.equal(res.status, 403);
    assert.match(errorMessage(res.body), new RegExp(`^rollback to ${APP}/legacy refused: .*${d.f}`));
  });

  it('refuses bad signer registrations with a message', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const cases: [unknown, RegExp][] = [
      [{ name: 'x', publicKey: rsa, apps: ['*'], kinds: ['tests'], environments: ['*'] }, /a rsa key: trusted signers use Ed25519 or ECDSA P-256 keys/],
      [{ name: 'x', publicKey: 'nope', apps: ['*'], kinds: ['tests'], environments: ['*'] }, /not a PEM public key/],
      [{ name: 'x', publicKey: newKey().pem, apps: [], kinds: ['tests'], environments: ['*'] }, /name the apps/],
      [{ name: 'x', publicKey: newKey().pem, apps: ['*'], kinds: [], environments: ['*'] }, /name the attestation kinds/],
      [{ name: 'x', publicKey: newKey().pem, apps: ['*'], kinds: ['tests'], environments: [] }, /name the environments/],
      [{ name: 'Bad Name', publicKey: newKey().pem, apps: ['*'], kinds: ['tests'], environments: ['*'] }, /signer names are/],
    ];
    for (const [body, why] of cases) {
      const res = await api(r, 'POST', '/api/v1/signers', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(errorMessage(res.body), why);
    }
    const taken = await api(r, 'POST', '/api/v1/signers', { name: 'staging-ci', publicKey: newKey().pem, apps: ['*'], kinds: ['tests'], environments: ['*'] });
    assert.equal(taken.status, 409);
    await expectError(await r.req('/api/v1/signers/nobody', { method: 'DELETE' }), 404, 'NOT_FOUND');
  });

  it('answers 404 for a tag that does not exist', async () => {
    await expectError(await r.req(`/api/v1/apps/${APP}/attestations/nope`), 404, 'MANIFEST_UNKNOWN');
  });
});
