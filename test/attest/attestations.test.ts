// Attestations over the management API and /v2: the server signs what a pipeline reports and stores it as a
// referrer of the image; environments that require attestations refuse release, promotion and rollback of
// digests without a verified one — also when the attestation was altered, forged, or moved to another image.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ATTESTATION_ARTIFACT_TYPE, DSSE_MEDIA_TYPE } from '../../src/attest/artifact.js';
import { IN_TOTO_PAYLOAD_TYPE, signEnvelope, type Envelope } from '../../src/attest/dsse.js';
import { keyIdOf } from '../../src/attest/keyring.js';
import { predicateTypeOf, statementFor } from '../../src/attest/statement.js';
import { OCI_MANIFEST } from '../../src/oci/media-types.js';
import { digestOf, expectError, pushBlob, putManifest, startRegistry, type Registry } from '../server/v2-harness.js';
import { api, errorMessage, pushImage } from '../delivery/delivery-harness.js';

const APP = 'shop/api';

/** A passing tests predicate for the image whose manifest is `manifest`. */
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
    ...overrides,
  };
}

async function configOf(r: Registry, digest: string): Promise<string> {
  const res = await r.req(`/v2/${APP}/manifests/${digest}`, { headers: { accept: OCI_MANIFEST } });
  return ((await res.json()) as { config: { digest: string } }).config.digest;
}

/** Pushes an attestation artifact by hand, as anyone with push access could: envelope blob + manifest. */
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

describe('attestations and the release gate', () => {
  let r: Registry;
  const d: Record<string, string> = {};
  let attestationOfA: string;
  const forger = generateKeyPairSync('ed25519');

  before(async () => {
    r = await startRegistry();
    for (const tag of ['a', 'b', 'c', 'd']) d[tag] = await pushImage(r, APP, tag);
    await api(r, 'POST', `/api/v1/apps/${APP}/environments`, { name: 'staging' }, 201);
    await api(r, 'POST', `/api/v1/apps/${APP}/environments`, { name: 'qa', requires: ['tests'] }, 201);
  });
  after(() => r.close());

  it('stores the requirement on the environment and refuses unknown kinds', async () => {
    const env = await api(r, 'GET', `/api/v1/apps/${APP}/environments/qa`, undefined, 200);
    assert.deepEqual(env.body.requires, ['tests']);
    const staging = await api(r, 'GET', `/api/v1/apps/${APP}/environments/staging`, undefined, 200);
    assert.deepEqual(staging.body.requires, []);
    const bad = await api(r, 'POST', `/api/v1/apps/${APP}/environments`, { name: 'uat', requires: ['Tests!'] });
    assert.equal(bad.status, 400);
    assert.match(errorMessage(bad.body), /invalid attestation kind/);
  });

  it('refuses to release an unattested digest, naming what is missing', async () => {
    const res = await api(r, 'POST', `/api/v1/apps/${APP}/releases`, { environment: 'qa', ref: 'a' });
    assert.equal(res.status, 403);
    assert.match(errorMessage(res.body), new RegExp(`release to ${APP}/qa refused: it requires verified 'tests' attestations of ${d.a}; missing: 'tests' \\(no such attestation\\)`));
    const releases = await api(r, 'GET', `/api/v1/apps/${APP}/releases?environment=qa`, undefined, 200);
    assert.deepEqual(releases.body, [], 'a refused release leaves no row');
  });

  it('refuses to attest what the server cannot confirm', async () => {
    const config = await configOf(r, d.a!);
    const post = (body: unknown) => api(r, 'POST', `/api/v1/apps/${APP}/attestations`, body);
    const unknown = await post({ digest: `sha256:${'0'.repeat(64)}`, kind: 'tests', predicate: testsPredicate(config) });
    assert.equal(unknown.status, 404);
    const otherImage = await post({ digest: d.a, kind: 'tests', predicate: testsPredicate(await configOf(r, d.b!)) });
    assert.equal(otherImage.status, 403);
    assert.match(errorMessage(otherImage.body), /the tests ran in image/);
    const failing = testsPredicate(config, { steps: [{ name: 'unit', kind: 'test', command: ['false'], exitCode: 1, durationMs: 5 }] });
    const failed = await post({ digest: d.a, kind: 'tests', predicate: failing });
    assert.equal(failed.status, 403);
    assert.match(errorMessage(failed.body), /unit exited with 1/);
    const noTests = await post({ digest: d.a, kind: 'tests', predicate: testsPredicate(config, { steps: [{ name: 'build', kind: 'build', durationMs: 1 }] }) });
    assert.equal(noTests.status, 403);
    const forgedBuilder = await post({ digest: d.a, kind: 'tests', predicate: { ...testsPredicate(config), builder: { id: 'user:someone-else' } } });
    assert.equal(forgedBuilder.status, 400, 'the builder is the server’s to record');
    const referrers = await (await r.req(`/v2/${APP}/referrers/${d.a}`)).json();
    assert.deepEqual((referrers as { manifests: unknown[] }).manifests, [], 'nothing refused was stored');
  });

  it('signs a report of passing tests and stores it as a referrer of the digest', async () => {
    const config = await configOf(r, d.a!);
    const res = await api(r, 'POST', `/api/v1/apps/${APP}/attestations`, { digest: d.a, kind: 'tests', predicate: testsPredicate(config) }, 201);
    attestationOfA = res.body.digest;
    assert.equal(res.body.subject, d.a);
    assert.equal(res.body.predicateType, predicateTypeOf('tests'));

    const index = (await (await r.req(`/v2/${APP}/referrers/${d.a}`)).json()) as { manifests: { digest: string; artifactType: string }[] };
    assert.deepEqual(index.manifests.map((m) => [m.digest, m.artifactType]), [[attestationOfA, ATTESTATION_ARTIFACT_TYPE]]);

    // The stored envelope verifies with the key the server publishes, outside Wharf's own code path.
    const keys = await api(r, 'GET', '/api/v1/attestations/keys', undefined, 200);
    const envelope = await envelopeOf(r, attestationOfA);
    const { createPublicKey, verify } = await import('node:crypto');
    const { pae } = await import('../../src/attest/dsse.js');
    const pub = createPublicKey(keys.body[0].publicKey);
    assert.ok(verify(null, pae(envelope.payloadType, Buffer.from(envelope.payload, 'base64')), pub, Buffer.from(envelope.signatures[0]!.sig, 'base64')));
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString());
    assert.equal(statement._type, 'https://in-toto.io/Statement/v1');
    assert.deepEqual(statement.subject, [{ name: APP, digest: { sha256: d.a!.slice('sha256:'.length) } }]);
    assert.equal(statement.predicate.commit, 'abc1234def');
    assert.deepEqual(statement.predicate.image, { id: config });
    assert.equal(statement.predicate.steps[1].exitCode, 0);
    assert.equal(statement.predicate.builder.id, 'anonymous:anonymous');
    assert.match(statement.predicate.timestamp, /^\d{4}-\d\d-\d\dT/);

    const listed = await api(r, 'GET', `/api/v1/apps/${APP}/attestations/a`, undefined, 200);
    assert.equal(listed.body.digest, d.a, 'a tag is resolved to its digest');
    assert.equal(listed.body.attestations.length, 1);
    assert.equal(listed.body.attestations[0].verified, true);
    assert.equal(listed.body.attestations[0].kind, 'tests');
    assert.equal(listed.body.attestations[0].commit, 'abc1234def');
  });

  it('releases an attested digest, and the releases list shows it attested', async () => {
    const rel = await api(r, 'POST', `/api/v1/apps/${APP}/releases`, { environment: 'qa', ref: d.a }, 201);
    assert.equal(rel.body.digest, d.a);
    await api(r, 'POST', `/api/v1/apps/${APP}/releases`, { environment: 'staging', ref: 'b' }, 201);
    const list = await api(r, 'GET', `/api/v1/apps/${APP}/releases`, undefined, 200);
    assert.deepEqual(
      list.body.map((x: { environment: string; attestations: string[] }) => [x.environment, x.attestations]),
      [
        ['staging', []],
        ['qa', ['tests']],
      ],
    );
  });

  it('refuses to promote an unattested digest into a protected environment', async () => {
    const res = await api(r, 'POST', `/api/v1/apps/${APP}/promote`, { from: 'staging', to: 'qa' });
    assert.equal(res.status, 403);
    assert.match(errorMessage(res.body), /^promotion to shop\/api\/qa refused: .*missing: 'tests'/);
  });

  it('refuses a rollback to an unattested digest once the environment requires attestations', async () => {
    await api(r, 'POST', `/api/v1/apps/${APP}/environments`, { name: 'legacy' }, 201);
    await api(r, 'POST', `/api/v1/apps/${APP}/releases`, { environment: 'legacy', ref: 'b' }, 201);
    await api(r, 'POST', `/api/v1/apps/${APP}/releases`, { environment: 'legacy', ref: 'a' }, 201);
    await r.wharf.delivery.ensureEnvironment(APP, 'legacy', { requires: ['tests'] });
    const res = await api(r, 'POST', `/api/v1/apps/${APP}/rollback`, { environment: 'legacy' });
    assert.equal(res.status, 403);
    assert.match(errorMessage(res.body), new RegExp(`^rollback to ${APP}/legacy refused: .*${d.b}`));
    const env = await api(r, 'GET', `/api/v1/apps/${APP}/environments/legacy`, undefined, 200);
    assert.equal(env.body.current.digest, d.a, 'the environment stays where it was');
  });

  it('refuses an altered attestation: payload changed, signature kept', async () => {
    const genuine = await envelopeOf(r, attestationOfA);
    const statement = JSON.parse(Buffer.from(genuine.payload, 'base64').toString());
    statement.subject = [{ name: APP, digest: { sha256: d.b!.slice('sha256:'.length) } }];
    const altered = { ...genuine, payload: Buffer.from(JSON.stringify(statement)).toString('base64') };
    const artifact = await pushArtifact(r, d.b!, altered);
    const listed = await api(r, 'GET', `/api/v1/apps/${APP}/attestations/${d.b}`, undefined, 200);
    assert.equal(listed.body.attestations.length, 1);
    assert.equal(listed.body.attestations[0].digest, artifact);
    assert.equal(listed.body.attestations[0].verified, false);
    assert.match(listed.body.attestations[0].reason, /altered after signing/);
    const res = await api(r, 'POST', `/api/v1/apps/${APP}/releases`, { environment: 'qa', ref: d.b });
    assert.equal(res.status, 403);
    assert.match(errorMessage(res.body), new RegExp(`missing: 'tests' \\(attestation ${artifact} does not verify: .*altered after signing`));
  });

  it('refuses a genuine attestation attached to another image', async () => {
    const genuine = await envelopeOf(r, attestationOfA);
    const artifact = await pushArtifact(r, d.d!, genuine);
    const listed = await api(r, 'GET', `/api/v1/apps/${APP}/attestations/${d.d}`, undefined, 200);
    assert.equal(listed.body.attestations[0].digest, artifact);
    assert.equal(listed.body.attestations[0].verified, false);
    assert.match(listed.body.attestations[0].reason, /about another image/);
    assert.equal((await api(r, 'POST', `/api/v1/apps/${APP}/releases`, { environment: 'qa', ref: d.d })).status, 403);
  });

  it('refuses an attestation signed by a key the server does not trust, and accepts it once trusted', async () => {
    const signer = { keyid: keyIdOf(forger.publicKey), privateKey: forger.privateKey };
    const statement = statementFor(APP, d.c!, predicateTypeOf('tests'), testsPredicate(await configOf(r, d.c!)));
    const forged = signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), signer);
    await pushArtifact(r, d.c!, forged);
    const listed = await api(r, 'GET', `/api/v1/apps/${APP}/attestations/${d.c}`, undefined, 200);
    assert.equal(listed.body.attestations[0].verified, false);
    assert.match(listed.body.attestations[0].reason, /not signed by a trusted key/);
    const refused = await api(r, 'POST', `/api/v1/apps/${APP}/releases`, { environment: 'qa', ref: d.c });
    assert.equal(refused.status, 403);
    assert.match(errorMessage(refused.body), /not signed by a trusted key/);

    // An operator trusts the CI's own key: after a restart its attestations count; the server's key is kept.
    await writeFile(join(r.dataDir, 'attest', 'trusted', 'ci.pem'), forger.publicKey.export({ type: 'spki', format: 'pem' }));
    await r.stop();
    r = await startRegistry({ dataDir: r.dataDir });
    const again = await api(r, 'GET', `/api/v1/apps/${APP}/attestations/${d.c}`, undefined, 200);
    assert.equal(again.body.attestations[0].verified, true);
    assert.equal(again.body.attestations[0].signer.name, 'ci');
    await api(r, 'POST', `/api/v1/apps/${APP}/releases`, { environment: 'qa', ref: d.c }, 201);
    const a = await api(r, 'GET', `/api/v1/apps/${APP}/attestations/${d.a}`, undefined, 200);
    assert.equal(a.body.attestations[0].verified, true, 'the server key survives a restart');
  });

  it('answers 404 for a tag that does not exist', async () => {
    await expectError(await r.req(`/api/v1/apps/${APP}/attestations/nope`), 404, 'MANIFEST_UNKNOWN');
  });
});
