// Rolling releases out to three real Docker hosts (extra dockerd daemons, one reached over tcp with TLS client
// certificates), each pulling from a real Wharf by digest: first deploy, rolling update, a failing health check
// rolled back, a host dying mid-rollout, drift after a manual `docker run`, Wharf's own HTTP health check with
// host networking (stop-first), a crashing container and a digest that cannot be pulled.
// scripts/test.js: alone (health checks and automatic rollbacks on deadlines)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { daemonsUnavailable, startDaemons, type DaemonSet, type TestDaemon } from '../support/dockerd.js';
import { startWharf, type WharfServer } from '../support/server.js';
import { HEALTH_FAILURE, pushTestReleases, type TestReleases } from '../support/deploy-images.js';
import { freePorts } from '../support/net.js';
import { parseAppFile } from '../../src/app-file/parse.js';
import { type EnvironmentPlan, resolveEnvironment } from '../../src/app-file/plan.js';
import { Deployer } from '../../src/deploy/deployer.js';
import type { TargetConnection } from '../../src/deploy/target-policy.js';
import { dockerEngines } from '../../src/engine/dockerode-engines.js';
import type { DeployEvent, DeploymentResult } from '../../src/deploy/deployment.js';
import { DockerodeHost } from '../../src/engine/dockerode-host.js';

const unavailable = await daemonsUnavailable();
const APP = 'deploytest';

describe('rollout to Docker hosts', { skip: unavailable, timeout: 240_000 }, () => {
  let daemons: DaemonSet;
  let hosts: TestDaemon[];
  let server: WharfServer;
  let rel: TestReleases;
  let shared: string;
  const deployer = new Deployer(dockerEngines());
  let deployments = 0;

  before(async () => {
    [daemons, server] = await Promise.all([startDaemons(3, { tls: true }), startWharf()]);
    hosts = daemons.daemons;
    await server.login('docker');
    rel = await pushTestReleases(server.host, APP, ['v1', 'v2', 'v3', 'bad']);
    shared = await mkdtemp(join(tmpdir(), 'wharf-deploy-shared-'));
  });

  after(async () => {
    await daemons?.teardown();
    await server?.stop();
    if (shared) await rm(shared, { recursive: true, force: true });
  });

  /** The production environment across the three hosts; host1 is reached over tcp with TLS. */
  function production(parallelism = 1): EnvironmentPlan {
    const [h1, h2, h3] = hosts;
    const file = parseAppFile(`
app: ${APP}
container:
  network: host
  stopTimeout: 3s
  volumes: ["${shared}:/shared:ro"]
  env: { GREETING: hello }
rollout: { parallelism: ${parallelism}, healthTimeout: 20s, monitor: 500ms }
environments:
  production:
    replicas: 2
    targets: [h1, h2, h3]
`);
    return resolveEnvironment(file, 'production');
  }

  /** The registered targets the plans name: host1 over tcp with TLS, the others over their unix sockets. */
  function connections(): Map<string, TargetConnection> {
    const [h1, h2, h3] = hosts;
    return new Map([
      ['h1', { name: 'h1', endpoint: h1!.tcp!.endpoint, tls: h1!.tcp!.tls }],
      ['h2', { name: 'h2', endpoint: h2!.endpoint }],
      ['h3', { name: 'h3', endpoint: h3!.endpoint }],
    ]);
  }

  async function deploy(plan: EnvironmentPlan, version: string, onEvent?: (e: DeployEvent) => void): Promise<{ result: DeploymentResult; events: DeployEvent[] }> {
    const events: DeployEvent[] = [];
    const release = rel.releases[version]!;
    const result = await deployer.deploy({
      id: `d${++deployments}`,
      plan,
      image: rel.image,
      release: { id: deployments, digest: release.digest },
      auth: pullAuth(),
      onEvent: (e) => {
        if (process.env.DEBUG_DEPLOY) console.log(e.at % 100000, e.kind, e.target ?? '', e.message.slice(0, 100));
        events.push(e);
        onEvent?.(e);
      },
    }, connections());
    return { result, events };
  }

  /** Authentication is on in Wharf: the hosts pull with credentials sent as X-Registry-Auth. */
  function pullAuth() {
    return { serveraddress: server.host, username: server.admin.username, password: server.admin.password };
  }

  /** What the docker CLI (not Wharf's adapter) says runs on a host for the app: "image status" lines, sorted. */
  async function running(h: TestDaemon, env = 'production'): Promise<string[]> {
    const r = await h.mustDocker(['ps', '--no-trunc', '--filter', `label=wharf.app=${APP}`, '--filter', `label=wharf.env=${env}`, '--format', '{{.Image}} {{.Status}}']);
    return r.stdout.split('\n').filter(Boolean).sort();
  }

  function v2Ref(): string {
    return `${rel.image}@${rel.releases.v2!.digest}`;
  }

  async function assertRunsEverywhere(version: string, replicas = 2) {
    const ref = `${rel.image}@${rel.releases[version]!.digest}`;
    // the hosts at once: each `docker ps` is a CLI start, and the hosts do not depend on each other
    await Promise.all(
      hosts.map(async (h) => {
        const lines = await running(h);
        assert.equal(lines.length, replicas, `${h.name} runs ${replicas} replicas: ${lines.join(', ')}`);
        for (const l of lines) assert.match(l, new RegExp(`^${escape(ref)} Up `), `${h.name}: ${l}`);
        // Docker's own HEALTHCHECK (every second, 10 s to answer) can miss two probes in a row on a loaded machine
        // and show a good replica (unhealthy) for a moment: it must be (healthy) again within a few probes.
        const deadline = Date.now() + 20_000;
        let now = lines;
        while (!now.every((l) => /\(healthy\)/.test(l)) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 300));
          now = await running(h);
        }
        for (const l of now) assert.match(l, new RegExp(`^${escape(ref)} Up .*\\(healthy\\)`), `${h.name}: ${l}`);
      }),
    );
  }

  test('the engine API version is negotiated: the lower of Wharf\'s and the engine\'s', async () => {
    const engineApi = JSON.parse((await hosts[1]!.mustDocker(['version', '--format', '{{json .Server.APIVersion}}'])).stdout) as string;
    assert.equal((await new DockerodeHost({ endpoint: hosts[1]!.endpoint }).engine()).apiVersion, engineApi, 'Wharf speaks newer: the engine\'s version is used');
    const older = new DockerodeHost({ endpoint: hosts[1]!.endpoint }, '1.40');
    assert.equal((await older.engine()).apiVersion, '1.40', 'Wharf speaks older: its own version is used');
    assert.deepEqual(await older.listContainers({}), [], 'and requests work at that version');
    const tls = hosts[0]!.tcp!;
    assert.ok((await new DockerodeHost({ endpoint: tls.endpoint, tls: tls.tls }).engine()).engineVersion, 'tcp with TLS client certificates');
    await assert.rejects(new DockerodeHost({ endpoint: tls.endpoint }).engine(), 'plain http to a TLS-only engine fails');
  });

  test('first deploy to 3 hosts: each pulls from Wharf by digest and runs 2 healthy replicas', async () => {
    for (const h of hosts) assert.equal((await h.mustDocker(['images', '-q'])).stdout.trim(), '', `${h.name} starts without images`);
    const { result, events } = await deploy(production(3), 'v1');
    assert.equal(result.status, 'succeeded', result.reason ?? '');
    assert.deepEqual(
      result.steps.map((s) => [s.target, s.action, s.result, s.containers.length, s.digest]),
      [hosts[0]!.tcp!.endpoint, hosts[1]!.endpoint, hosts[2]!.endpoint].map((t) => [t, 'deploy', 'succeeded', 2, rel.releases.v1!.digest]),
    );
    await assertRunsEverywhere('v1');
    for (const h of hosts) {
      const images = (await h.mustDocker(['images', '--digests', '--format', '{{.Repository}}@{{.Digest}}'])).stdout.trim();
      assert.equal(images, `${rel.image}@${rel.releases.v1!.digest}`, `${h.name} pulled exactly the release`);
    }
    assert.deepEqual(events.filter((e) => e.kind === 'pulled').length, 3);
    assert.equal(events.at(-1)!.kind, 'finished');
    const status = await deployer.status({ plan: production(), image: rel.image, intended: { releaseId: 1, digest: rel.releases.v1!.digest } }, connections());
    assert.equal(status.inSync, true, JSON.stringify(status.targets.map((t) => t.drift)));
    assert.deepEqual(status.targets.map((t) => t.containers.length), [2, 2, 2]);
  });

  test('rolling update to a new release: one host at a time, old containers removed only at the end', async () => {
    const before = await hostContainerIds();
    const { result, events } = await deploy(production(), 'v2');
    assert.equal(result.status, 'succeeded', result.reason ?? '');
    await assertRunsEverywhere('v2');
    // parallelism 1: a host is switched before the next one starts its new replicas
    const order = events.filter((e) => e.kind === 'starting' || e.kind === 'switched').map((e) => `${e.kind} ${e.target}`);
    const targets = result.steps.map((s) => s.target);
    assert.deepEqual(order, targets.flatMap((t) => [`starting ${t}`, `switched ${t}`]));
    const cleanup = events.findIndex((e) => e.kind === 'cleanup');
    assert.ok(cleanup > events.map((e) => e.kind).lastIndexOf('switched'), 'previous containers are removed after every host switched');
    const afterIds = await hostContainerIds();
    for (const [i, ids] of afterIds.entries()) {
      assert.equal(ids.filter((id) => before[i]!.includes(id)).length, 0, `${hosts[i]!.name}: no v1 container is left, running or stopped`);
    }
  });

  test('a release whose health check fails is rolled back automatically, with the health output as the reason', async () => {
    const before = await hostContainerIds();
    const { result } = await deploy(production(3), 'bad');
    assert.equal(result.status, 'rolled_back');
    assert.match(result.reason!, new RegExp(`${HEALTH_FAILURE}: /www/fail present`));
    assert.match(result.reason!, /health check failed: exit code 1/);
    assert.deepEqual(result.steps.map((s) => [s.action, s.result]), [['deploy', 'failed'], ['deploy', 'failed'], ['deploy', 'failed']], 'all three hosts tried it at once (parallelism 3)');
    await assertRunsEverywhere('v2');
    assert.deepEqual(await hostContainerIds(), before, 'the very same v2 containers, and no leftover of the bad release');
  });

  test('a release failing on a later host: hosts already switched get the previous release back', async () => {
    const failLater = (e: DeployEvent) => {
      if (e.kind === 'switched' && e.target === hosts[0]!.tcp!.endpoint) void writeFile(join(shared, 'fail-v3'), 'x');
    };
    try {
      const { result, events } = await deploy(production(), 'v3', failLater);
      assert.equal(result.status, 'rolled_back', result.reason ?? '');
      assert.match(result.reason!, new RegExp(`^${escape(hosts[1]!.endpoint)}: .*${HEALTH_FAILURE}: /shared/fail-v3 present`, 's'));
      assert.deepEqual(
        result.steps.map((s) => [s.target, s.action, s.result]),
        [
          [hosts[0]!.tcp!.endpoint, 'deploy', 'succeeded'],
          [hosts[1]!.endpoint, 'deploy', 'failed'],
          [hosts[2]!.endpoint, 'deploy', 'skipped'],
          [hosts[0]!.tcp!.endpoint, 'restore', 'succeeded'],
        ],
      );
      assert.equal(result.steps[3]!.digest, rel.releases.v2!.digest, 'the restore step names the release it brought back');
      assert.ok(events.some((e) => e.kind === 'restored' && e.target === hosts[0]!.tcp!.endpoint));
    } finally {
      await rm(join(shared, 'fail-v3'), { force: true });
    }
    await assertRunsEverywhere('v2');
  });

  test('a host that goes down mid-rollout stops it; the hosts already switched are rolled back', async () => {
    const killThird = (e: DeployEvent) => {
      if (e.kind === 'switched' && e.target === hosts[0]!.tcp!.endpoint) void hosts[2]!.kill();
    };
    const { result } = await deploy(production(), 'v3', killThird);
    assert.equal(result.status, 'rolled_back', result.reason ?? '');
    assert.match(result.reason!, new RegExp(`^${escape(hosts[2]!.endpoint)}: host unreachable`));
    assert.deepEqual(
      result.steps.map((s) => [s.target, s.action, s.result]),
      [
        [hosts[0]!.tcp!.endpoint, 'deploy', 'succeeded'],
        [hosts[1]!.endpoint, 'deploy', 'succeeded'],
        [hosts[2]!.endpoint, 'deploy', 'failed'],
        [hosts[1]!.endpoint, 'restore', 'succeeded'],
        [hosts[0]!.tcp!.endpoint, 'restore', 'succeeded'],
      ],
    );
    for (const h of hosts.slice(0, 2)) {
      const lines = await running(h);
      assert.deepEqual(lines.map((l) => l.split(' ')[0]), [v2Ref(), v2Ref()], `${h.name} is back on v2`);
    }
  });

  test('status marks drift: a host that is down, a container started by hand, a missing replica', async () => {
    const intended = { releaseId: 2, digest: rel.releases.v2!.digest };
    assert.equal(hosts[2]!.alive(), false, 'host3 is still down from the previous test');
    const manual = `manual-${Date.now()}`;
    await hosts[1]!.mustDocker(['run', '-d', '--name', manual, '--network', 'host', `${rel.image}:v1`]);
    const victim = (await hosts[0]!.mustDocker(['ps', '-q', '--filter', `label=wharf.app=${APP}`])).stdout.split('\n')[0]!;
    await hosts[0]!.mustDocker(['rm', '-f', victim]);
    try {
      const status = await deployer.status({ plan: production(), image: rel.image, intended }, connections());
      assert.equal(status.inSync, false);
      const [t1, t2, t3] = status.targets;
      assert.deepEqual(status.targets.map((t) => t.reachable), [true, true, false]);
      assert.deepEqual(t1!.drift.map((d) => d.kind), ['missing_replica']);
      assert.match(t1!.drift[0]!.message, /1 of 2 replica/);
      assert.deepEqual(t2!.drift.map((d) => d.kind), ['unmanaged']);
      assert.equal(t2!.drift[0]!.container, manual);
      const hand = t2!.containers.find((c) => c.name === manual)!;
      assert.equal(hand.digest, rel.releases.v1!.digest, 'the hand-started container is resolved to the digest it really runs');
      assert.equal(hand.managed, false);
      assert.deepEqual(t3!.drift.map((d) => d.kind), ['host_down']);
    } finally {
      await hosts[1]!.docker(['rm', '-f', manual]);
    }
    // Deploying again to the hosts that answer heals their drift.
    const reachable: EnvironmentPlan = { ...production(2), targets: production().targets.slice(0, 2) };
    const { result } = await deploy(reachable, 'v2');
    assert.equal(result.status, 'succeeded', result.reason ?? '');
    const healed = await deployer.status({ plan: reachable, image: rel.image, intended }, connections());
    assert.equal(healed.inSync, true, JSON.stringify(healed.targets.map((t) => t.drift)));
  });

  describe('host network with a fixed port: Wharf checks health over HTTP, stop-first', () => {
    let port: number;
    let web: EnvironmentPlan;
    before(async () => {
      // Two replicas listen on port and port + 1.
      port = await freePorts(2);
      web = resolveEnvironment(
        parseAppFile(`
app: ${APP}
environments:
  web:
    targets: [h2]
    replicas: 2
    container:
      network: host
      port: ${port}
      stopTimeout: 2s
      healthcheck: { http: "http://{host}:{port}/health", interval: 300ms }
    rollout: { healthTimeout: 3s, monitor: 300ms }
`),
        'web',
      );
    });

    test('replicas listen on port + i and are checked by Wharf; a failing release is stopped and the old one restarted', async () => {
      assert.equal(web.rollout.order, 'stop-first', 'host network + fixed port implies stop-first');
      const first = await deploy(web, 'v1');
      assert.equal(first.result.status, 'succeeded', first.result.reason ?? '');
      for (const p of [port, port + 1]) assert.match(await (await fetch(`http://127.0.0.1:${p}/version`)).text(), /^v1-/);

      const bad = await deploy(web, 'bad');
      assert.equal(bad.result.status, 'rolled_back');
      assert.match(bad.result.reason!, new RegExp(`GET http://127\\.0\\.0\\.1:(${port}|${port + 1})/health: HTTP 404$`), "the status only, never the body");
      assert.ok(bad.events.findIndex((e) => e.kind === 'stopping') < bad.events.findIndex((e) => e.kind === 'starting'), 'stop-first');
      for (const p of [port, port + 1]) assert.match(await (await fetch(`http://127.0.0.1:${p}/version`)).text(), /^v1-/, 'v1 serves again');
    });

    test('a container that exits is reported with its exit code and output', async () => {
      const crashing = { ...web, container: { ...web.container, command: ['/bin/sh', '-c', 'echo "cannot open database"; exit 3'] } };
      const { result } = await deploy(crashing, 'v2');
      assert.equal(result.status, 'rolled_back');
      assert.match(result.reason!, /exited with code 3/);
      assert.match(result.reason!, /cannot open database/);
      assert.match(await (await fetch(`http://127.0.0.1:${port}/version`)).text(), /^v1-/);
    });

    test('a pull that fails (unknown digest, no credentials) fails the deployment before anything changed', async () => {
      const before = await containerIds(hosts[1]!, 'web');
      const missing = `sha256:${'0'.repeat(64)}`;
      const unknown = await deployer.deploy({ id: 'nopull1', plan: web, image: rel.image, release: { id: null, digest: missing }, auth: pullAuth() }, connections());
      assert.equal(unknown.status, 'failed');
      assert.match(unknown.reason!, /^pull on .* failed: .*(manifest unknown|not found)/i);
      assert.deepEqual(unknown.steps.map((s) => [s.result, s.containers.length]), [['failed', 0]]);
      // without credentials the engine has to ask Wharf, so it must not have the image already
      await hosts[1]!.mustDocker(['rmi', `${rel.image}@${rel.releases.v3!.digest}`]);
      const anonymous = await deployer.deploy({ id: 'nopull2', plan: web, image: rel.image, release: { id: null, digest: rel.releases.v3!.digest } }, connections());
      assert.equal(anonymous.status, 'failed');
      assert.match(anonymous.reason!, /^pull on .* failed: .*(unauthorized|authentication required|no basic auth)/i);
      assert.deepEqual(await containerIds(hosts[1]!, 'web'), before, 'the same containers, untouched');
    });
  });

  async function containerIds(h: TestDaemon, env: string): Promise<string[]> {
    return (await h.mustDocker(['ps', '-aq', '--no-trunc', '--filter', `label=wharf.env=${env}`])).stdout.split('\n').filter(Boolean).sort();
  }

  async function hostContainerIds(): Promise<string[][]> {
    return Promise.all(hosts.map((h) => containerIds(h, 'production')));
  }
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

