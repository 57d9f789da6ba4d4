// Which containers stand in an environment's way, against in-memory hosts: the ports host-network replicas need,
// holders of those ports (by anyone but the environment itself, Wharf's other environments included), containers
// named like the app, and the deploy refused before it pulls when a port is taken.
// (Against real engines, through the server and the CLI: test/e2e/port-check.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAppFile } from '../../src/app-file/parse.js';
import { resolveEnvironment, type EnvironmentPlan } from '../../src/app-file/plan.js';
import { appContainerNames, foreignContainers, neededPorts, portConflicts } from '../../src/deploy/foreign-containers.js';
import { Deployer } from '../../src/deploy/deployer.js';
import type { ContainerState, HeldPort } from '../../src/engine/docker-host.js';
import { MemoryEngines, MemoryHost } from '../support/memory-host.js';

const DIGEST = `sha256:${'1'.repeat(64)}`;

function plan(container: string, replicas = 2): EnvironmentPlan {
  return resolveEnvironment(
    parseAppFile(`app: team/web
environments:
  production:
    targets: [h1]
    replicas: ${replicas}
    container: ${container}
    rollout: { order: stop-first, monitor: 0s }
`),
    'production',
  );
}

function other(name: string, ports: HeldPort[], labels: Record<string, string> = {}): { container: ContainerState; ports: HeldPort[] } {
  return { container: { id: `id-${name}`, name, image: 'busybox:1', imageId: 'sha256:b', labels, status: 'running', running: true }, ports };
}

const tcp = (port: number, how: HeldPort['how'] = 'published'): HeldPort => ({ port, protocol: 'tcp', how });

test('only replicas on the host network need host ports: port + i for replica i', () => {
  assert.deepEqual(neededPorts(plan('{ network: host, port: 8080 }', 3)), [8080, 8081, 8082]);
  assert.deepEqual(neededPorts(plan('{ network: bridge, port: 8080 }')), [], 'Wharf publishes nothing on other networks');
  assert.deepEqual(neededPorts(plan('{ network: host }')), []);
  assert.deepEqual(appContainerNames('team/web'), ['web', 'team_web', 'team-web']);
});

test('holders of needed ports and containers named like the app are found; the environment itself is not', async () => {
  const host = new MemoryHost('unix:///h1');
  host.others = [
    other('squatter', [tcp(8081, 'declared')]),
    other('web', [tcp(9999)]),
    other('staging', [tcp(8080)], { 'wharf.app': 'team/web', 'wharf.env': 'staging' }),
    other('mine', [tcp(8080, 'declared')], { 'wharf.app': 'team/web', 'wharf.env': 'production' }),
    other('udp-only', [{ port: 8080, protocol: 'udp', how: 'published' }]),
    other('bystander', [tcp(22)]),
  ];
  const found = await foreignContainers(host, plan('{ network: host, port: 8080 }'));
  assert.deepEqual(
    found.map((f) => [f.container.name, f.ports.map((p) => p.port), f.named, f.owner]),
    [
      ['squatter', [8081], false, "not Wharf's"],
      ['web', [], true, "not Wharf's"],
      ['staging', [8080], false, "Wharf's team/web staging"],
    ],
  );
});

test('a deploy whose port is held is refused before anything is pulled, naming the port and its holder', async () => {
  const engines = new MemoryEngines();
  const host = engines.dockerHost({ endpoint: 'unix:///h1' } as never);
  host.others = [other('squatter', [tcp(8081, 'declared')])];
  let pulled = false;
  host.onPull = async () => {
    pulled = true;
  };
  const p = plan('{ network: host, port: 8080 }');
  const connections = new Map([['h1', { endpoint: 'unix:///h1' } as never]]);
  const result = await new Deployer(engines).deploy({ id: 'd1', plan: p, image: 'x', release: { id: 1, digest: DIGEST } }, connections);
  assert.equal(result.status, 'failed');
  assert.equal(
    result.reason,
    "on unix:///h1 port 8081 is held by container squatter (not Wharf's, runs busybox:1; declared on the host network): stop or remove it, or give the app another container.port; nothing was pulled, stopped or started",
  );
  assert.deepEqual(result.steps.map((s) => [s.target, s.result, s.containers.length]), [['h1', 'skipped', 0]]);
  assert.equal(pulled, false);
  assert.equal(host.containers.size, 0);

  // Gone, the same deploy goes ahead.
  host.others = [];
  assert.equal(await portConflicts([{ host, plan: p }]), null);
  const again = await new Deployer(engines).deploy({ id: 'd2', plan: p, image: 'x', release: { id: 1, digest: DIGEST } }, connections);
  assert.equal(again.status, 'succeeded', again.reason ?? '');
  assert.equal(pulled, true);
});
