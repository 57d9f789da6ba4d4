// An environment's status over GET /api/v1/apps/{app}/status, with Docker hosts in memory: a deployment that ends
// paused (failureAction: pause, its health check failing) leaves the environment out of sync and names the
// deployment and its reason as `attention` — what the delivery page's card shows as "paused" / "needs operator" —
// until a later deployment finishes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, type Registry } from '../server/v2-harness.js';
import { MemoryEngines } from '../support/memory-host.js';
import { api, pushImage } from '../delivery/delivery-harness.js';
import type { ReleaseStep } from '../../src/deploy/release-workflow.js';
import type { EnvironmentStatus } from '../../src/deploy/status.js';

const APP = 'shop/paused';
const PROBE = 'probe: connection refused';

let r: Registry;
const engines = new MemoryEngines();
const digests: Record<string, string> = {};

before(async () => {
  r = await startRegistry({ engines });
  for (const v of ['v1', 'v2']) digests[v] = await pushImage(r, APP, v);
  engines.failing.set(digests.v2!, PROBE);
  await r.wharf.targets.add({ name: 'p1', endpoint: 'unix:///p1', apps: ['shop/*'] }, 'admin');
  await api(r, 'POST', '/api/v1/apply', { file: `app: ${APP}\nrollout: { healthTimeout: 2s, monitor: 0s, failureAction: pause }\nenvironments:\n  production:\n    targets: [p1]\n` }, 200);
});
after(() => r.close());

async function release(ref: string): Promise<string> {
  const step = (await r.wharf.releases.carryOut(APP, { kind: 'release', environment: 'production', ref, deploy: true }, 'admin')) as ReleaseStep;
  return (await step.deployment!(() => {})).result.status;
}
const status = async (query = '?environment=production') => (await api<EnvironmentStatus[]>(r, 'GET', `/api/v1/apps/${APP}/status${query}`, undefined, 200)).body;

test('a paused deployment is the environment’s attention, with its reason, until a later deployment finishes', async () => {
  assert.equal(await release('v1'), 'succeeded');
  const [good] = await status();
  assert.equal(good!.attention, undefined);
  assert.equal(good!.inSync, true);

  assert.equal(await release('v2'), 'paused');
  const [paused] = await status();
  const newest = (await r.wharf.deploy.history(APP, 'production'))[0]!;
  assert.deepEqual(paused!.attention, { deployment: Number(newest.id), status: 'paused', reason: newest.reason });
  assert.match(paused!.attention!.reason ?? '', new RegExp(PROBE));
  assert.equal(paused!.inSync, false, 'an environment that needs a person is not in sync');
  // Without ?environment= every environment is answered, this one with its attention too.
  assert.deepEqual((await status('')).map((e) => [e.environment, e.attention?.status]), [['production', 'paused']]);
  assert.equal((await api(r, 'GET', `/api/v1/apps/${APP}/status?environment=`)).status, 400, 'an empty environment is refused by the query schema');

  // A later deployment that finishes (v2 again, its check passing now) ends it.
  engines.failing.delete(digests.v2!);
  assert.equal(await release('v2'), 'succeeded');
  assert.equal((await status())[0]!.attention, undefined);
});
