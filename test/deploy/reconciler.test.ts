// The reconcile loop woken by engine events, with Docker hosts (and their event streams) in memory and the schedule
// an hour away: a removed container is healed with the current release; a burst of events heals once; a deployment
// of Wharf's own, whose stops and removals are events too, is waited out and starts no heal; a heal that fails is
// not retried at every event; a replica the engine is restarting by itself is not healed. Then the schedule alone,
// without event streams: a removed container is announced as drift and healed, or only announced without autoHeal.
// (test/e2e/reconcile.test.ts: the same on real dockerd.)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, type Registry } from '../server/v2-harness.js';
import { MemoryEngines } from '../support/memory-host.js';
import { eventually } from '../webhooks/receiver.js';
import { pushImage } from '../delivery/delivery-harness.js';
import { Reconciler, type LookOutcome } from '../../src/deploy/reconciler.js';
import type { ReleaseStep } from '../../src/deploy/release-workflow.js';

const APP = 'shop/web';
const FILE = (failureAction = 'rollback', autoHeal = true) => `app: ${APP}
rollout: { healthTimeout: 2s, monitor: 0s, failureAction: ${failureAction} }
environments:
  production:
    autoHeal: ${autoHeal}
    replicas: 2
    targets: [h1, h2]
`;

let r: Registry;
let reconciler: Reconciler;
const engines = new MemoryEngines();
const digests: Record<string, string> = {};
const notified: { type: string; environment?: unknown }[] = [];
const quiet = { info: () => {}, warn: () => {} };

const h1 = () => engines.hosts.get('unix:///h1')!;
const deployments = async () => (await r.wharf.deploy.history(APP, 'production')).map((d) => `${d.trigger}:${d.status}`);
const heals = async () => (await deployments()).filter((d) => d.startsWith('auto-heal'));
const removeOne = async () => {
  const [c] = await h1().listContainers({ labels: { 'wharf.app': APP } });
  await h1().removeContainer(c!.id);
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** the loop's wait after a deployment's end, its quiet after an event, its pause while a deployment runs */
const SETTLE_MS = 300;
const QUIET_MS = 100;
const BUSY_RETRY_MS = 100;
/** what each look at the environment came to, in order */
const looks: LookOutcome[] = [];
/**
 * Until the loop has looked at everything it heard and decided (nothing waiting, nothing running): what a test
 * checks afterwards is what the loop did about it, however long a loaded machine took to get there.
 */
const settled = () => eventually(async () => (reconciler.idle() ? true : undefined), 'the reconcile loop to decide', 20_000);
/** The first look after the `from`th that is not put off until later (a deployment running or settling). */
const decidedAfter = (from: number) => eventually(async () => looks.slice(from).find((o) => o !== 'busy' && o !== 'settling'), 'a decision of the reconcile loop', 20_000);

before(async () => {
  r = await startRegistry({ engines });
  for (const v of ['v1', 'v2']) digests[v] = await pushImage(r, APP, v);
  for (const name of ['h1', 'h2']) await r.wharf.targets.add({ name, endpoint: `unix:///${name}`, apps: ['shop/*'] }, 'admin');
  await r.wharf.deploy.apply(FILE(), { dryRun: false, actor: 'admin' });
  const step = (await r.wharf.releases.carryOut(APP, { kind: 'release', environment: 'production', ref: 'v1', deploy: true }, 'admin')) as ReleaseStep;
  assert.equal((await step.deployment!()).result.status, 'succeeded');
  reconciler = new Reconciler(r.wharf.deploy, r.wharf.releases, (e) => notified.push(e), quiet, {
    interval: 3_600_000,
    engines,
    settleMs: SETTLE_MS,
    quietMs: QUIET_MS,
    busyRetryMs: BUSY_RETRY_MS,
    onLook: (_env, outcome) => looks.push(outcome),
  });
  reconciler.start();
  await eventually(async () => (r.wharf.deploy.eventStreams.get('h1') && r.wharf.deploy.eventStreams.get('h2') ? true : undefined), 'both event streams', 10_000);
});
after(async () => {
  await reconciler.stop();
  await r.close();
});

test('a removed container is healed with the current release, once for a burst of events', async () => {
  // Past the settling of the deployment made in before().
  const last = await r.wharf.deploy.lastFinished(APP, 'production');
  await sleep(Math.max(0, last!.at + SETTLE_MS - Date.now()));
  await settled();
  // Both replicas of h1 go at once: kill, die, destroy twice over; one look after the burst, one heal.
  for (const c of await h1().listContainers({ labels: { 'wharf.app': APP } })) await h1().removeContainer(c.id);
  // The heal is recorded when it starts (running): wait for its end, which a loaded machine may take a while to reach.
  await eventually(async () => ((await heals()).some((h) => !h.endsWith(':running')) ? true : undefined), 'the heal to end', 10_000);
  assert.deepEqual(await heals(), ['auto-heal:succeeded']);
  assert.deepEqual(h1().running(), [digests.v1, digests.v1]);
  assert.equal(notified.filter((e) => e.type === 'deployment.drift').length, 1);
  await settled();
  assert.deepEqual(await heals(), ['auto-heal:succeeded'], 'the heal itself (its stops and removals) starts none');
});

test("a deployment of Wharf's own is waited out: events during it start no heal", async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  h1().onPull = () => held;
  const running = r.wharf.releases.deploy(APP, 'production', { actor: 'admin', trigger: 'deploy --force', force: true });
  await eventually(async () => ((await r.wharf.deploy.deploying(APP, 'production')) ? true : undefined), 'the deployment to start', 5_000);
  // What a deploy does to the old containers, and a removal by hand besides: it replaces them all anyway.
  const from = looks.length;
  await removeOne();
  // The loop looks while the deployment is held, and puts the environment off.
  await eventually(async () => (looks.slice(from).includes('busy') ? true : undefined), 'a look during the deployment', 20_000);
  h1().onPull = undefined;
  release();
  assert.equal((await running).result.status, 'succeeded');
  await settled();
  assert.deepEqual(await heals(), ['auto-heal:succeeded'], 'still only the first test’s heal');
  assert.deepEqual(h1().running(), [digests.v1, digests.v1]);
});

test('a replica its restart policy is bringing back is given time: no drift, no heal', async () => {
  const [c] = await h1().listContainers({ labels: { 'wharf.app': APP } });
  const live = h1().containers.get(c!.id)!;
  // What dockerd lists for a container that exited and is being restarted: State "restarting".
  Object.assign(live, { status: 'restarting' });
  const drifts = notified.filter((e) => e.type === 'deployment.drift').length;
  const from = looks.length;
  for (const w of h1().watchers) w.listener.event({ type: 'container', action: 'die', id: c!.id, attributes: { ...live.labels }, time: Date.now() });
  // Looked at again a while later (until the engine gives up): the first look is what is checked here.
  await decidedAfter(from);
  Object.assign(live, { status: 'running' });
  assert.deepEqual(await heals(), ['auto-heal:succeeded']);
  assert.equal(notified.filter((e) => e.type === 'deployment.drift').length, drifts, 'not announced as drift');
});

test('a heal that fails is not tried again at every event', async () => {
  // The current release no longer gets healthy anywhere: the heal fails (nothing better to go back to).
  engines.failing.set(digests.v1!, 'boom');
  try {
    await removeOne();
    await eventually(async () => ((await heals()).length === 2 ? true : undefined), 'the second heal', 10_000);
    await settled();
    await removeOne();
    await settled();
    assert.equal((await heals()).length, 2, `backed off: ${(await heals()).join(', ')}`);
  } finally {
    engines.failing.delete(digests.v1!);
  }
});

describe('the schedule alone, without engine events', () => {
  let scheduled: Reconciler;
  /** what each scheduled look came to */
  const passes: LookOutcome[] = [];
  const drifts = () => notified.filter((e) => e.type === 'deployment.drift');
  /** the `n`th look from now on (each pass looks once: one environment) */
  const lookAfter = (n: number) => {
    const from = passes.length;
    return eventually(async () => passes[from + n - 1], `${n} scheduled look(s)`, 10_000);
  };

  before(async () => {
    // The event-driven loop stops: from here on only the schedule looks, as on engines whose events cannot be watched.
    await reconciler.stop();
    assert.equal((await r.wharf.releases.deploy(APP, 'production', { actor: 'admin', trigger: 'deploy --force', force: true })).result.status, 'succeeded');
    scheduled = new Reconciler(r.wharf.deploy, r.wharf.releases, (e) => notified.push(e), quiet, { interval: 200, settleMs: SETTLE_MS, onLook: (_env, outcome) => passes.push(outcome) });
    scheduled.start();
    await eventually(async () => (passes.includes('in-sync') ? true : undefined), 'a scheduled look in sync', 10_000);
  });
  after(() => scheduled.stop());

  test('a removed container is announced as drift and healed at the next pass', async () => {
    const [announced, healed] = [drifts().length, (await heals()).length];
    await removeOne();
    await eventually(async () => ((await heals()).length > healed && !(await heals()).at(-1)!.endsWith(':running') ? true : undefined), 'the scheduled heal to end', 10_000);
    assert.equal((await heals()).at(-1), 'auto-heal:succeeded');
    assert.deepEqual(h1().running(), [digests.v1, digests.v1]);
    assert.equal(drifts().length, announced + 1, 'the drift was announced');
    assert.equal(drifts().at(-1)!.environment, 'production');
  });

  test('without autoHeal the drift is announced once, and left alone', async () => {
    await r.wharf.deploy.apply(FILE('rollback', false), { dryRun: false, actor: 'admin' });
    // The second look from now began after the first ended, so after the apply: it reads the file without autoHeal.
    await lookAfter(2);
    const [announced, healed] = [drifts().length, (await heals()).length];
    await removeOne();
    await eventually(async () => (drifts().length > announced ? true : undefined), 'the drift to be announced', 10_000);
    assert.equal((drifts().at(-1) as { autoHeal?: boolean }).autoHeal, false);
    assert.equal(await lookAfter(2), 'drift', 'looked at again: still drift');
    assert.equal(drifts().length, announced + 1, 'an unchanged drift is announced once');
    assert.equal((await heals()).length, healed, 'nothing healed');
    assert.deepEqual(h1().running(), [digests.v1]);
    assert.ok(r.wharf.deploy.drifted.has(`${APP}/production`), 'counted as drifted (wharf_environments_drifted)');
  });
});
