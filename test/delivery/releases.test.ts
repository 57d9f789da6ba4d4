// Environments, releases, promotion by digest, rollback and the reserved APP:ENV tags, over the HTTP API.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { expectError, putManifest, startRegistry, type Registry } from '../server/v2-harness.js';
import { api, errorMessage, pushImage } from './delivery-harness.js';

describe('environments and releases', () => {
  let r: Registry;
  const digests: Record<string, string> = {};
  before(async () => {
    r = await startRegistry();
    for (const v of ['1.0.0', '1.1.0', '1.2.0', '1.3.0']) digests[v] = await pushImage(r, 'shop/web', v);
    await api(r, 'POST', '/api/v1/apps/shop/web/environments', { name: 'staging' }, 201);
    await api(r, 'POST', '/api/v1/apps/shop/web/environments', { name: 'production', requiresPromotionFrom: 'staging', protected: true }, 201);
  });
  after(() => r.close());

  it('refuses environments that are invalid, duplicated or of an unknown app', async () => {
    await expectError(await r.req('/api/v1/apps/shop/web/environments', { method: 'POST', body: JSON.stringify({ name: 'Bad Name' }) }), 400, 'INVALID');
    await expectError(await r.req('/api/v1/apps/shop/web/environments', { method: 'POST', body: JSON.stringify({ name: 'staging' }) }), 409, 'CONFLICT');
    await expectError(await r.req('/api/v1/apps/nope/environments', { method: 'POST', body: JSON.stringify({ name: 'staging' }) }), 404, 'NAME_UNKNOWN');
    await expectError(await r.req('/api/v1/apps/shop/web/environments', { method: 'POST', body: JSON.stringify({ name: '1.0.0' }) }), 400, 'INVALID');
  });

  it('releases a tag resolved once, and the environment tag follows the release', async () => {
    const latest = await pushImage(r, 'shop/web', 'latest', 'latest-a');
    const rel = await api(r, 'POST', '/api/v1/apps/shop/web/releases', { environment: 'staging', ref: 'latest', note: 'first' }, 201);
    assert.equal(rel.body.digest, latest);
    assert.equal(rel.body.kind, 'release');
    assert.equal(rel.body.tag, 'latest');
    assert.equal(rel.body.note, 'first');
    // The tag moves afterwards; the release does not.
    const moved = await pushImage(r, 'shop/web', 'latest', 'latest-b');
    assert.notEqual(moved, latest);
    const env = await api(r, 'GET', '/api/v1/apps/shop/web/environments/staging', undefined, 200);
    assert.equal(env.body.current.digest, latest);
    const pulled = await r.req('/v2/shop/web/manifests/staging');
    assert.equal(pulled.status, 200);
    assert.equal(pulled.headers.get('docker-content-digest'), latest);
  });

  it('labels a release with its version', async () => {
    const rel = await api(r, 'POST', '/api/v1/apps/shop/web/releases', { environment: 'staging', ref: '1.1.0' }, 201);
    assert.equal(rel.body.version, '1.1.0');
    const byDigest = await api(r, 'POST', '/api/v1/apps/shop/web/releases', { environment: 'staging', ref: digests['1.2.0'] }, 201);
    assert.equal(byDigest.body.version, '1.2.0', 'a digest release is labelled with the version tag pointing at it');
    assert.equal(byDigest.body.tag, null);
  });

  it('refuses a direct release to an environment that requires promotion', async () => {
    const res = await api(r, 'POST', '/api/v1/apps/shop/web/releases', { environment: 'production', ref: '1.2.0' });
    assert.equal(res.status, 403);
    assert.match(errorMessage(res.body), /only accepts promotions from staging/);
  });

  it('promotes the digest current in the source, never re-resolving a tag', async () => {
    const staging = (await api(r, 'GET', '/api/v1/apps/shop/web/environments/staging')).body.current;
    const p = await api(r, 'POST', '/api/v1/apps/shop/web/promote', { from: 'staging', to: 'production' }, 201);
    assert.equal(p.body.kind, 'promote');
    assert.equal(p.body.digest, staging.digest);
    assert.equal(p.body.promotedFrom, staging.id);
    assert.equal((await r.req('/v2/shop/web/manifests/production', { method: 'HEAD' })).headers.get('docker-content-digest'), staging.digest);
  });

  it('refuses a promotion from an environment other than the required one', async () => {
    await api(r, 'POST', '/api/v1/apps/shop/web/environments', { name: 'qa' }, 201);
    await api(r, 'POST', '/api/v1/apps/shop/web/releases', { environment: 'qa', ref: '1.0.0' }, 201);
    const res = await api(r, 'POST', '/api/v1/apps/shop/web/promote', { from: 'qa', to: 'production' });
    assert.equal(res.status, 403);
    assert.match(errorMessage(res.body), /only accepts promotions from staging, not qa/);
  });

  it('refuses pushes to and deletes of the reserved environment tags', async () => {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] }));
    const err = await expectError(await putManifest(r, 'shop/web', 'production', body, 'application/vnd.oci.image.index.v1+json'), 403, 'DENIED');
    assert.match(err.message, /reserved/);
    await expectError(await r.req('/v2/shop/web/manifests/staging', { method: 'DELETE' }), 403, 'DENIED');
  });

  it('rolls back to the previous release by default, walking further back on each rollback', async () => {
    for (const v of ['1.1.0', '1.2.0', '1.3.0']) {
      await api(r, 'POST', '/api/v1/apps/shop/web/releases', { environment: 'staging', ref: v }, 201);
      await api(r, 'POST', '/api/v1/apps/shop/web/promote', { from: 'staging', to: 'production' }, 201);
    }
    const first = await api(r, 'POST', '/api/v1/apps/shop/web/rollback', { environment: 'production' }, 201);
    assert.equal(first.body.kind, 'rollback');
    assert.equal(first.body.digest, digests['1.2.0']);
    assert.equal(first.body.version, '1.2.0');
    const second = await api(r, 'POST', '/api/v1/apps/shop/web/rollback', { environment: 'production' }, 201);
    assert.equal(second.body.digest, digests['1.1.0'], 'a second rollback does not return to the release just rolled back');
    assert.equal((await r.req('/v2/shop/web/manifests/production', { method: 'HEAD' })).headers.get('docker-content-digest'), digests['1.1.0']);
  });

  it('rolls back to a named version, release id or digest, and refuses unknown ones', async () => {
    const byVersion = await api(r, 'POST', '/api/v1/apps/shop/web/rollback', { environment: 'production', to: '1.3.0' }, 201);
    assert.equal(byVersion.body.digest, digests['1.3.0']);
    const history = (await api(r, 'GET', '/api/v1/apps/shop/web/releases?environment=production')).body as { id: number; digest: string }[];
    const oldest = history[history.length - 1]!;
    const byId = await api(r, 'POST', '/api/v1/apps/shop/web/rollback', { environment: 'production', to: String(oldest.id) }, 201);
    assert.equal(byId.body.digest, oldest.digest);
    const byDigest = await api(r, 'POST', '/api/v1/apps/shop/web/rollback', { environment: 'production', to: digests['1.2.0'] }, 201);
    assert.equal(byDigest.body.digest, digests['1.2.0']);
    for (const to of ['9.9.9', '99999', `sha256:${'0'.repeat(64)}`]) {
      const res = await api(r, 'POST', '/api/v1/apps/shop/web/rollback', { environment: 'production', to });
      assert.equal(res.status, 404, `rollback to ${to}`);
      assert.match(errorMessage(res.body), /no release/);
    }
    // 1.0.0 exists as an image but was never released to production.
    const never = await api(r, 'POST', '/api/v1/apps/shop/web/rollback', { environment: 'production', to: '1.0.0' });
    assert.equal(never.status, 404);
  });

  it('lists releases newest first with who, when, kind and what each replaced', async () => {
    const list = (await api(r, 'GET', '/api/v1/apps/shop/web/releases?environment=production', undefined, 200)).body as any[];
    assert.ok(list.length >= 7);
    for (let i = 1; i < list.length; i++) assert.ok(list[i - 1].id > list[i].id, 'newest first');
    for (let i = 0; i < list.length - 1; i++) assert.equal(list[i].replaces, list[i + 1].id, 'each release replaces the one before it');
    assert.equal(list[list.length - 1].replaces, null);
    assert.ok(list.every((x) => typeof x.createdAt === 'string' && ['release', 'promote', 'rollback'].includes(x.kind)));
    const all = (await api(r, 'GET', '/api/v1/apps/shop/web/releases')).body as any[];
    assert.ok(all.some((x) => x.environment === 'staging') && all.some((x) => x.environment === 'production'));
  });

  it('lets one of several concurrent releases of an environment through at a time, losing none', async () => {
    const before = ((await api(r, 'GET', '/api/v1/apps/shop/web/releases?environment=staging')).body as any[]).length;
    const results = await Promise.all(
      ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.0.0', '1.1.0'].map((ref) => api(r, 'POST', '/api/v1/apps/shop/web/releases', { environment: 'staging', ref })),
    );
    const ok = results.filter((x) => x.status === 201);
    const conflicts = results.filter((x) => x.status === 409);
    assert.equal(ok.length + conflicts.length, results.length, JSON.stringify(results.map((x) => x.status)));
    assert.ok(ok.length >= 1);
    for (const c of conflicts) assert.match(errorMessage(c.body), /in progress|changed while releasing/);
    const list = (await api(r, 'GET', '/api/v1/apps/shop/web/releases?environment=staging')).body as any[];
    assert.equal(list.length, before + ok.length, 'every accepted release is in the history');
    for (let i = 0; i < list.length - 1; i++) assert.equal(list[i].replaces, list[i + 1].id, 'the chain of releases has no gap');
    const env = (await api(r, 'GET', '/api/v1/apps/shop/web/environments/staging')).body;
    assert.equal(env.current.id, list[0].id);
  });

  it('holds the environment lock: a release during another operation gets 409', async () => {
    const delivery = r.wharf.delivery;
    let release!: () => void;
    const held = delivery.exclusive('shop/web', 'staging', () => new Promise<void>((res) => (release = res)));
    const res = await api(r, 'POST', '/api/v1/apps/shop/web/releases', { environment: 'staging', ref: '1.0.0' });
    assert.equal(res.status, 409);
    assert.match(errorMessage(res.body), /in progress/);
    release();
    await held;
    await api(r, 'POST', '/api/v1/apps/shop/web/releases', { environment: 'staging', ref: '1.0.0' }, 201);
  });

  it('refuses releases of unknown tags, digests and environments', async () => {
    assert.equal((await api(r, 'POST', '/api/v1/apps/shop/web/releases', { environment: 'staging', ref: 'nope' })).status, 404);
    assert.equal((await api(r, 'POST', '/api/v1/apps/shop/web/releases', { environment: 'staging', ref: `sha256:${'1'.repeat(64)}` })).status, 404);
    assert.equal((await api(r, 'POST', '/api/v1/apps/shop/web/releases', { environment: 'nowhere', ref: '1.0.0' })).status, 404);
    assert.equal((await api(r, 'POST', '/api/v1/apps/shop/web/releases', { environment: 'staging' })).status, 400);
  });
});

describe('releases remember the commit and pipeline run they came from', () => {
  let r: Registry;
  const digests: Record<string, string> = {};
  before(async () => {
    r = await startRegistry();
    for (const v of ['a', 'b', 'c']) digests[v] = await pushImage(r, 'shop/api', v);
    await api(r, 'POST', '/api/v1/apps/shop/api/environments', { name: 'staging' }, 201);
    await api(r, 'POST', '/api/v1/apps/shop/api/environments', { name: 'production', requiresPromotionFrom: 'staging' }, 201);
  });
  after(() => r.close());

  it('stores them, keeps them through promotion, and rolls back to a commit by its prefix', async () => {
    const commitA = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
    const first = await api(r, 'POST', '/api/v1/apps/shop/api/releases', { environment: 'staging', ref: 'a', commit: commitA.toUpperCase(), pipelineRun: 'run-1' }, 201);
    assert.deepEqual([first.body.commit, first.body.pipelineRun], [commitA, 'run-1']);
    const promoted = await api(r, 'POST', '/api/v1/apps/shop/api/promote', { from: 'staging', to: 'production' }, 201);
    assert.deepEqual([promoted.body.commit, promoted.body.pipelineRun], [commitA, 'run-1']);
    await api(r, 'POST', '/api/v1/apps/shop/api/releases', { environment: 'staging', ref: 'b', commit: 'ffffffffffffffffffffffffffffffffffffffff', pipelineRun: 'run-2' }, 201);
    await api(r, 'POST', '/api/v1/apps/shop/api/releases', { environment: 'staging', ref: 'c' }, 201);
    const back = await api(r, 'POST', '/api/v1/apps/shop/api/rollback', { environment: 'staging', to: commitA.slice(0, 9) }, 201);
    assert.deepEqual([back.body.kind, back.body.digest, back.body.commit, back.body.pipelineRun], ['rollback', digests.a, commitA, 'run-1']);
    const unknown = await api(r, 'POST', '/api/v1/apps/shop/api/rollback', { environment: 'staging', to: 'abcdef0123' });
    assert.equal(unknown.status, 404);
    assert.match(errorMessage(unknown.body), /no release abcdef0123 in the history of shop\/api\/staging/);
    const bad = await api(r, 'POST', '/api/v1/apps/shop/api/releases', { environment: 'staging', ref: 'a', commit: 'not-a-commit' });
    assert.equal(bad.status, 400);
    assert.match(errorMessage(bad.body), /a commit is 7 to 64 hex digits/);
  });
});
