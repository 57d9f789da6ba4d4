// Every terminal Swarm state ends in a true record, against a scripted Swarm manager in memory (the states real
// Swarm reaches only now and then, or after minutes): a paused update needs an operator; a rollback whose previous
// release does not hold needs an operator; an update still running when the budget is spent needs an operator; an
// update Swarm never starts failed; and "update completed" is believed only when the tasks run the release —
// Swarm has been seen to write it late, over a finished rollback (test/e2e/deploy-swarm.test.ts runs real Swarm).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAppFile } from '../../src/app-file/parse.js';
import { resolveEnvironment } from '../../src/app-file/plan.js';
import { deployToSwarm, type SwarmTimings } from '../../src/deploy/swarm-rollout.js';
import type { DeploymentResult } from '../../src/deploy/deployment.js';
import type { Orchestrator, ServiceSpec, SwarmService, SwarmTask, UpdateStatus } from '../../src/engine/orchestrator.js';

const IMAGE = 'wharf.test/shop/web';
const OLD = `sha256:${'a'.repeat(64)}`;
const NEW = `sha256:${'b'.repeat(64)}`;
const REPLICAS = 2;
const plan = resolveEnvironment(
  parseAppFile(`app: shop/web
environments:
  production:
    swarm: { target: manager, service: shop_web }
    replicas: ${REPLICAS}
    rollout: { parallelism: 2, healthTimeout: 50ms, monitor: 50ms }
`),
  'production',
);
/** short enough for a unit test; the hold is long enough that a test can tell whether it was waited */
const TIMINGS: SwarmTimings = { poll: 5, updateStart: 100, slack: 50, restartSlack: 100, minHold: 200 };

const task = (id: string, digest: string, state = 'running', extra: Partial<SwarmTask> = {}): SwarmTask => ({
  id,
  desiredState: 'running',
  state,
  message: state,
  image: `${IMAGE}@${digest}`,
  createdAt: '2026-12-07T00:00:00Z',
  ...extra,
});
const on = (digest: string, prefix: string) => Array.from({ length: REPLICAS }, (_, i) => task(`${prefix}${i}`, digest));

/**
 * A Swarm manager in memory running the service on OLD. Once updated, each read of the service answers the next of
 * `states` (the last one repeats), and each read of the tasks the next of `tasks` (the last one repeats, or the
 * function is asked each time).
 */
class ScriptedSwarm implements Orchestrator {
  readonly endpoint = 'tcp://manager.test:2375';
  updated = false;
  private reads = 0;
  private taskReads = 0;
  constructor(
    private readonly states: (UpdateStatus | undefined)[],
    private readonly tasks: SwarmTask[][] | (() => SwarmTask[]),
  ) {}
  async engine() {
    return { apiVersion: '1.43', engineVersion: 'scripted' };
  }
  async inspectService(): Promise<SwarmService> {
    const before: UpdateStatus = { state: 'completed', startedAt: 'earlier' };
    const spec: ServiceSpec = { Name: 'shop_web', TaskTemplate: { ContainerSpec: { Image: `${IMAGE}@${OLD}` } } };
    if (!this.updated) return { id: 'svc', version: 1, spec, updateStatus: before };
    const status = this.states[Math.min(this.reads++, this.states.length - 1)];
    return { id: 'svc', version: 2, spec, updateStatus: status ?? before };
  }
  async createService(): Promise<string> {
    throw new Error('the service exists');
  }
  async updateService(): Promise<void> {
    this.updated = true;
  }
  async listTasks(): Promise<SwarmTask[]> {
    if (typeof this.tasks === 'function') return this.tasks();
    return this.tasks[Math.min(this.taskReads++, this.tasks.length - 1)]!;
  }
  async healthProbes() {
    return [];
  }
}

const status = (state: UpdateStatus['state'], message = ''): UpdateStatus => ({ state, message, startedAt: 'now' });
const deploy = (swarm: ScriptedSwarm): Promise<DeploymentResult> => deployToSwarm({ id: 't1', plan, image: IMAGE, release: { id: 2, digest: NEW } }, swarm, {}, TIMINGS);
const steps = (r: DeploymentResult) => r.steps.map((s) => [s.action, s.result, s.digest]);

test('a paused update is recorded as paused, needing an operator, with why', async () => {
  const failing = 'update paused due to failure or early termination of task t-new';
  const swarm = new ScriptedSwarm([status('updating'), status('paused', failing)], [[task('t-new', NEW, 'failed', { err: 'task: non-zero exit (1)', exitCode: 1 }), task('t-old', OLD)]]);
  const r = await deploy(swarm);
  assert.equal(r.status, 'paused');
  assert.match(r.reason!, /Swarm paused the update: update paused due to failure/);
  assert.match(r.reason!, /an operator must resume or roll back the service/);
  assert.match(r.reason!, /task t-new: task: non-zero exit \(1\) \(exit code 1\)/, 'the failed task says why');
  assert.deepEqual(steps(r), [['deploy', 'failed', NEW]]);
});

test('a completed rollback whose previous release does not hold needs an operator', async () => {
  // Back on OLD by Swarm's word, but the restored tasks keep crashing and coming back under new ids.
  let n = 0;
  const swarm = new ScriptedSwarm(
    [status('updating'), status('rollback_started', 'update rolled back due to failure of task t-new'), status('rollback_completed', 'rollback completed')],
    () => [task(`t-old-a${n++}`, OLD), task('t-old-b', OLD, n % 2 ? 'starting' : 'running')],
  );
  const r = await deploy(swarm);
  assert.equal(r.status, 'needs_operator');
  assert.match(r.reason!, /Swarm rolled the update back: update rolled back due to failure of task t-new/);
  assert.match(r.reason!, /task\(s\) run the previous digest sha256:a+: an operator must restore the service/);
  assert.deepEqual(steps(r), [
    ['deploy', 'failed', NEW],
    ['restore', 'failed', OLD],
  ]);
  assert.equal(r.restoredDigest, undefined, 'nothing is said to run again');
});

test('a completed rollback whose previous release holds is rolled back', async () => {
  const swarm = new ScriptedSwarm([status('rollback_started', 'update rolled back due to failure of task t-new'), status('rollback_completed', 'rollback completed')], [on(OLD, 'old')]);
  const r = await deploy(swarm);
  assert.equal(r.status, 'rolled_back');
  assert.equal(r.restoredDigest, OLD);
  assert.deepEqual(steps(r), [
    ['deploy', 'failed', NEW],
    ['restore', 'succeeded', OLD],
  ]);
});

test('an update still running when the budget is spent needs an operator', async () => {
  const swarm = new ScriptedSwarm([status('updating', 'update in progress')], [[task('t-new', NEW, 'starting'), task('t-old', OLD)]]);
  const started = Date.now();
  const r = await deploy(swarm);
  // budget: one batch × (health 50 ms + monitor 50 ms) + slack 50 ms
  assert.ok(Date.now() - started >= 150, 'Wharf waited out the budget');
  assert.equal(r.status, 'needs_operator');
  assert.match(r.reason!, /update ended in state updating: still updating after 0s; an operator must check the service/);
});

test('an update Swarm never starts failed, and says so', async () => {
  // UpdateStatus keeps describing the previous update (its StartedAt does not change).
  const swarm = new ScriptedSwarm([undefined], [on(OLD, 'old')]);
  const r = await deploy(swarm);
  assert.equal(r.status, 'failed');
  assert.match(r.reason!, /Swarm did not start the update within 0.1s/);
  assert.deepEqual(steps(r), [['deploy', 'failed', NEW]]);
});

test('"update completed" with every task on the release succeeds at once, without a hold', async () => {
  const swarm = new ScriptedSwarm([status('updating'), status('completed', 'update completed')], [on(NEW, 'new')]);
  const started = Date.now();
  const r = await deploy(swarm);
  assert.equal(r.status, 'succeeded');
  assert.ok(Date.now() - started < TIMINGS.minHold, `no hold after a plain success (${Date.now() - started} ms)`);
  assert.deepEqual(steps(r), [['deploy', 'succeeded', NEW]]);
});

test('"update completed" while every task runs the previous release is recorded as rolled back', async () => {
  // Seen in CI: Swarm rolled back, then its updater, finishing late, wrote "update completed" over the status.
  const swarm = new ScriptedSwarm([status('updating'), status('completed', 'update completed')], [on(OLD, 'old')]);
  const r = await deploy(swarm);
  assert.equal(r.status, 'rolled_back');
  assert.equal(r.restoredDigest, OLD);
  assert.match(r.reason!, /Swarm reported the update completed, but not every task runs sha256:b+: all 2 task\(s\) run the previous digest sha256:a+ again/);
  assert.deepEqual(steps(r), [
    ['deploy', 'failed', NEW],
    ['restore', 'succeeded', OLD],
  ]);
});

test('"update completed" with tasks on both releases needs an operator', async () => {
  const swarm = new ScriptedSwarm([status('completed', 'update completed')], [[task('t-new', NEW), task('t-old', OLD)]]);
  const r = await deploy(swarm);
  assert.equal(r.status, 'needs_operator');
  assert.match(r.reason!, /1 of 2 run it, and not all run the previous digest sha256:a+; an operator must check the service/);
  assert.deepEqual(steps(r), [['deploy', 'failed', NEW]]);
});

test('"update completed" while the last task is still starting succeeds once it runs', async () => {
  const swarm = new ScriptedSwarm([status('completed', 'update completed')], [[task('n0', NEW), task('n1', NEW, 'starting')], on(NEW, 'n')]);
  const r = await deploy(swarm);
  assert.equal(r.status, 'succeeded');
  assert.equal(r.reason, null);
});
