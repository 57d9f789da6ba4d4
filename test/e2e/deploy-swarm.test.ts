// Deploying to a real Docker Swarm (a one-node swarm on an extra dockerd, never the machine's own daemon), pulling
// from a real Wharf with credentials: create with 5 replicas, update, a failing update rolled back by Swarm and
// reported as such, an update back to an older release, drift, and `docker service create` by hand.
// scripts/test.js: alone (Swarm update and rollback states within their monitor windows)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { daemonsUnavailable, startDaemons, type DaemonSet, type TestDaemon } from '../support/dockerd.js';
import { startWharf, type WharfServer } from '../support/server.js';
import { HEALTH_FAILURE, pushTestReleases, type TestReleases } from '../support/deploy-images.js';
import { freePort } from '../support/net.js';
import { parseAppFile } from '../../src/app-file/parse.js';
import { type EnvironmentPlan, resolveEnvironment } from '../../src/app-file/plan.js';
import { Deployer } from '../../src/deploy/deployer.js';
import type { TargetConnection } from '../../src/deploy/target-policy.js';
import { dockerEngines } from '../../src/engine/dockerode-engines.js';
import type { DeployEvent, DeploymentResult } from '../../src/deploy/deployment.js';

const unavailable = await daemonsUnavailable();
const APP = 'swarmtest';
const SERVICE = 'swarmtest_production';

describe('deploy to Docker Swarm', { skip: unavailable, timeout: 180_000 }, () => {
  let daemons: DaemonSet;
  let manager: TestDaemon;
  let server: WharfServer;
  let rel: TestReleases;
  let plan: EnvironmentPlan;
  const deployer = new Deployer(dockerEngines());
  let deployments = 0;

  before(async () => {
    [daemons, server] = await Promise.all([startDaemons(1), startWharf()]);
    manager = daemons.daemons[0]!;
    await manager.mustDocker(['swarm', 'init', '--advertise-addr', '127.0.0.1', '--listen-addr', `127.0.0.1:${await freePort()}`]);
    await server.login('docker');
    rel = await pushTestReleases(server.host, APP, ['v1', 'v2', 'bad']);
    plan = resolveEnvironment(
      parseAppFile(`
app: ${APP}
environments:
  production:
    swarm: { target: manager, service: ${SERVICE} }
    replicas: 5
    container:
      network: host
      stopTimeout: 2s
    rollout: { parallelism: 2, order: start-first, monitor: 1s, healthTimeout: 20s, failureAction: rollback, rollback: { parallelism: 5, order: stop-first } }
`),
      'production',
    );
  });

  after(async () => {
    await daemons?.teardown();
    await server?.stop();
  });

  async function deploy(version: string): Promise<{ result: DeploymentResult; events: DeployEvent[] }> {
    const events: DeployEvent[] = [];
    const result = await deployer.deploy({
      id: `s${++deployments}`,
      plan,
      image: rel.image,
      release: { id: deployments, digest: rel.releases[version]!.digest },
      auth: { serveraddress: server.host, username: server.admin.username, password: server.admin.password },
      onEvent: (e) => events.push(e),
    }, connections());
    return { result, events };
  }

  /** The registered target the plan names: the Swarm manager. */
  function connections(): Map<string, TargetConnection> {
    return new Map([['manager', { name: 'manager', endpoint: manager.endpoint }]]);
  }

  /** Running tasks' images, as `docker service ps` (not Wharf's adapter) reports them. */
  async function runningImages(service = SERVICE): Promise<string[]> {
    const r = await manager.mustDocker(['service', 'ps', service, '--no-trunc', '--filter', 'desired-state=running', '--format', '{{.Image}} {{.CurrentState}}']);
    return r.stdout.split('\n').filter(Boolean).map((l) => `${l.split(' ')[0]} ${l.split(' ')[1]}`);
  }

  function ref(version: string): string {
    return `${rel.image}@${rel.releases[version]!.digest}`;
  }

  async function assertRuns(version: string) {
    assert.deepEqual(await runningImages(), Array(5).fill(`${ref(version)} Running`), `5 tasks run ${version}`);
  }

  test('creates the service with 5 replicas, pulled from Wharf by digest', async () => {
    const { result, events } = await deploy('v1');
    assert.equal(result.status, 'succeeded', result.reason ?? '');
    assert.equal(result.steps.length, 1);
    assert.equal(result.steps[0]!.containers.length, 5, 'the step names the 5 tasks');
    assert.match(events[0]!.message, /creating service/);
    await assertRuns('v1');
    const spec = JSON.parse((await manager.mustDocker(['service', 'inspect', SERVICE, '--format', '{{json .Spec}}'])).stdout);
    assert.equal(spec.Labels['wharf.digest'], rel.releases.v1!.digest);
    assert.deepEqual(spec.UpdateConfig, { Parallelism: 2, FailureAction: 'rollback', Monitor: 1_000_000_000, MaxFailureRatio: 0, Order: 'start-first' });
    assert.deepEqual(spec.RollbackConfig, { Parallelism: 5, FailureAction: 'pause', Monitor: 1_000_000_000, MaxFailureRatio: 0, Order: 'stop-first' }, 'the rollback has its own settings');
    const status = await deployer.status({ plan, image: rel.image, intended: { releaseId: 1, digest: rel.releases.v1!.digest } }, connections());
    assert.equal(status.inSync, true, JSON.stringify(status.targets[0]!.drift));
    assert.equal(status.targets[0]!.containers.length, 5);
  });

  test('updates the service to a new release and follows UpdateStatus to completed', async () => {
    const { result, events } = await deploy('v2');
    assert.equal(result.status, 'succeeded', result.reason ?? '');
    assert.ok(events.some((e) => e.kind === 'progress' && e.message.startsWith('updating')), 'progress while Swarm updates');
    assert.ok(events.some((e) => e.kind === 'progress' && e.message.startsWith('completed')));
    await assertRuns('v2');
    const state = (await manager.mustDocker(['service', 'inspect', SERVICE, '--format', '{{.UpdateStatus.State}}'])).stdout.trim();
    assert.equal(state, 'completed');
  });

  test('a failing update is rolled back by Swarm and reported as rolled back, with the task errors', async () => {
    const { result, events } = await deploy('bad');
    assert.equal(result.status, 'rolled_back', result.reason ?? '');
    assert.match(result.reason!, /^Swarm rolled the update back: update rolled back due to failure or early termination of task \w+/);
    assert.match(result.reason!, new RegExp(`; task \\w+: .*; last failed health check: exit code 1: ${HEALTH_FAILURE}: /www/fail present`), 'the blamed task\'s health output');
    assert.deepEqual(result.steps.map((s) => [s.action, s.result, s.digest]), [
      ['deploy', 'failed', rel.releases.bad!.digest],
      ['restore', 'succeeded', rel.releases.v2!.digest],
    ]);
    assert.ok(events.some((e) => e.kind === 'restoring'), 'the rollback is streamed as it happens');
    // Swarm's own status of the update: rollback_completed, or — seen twice in CI on a loaded machine — "update
    // completed" with the failed update's StartedAt, written after Wharf had followed Swarm through rollback_started
    // and rollback_completed (no update of Wharf's own in between: the events below). Swarm's updater finishing late
    // overwrites the status; what runs is the previous release either way, which is what is checked next.
    const status = JSON.parse((await manager.mustDocker(['service', 'inspect', SERVICE, '--format', '{{json .UpdateStatus}}'])).stdout) as { State: string };
    const saw = events.map((e) => `${e.kind} ${'message' in e ? e.message : ''}`).join(' | ');
    assert.match(status.State, /^(rollback_completed|completed)$/, `UpdateStatus ${JSON.stringify(status)}; Wharf saw: ${saw}`);
    assert.match(saw, /rollback_completed/, 'Wharf followed Swarm through the end of its rollback');
    await waitFor(async () => (await runningImages()).every((l) => l === `${ref('v2')} Running`) && (await runningImages()).length === 5);
  });

  test('rolling back to an older release is an update to its digest', async () => {
    const { result } = await deploy('v1');
    assert.equal(result.status, 'succeeded', result.reason ?? '');
    await assertRuns('v1');
  });

  test('status marks drift when the service was changed by hand', async () => {
    await manager.mustDocker(['service', 'update', '--detach', '--with-registry-auth', '--image', ref('v2'), SERVICE], 60_000);
    const status = await deployer.status({ plan, image: rel.image, intended: { releaseId: 4, digest: rel.releases.v1!.digest } }, connections());
    assert.equal(status.inSync, false);
    assert.ok(status.targets[0]!.drift.some((d) => d.kind === 'wrong_image' && d.message.includes(rel.releases.v2!.digest)), JSON.stringify(status.targets[0]!.drift));
  });

  test('`docker service create` by hand works with an image from Wharf', async () => {
    const name = 'byhand';
    await manager.mustDocker(['service', 'create', '--detach', '--quiet', '--with-registry-auth', '--name', name, '--replicas', '2', '--network', 'host', `${rel.image}:v2`], 90_000);
    await waitFor(async () => (await runningImages(name)).filter((l) => l.endsWith(' Running')).length === 2);
    const images = await runningImages(name);
    assert.equal(images.length, 2);
    for (const l of images) assert.equal(l, `${rel.image}:v2@${rel.releases.v2!.digest} Running`, 'the CLI pinned the tag to the digest Wharf serves');
    await manager.mustDocker(['service', 'rm', name]);
  });
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 250));
  }
}
