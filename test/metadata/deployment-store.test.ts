// The deployment record in the real SQLite database: begin (one unfinished deployment per environment), finish with
// its steps, history newest first, and deployments cut off by a restart finished as interrupted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { forgetDatabase, openTestStore } from '../support/database.js';
import type { DeploymentMetadata } from '../../src/metadata/metadata.js';
import { RegistryError } from '../../src/oci/errors.js';
import type { DeploymentResult } from '../../src/deploy/deployment.js';

const DIGEST = `sha256:${'cd'.repeat(32)}`;

/** Runs `fn` over a fresh database with the environments `names` of app myapp, then removes it. */
async function withEnvironments(names: string[], fn: (store: DeploymentMetadata, environmentIds: number[]) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-deploy-store-'));
  const meta = await openTestStore(join(dir, 'wharf.db'));
  try {
    const repo = await meta.registry.ensureRepository('myapp');
    const settings = { requiresPromotionFrom: null, protected: false, autoDeploy: false, requiresAttestations: [], requiresApproval: false };
    const ids: number[] = [];
    for (const name of names) ids.push(Number((await meta.delivery.createEnvironment(repo, name, settings)).id));
    await fn(meta.deployments, ids);
  } finally {
    await meta.close();
    await rm(dir, { recursive: true, force: true });
    await forgetDatabase(dir);
  }
}

test('deployments and their steps are recorded; one unfinished deployment per environment at a time', () =>
  withEnvironments(['staging', 'production'], async (store, [staging, production]) => {
    const base = { releaseId: null, digest: DIGEST, image: '127.0.0.1:5000/myapp', kind: 'docker' as const, actor: 'alice', trigger: 'deploy' };

    const first = await store.begin({ ...base, environmentId: staging! }, 1000);
    await assert.rejects(store.begin({ ...base, environmentId: staging! }), (e) => e instanceof RegistryError && e.code === 'CONFLICT' && /#\d+ of this environment is still running/.test(e.message));
    const other = await store.begin({ ...base, environmentId: production! }, 1000);
    assert.ok(other > first, 'another environment is not locked');

    const result: DeploymentResult = {
      status: 'rolled_back',
      reason: 'h2: health check failed',
      startedAt: 1000,
      finishedAt: 5000,
      steps: [
        { target: 'h1', action: 'deploy', containers: ['a', 'b'], digest: DIGEST, startedAt: 1000, finishedAt: 2000, result: 'succeeded', reason: null },
        { target: 'h2', action: 'deploy', containers: ['c'], digest: DIGEST, startedAt: 2000, finishedAt: 3000, result: 'failed', reason: 'health check failed' },
        { target: 'h1', action: 'restore', containers: ['x'], digest: null, startedAt: 3000, finishedAt: 5000, result: 'succeeded', reason: null },
      ],
    };
    await store.finish(first, result);
    const rec = await store.get(first);
    assert.equal(rec!.status, 'rolled_back');
    assert.equal(rec!.reason, 'h2: health check failed');
    assert.equal(Number(rec!.finished_at), 5000);
    assert.equal(rec!.actor, 'alice');
    assert.deepEqual(rec!.steps, result.steps);

    const second = await store.begin({ ...base, environmentId: staging! }, 6000);
    assert.deepEqual((await store.list(staging!)).map((d) => [Number(d.id), d.status]), [[second, 'running'], [first, 'rolled_back']]);

    assert.equal(await store.interruptRunning(9000), 2, 'both unfinished deployments');
    assert.equal((await store.get(second))!.status, 'interrupted');
    assert.equal(await store.running(staging!), undefined);
    await store.begin({ ...base, environmentId: staging! }, 10_000);
  }));

test('the newest deployment by digest, status and position, and the newest of each release', () =>
  withEnvironments(['staging'], async (store, [env]) => {
    const OTHER = `sha256:${'ef'.repeat(32)}`;
    const run = async (releaseId: number, digest: string, status: DeploymentResult['status']) => {
      const id = await store.begin({ environmentId: env!, releaseId, digest, image: '127.0.0.1:5000/myapp', kind: 'docker' });
      const result: DeploymentResult = { status, reason: status === 'succeeded' ? null : 'boom', steps: [], startedAt: 0, finishedAt: 1 };
      await store.finish(id, result);
      return id;
    };
    const a = await run(1, DIGEST, 'succeeded');
    const b = await run(2, OTHER, 'rolled_back');
    const c = await run(1, DIGEST, 'failed');
    assert.equal(Number((await store.newest(env!, { digest: DIGEST }))!.id), c);
    assert.equal(Number((await store.newest(env!, { status: 'succeeded', before: c }))!.id), a);
    assert.equal(await store.newest(env!, { status: 'succeeded', before: a }), undefined);
    const latest = await store.latestOfReleases([1, 2, 3]);
    assert.deepEqual([...latest].map(([release, d]) => [release, Number(d.id), d.status]).sort(), [[1, c, 'failed'], [2, b, 'rolled_back']]);
  }));
