// Rollout decisions that are awkward to stage on real engines, against in-memory hosts: batches of `parallelism`
// with the delay between them, failureAction pause, and secret values kept out of reasons and events.
// (The real-engine behaviour — pulls, health, rollback, hosts going down — is in rollout.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAppFile } from '../../src/app-file/parse.js';
import { type EnvironmentPlan, resolveEnvironment } from '../../src/app-file/plan.js';
import { rollOut } from '../../src/deploy/rollout.js';
import { MemoryHost } from '../support/memory-host.js';
import type { DeployEvent } from '../../src/deploy/deployment.js';

const OLD = `sha256:${'0'.repeat(64)}`;
const NEW = `sha256:${'1'.repeat(64)}`;

function plan(rollout: string, container = '{}'): EnvironmentPlan {
  return resolveEnvironment(
    parseAppFile(`app: myapp
environments:
  production:
    targets: [h1, h2, h3]
    replicas: 2
    container: ${container}
    rollout: ${rollout}
`),
    'production',
  );
}

async function seed(hosts: MemoryHost[]): Promise<void> {
  for (const h of hosts) {
    for (const r of [0, 1]) await h.startContainer(await h.createContainer({ name: `old-${r}`, image: `x@${OLD}`, env: [], labels: { 'wharf.app': 'myapp', 'wharf.env': 'production', 'wharf.digest': OLD }, mounts: [] }));
  }
}

test('hosts are switched in batches of `parallelism`, with the delay between batches', async () => {
  const hosts = ['unix:///h1', 'unix:///h2', 'unix:///h3'].map((e) => new MemoryHost(e));
  await seed(hosts);
  const events: DeployEvent[] = [];
  const result = await rollOut({ id: 'd1', plan: plan('{ parallelism: 2, delay: 300ms, monitor: 0s }'), image: 'x', release: { id: 1, digest: NEW }, onEvent: (e) => events.push(e) }, hosts.map((host) => ({ host, plan: plan('{ parallelism: 2, delay: 300ms, monitor: 0s }') })), {});
  assert.equal(result.status, 'succeeded');
  const index = (kind: string, target: string) => events.findIndex((e) => e.kind === kind && e.target === target);
  const at = (kind: string, target: string) => events[index(kind, target)]!.at;
  assert.ok(index('starting', 'unix:///h2') < index('switched', 'unix:///h1'), 'h1 and h2 switch together');
  assert.ok(at('starting', 'unix:///h3') - Math.max(at('switched', 'unix:///h1'), at('switched', 'unix:///h2')) >= 290, 'h3 waits for the batch and the delay');
  for (const h of hosts) assert.deepEqual(h.running(), [NEW, NEW]);
  for (const h of hosts) assert.equal(h.containers.size, 2, 'the old containers are removed at the end');
});

test('failureAction pause: the failing host gets its old containers back, switched hosts stay, the rest is untouched', async () => {
  const hosts = [new MemoryHost('unix:///h1'), new MemoryHost('unix:///h2', new Map([[NEW, 'boom']])), new MemoryHost('unix:///h3')];
  await seed(hosts);
  const result = await rollOut({ id: 'd2', plan: plan('{ failureAction: pause, monitor: 0s }', '{ stopTimeout: 1s }'), image: 'x', release: { id: 1, digest: NEW } }, hosts.map((host) => ({ host, plan: plan('{ failureAction: pause, monitor: 0s }', '{ stopTimeout: 1s }') })), {});
  assert.equal(result.status, 'paused');
  assert.match(result.reason!, /^unix:\/\/\/h2: myapp-production-d2-\d: health check failed: exit code 1: boom$/);
  assert.deepEqual(result.steps.map((s) => [s.target, s.action, s.result]), [
    ['unix:///h1', 'deploy', 'succeeded'],
    ['unix:///h2', 'deploy', 'failed'],
    ['unix:///h3', 'deploy', 'skipped'],
  ]);
  assert.deepEqual(hosts[0]!.running(), [NEW, NEW], 'h1 stays on the new release');
  assert.equal(hosts[0]!.containers.size, 4, 'its previous containers are kept (stopped) for a later rollback');
  assert.deepEqual(hosts[1]!.running(), [OLD, OLD]);
  assert.equal(hosts[1]!.containers.size, 2, 'the failed containers are gone');
  assert.deepEqual(hosts[2]!.running(), [OLD, OLD]);
});

test('secret values reach the containers but never a reason or an event; a failed first deploy is failed, not rolled back', async () => {
  const hosts = [new MemoryHost('unix:///h1', new Map([[NEW, 'cannot log in with password hunter2']]))];
  const events: DeployEvent[] = [];
  const p = { ...plan('{ monitor: 0s }'), targets: plan('{}').targets.slice(0, 1) };
  const result = await rollOut({ id: 'd3', plan: p, image: 'x', release: { id: 1, digest: NEW }, onEvent: (e) => events.push(e) }, hosts.map((host) => ({ host, plan: p })), { DB_PASSWORD: 'hunter2' });
  assert.equal(result.status, 'failed', 'nothing ran before');
  assert.match(result.reason!, /password \[secret\]$/);
  assert.equal(hosts[0]!.containers.size, 0, 'and nothing is left behind');
  assert.doesNotMatch(JSON.stringify({ result, events }), /hunter2/);
});

test("a rollback on Docker hosts goes by its own settings: rollback.parallelism hosts at once, rollback.order", async () => {
  for (const [settings, together, firstOnHost] of [
    ['{ parallelism: 2, order: stop-first }', true, 'remove'],
    ['{ parallelism: 1, order: start-first }', false, 'start'],
  ] as const) {
    const hosts = [new MemoryHost('unix:///h1'), new MemoryHost('unix:///h2'), new MemoryHost('unix:///h3', new Map([[NEW, 'boom']]))];
    await seed(hosts);
    // What each host is asked during the restore, in order.
    const ops: string[] = [];
    for (const h of hosts.slice(0, 2)) {
      const [start, remove] = [h.startContainer.bind(h), h.removeContainer.bind(h)];
      h.startContainer = async (id) => (ops.push(`${h.endpoint} start ${h.containers.get(id)!.labels['wharf.digest'] === OLD ? 'old' : 'new'}`), start(id));
      h.removeContainer = async (id) => (ops.push(`${h.endpoint} remove ${h.containers.get(id)!.labels['wharf.digest'] === OLD ? 'old' : 'new'}`), remove(id));
    }
    const events: DeployEvent[] = [];
    const p = plan(`{ parallelism: 1, order: start-first, monitor: 0s, rollback: ${settings} }`);
    const result = await rollOut({ id: 'r', plan: p, image: 'x', release: { id: 1, digest: NEW }, onEvent: (e) => events.push(e) }, hosts.map((host) => ({ host, plan: p })), {});
    assert.equal(result.status, 'rolled_back', settings);
    for (const h of hosts) assert.deepEqual(h.running(), [OLD, OLD], `${settings}: ${h.endpoint} runs the previous release again`);
    const restore = events.filter((e) => e.kind === 'restoring' || e.kind === 'restored').map((e) => `${e.kind} ${e.target}`);
    // Newest switched first; with parallelism 2 both hosts are restored at once.
    assert.deepEqual(restore, together
      ? ['restoring unix:///h2', 'restoring unix:///h1', 'restored unix:///h2', 'restored unix:///h1']
      : ['restoring unix:///h2', 'restored unix:///h2', 'restoring unix:///h1', 'restored unix:///h1'], settings);
    // stop-first removes the new containers before the old ones start again; start-first the other way round.
    const onH2 = ops.filter((o) => o.startsWith('unix:///h2') && (o.endsWith('start old') || o.endsWith('remove new'))).slice(-4);
    assert.equal(onH2[0], `unix:///h2 ${firstOnHost} ${firstOnHost === 'remove' ? 'new' : 'old'}`, `${settings}: ${onH2.join(', ')}`);
  }
});
