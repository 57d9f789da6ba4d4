// Per-target overrides on two real Docker hosts that are not identical: both share this machine's network, so
// host-2 takes another port (and two replicas), another REGION and a label of its own. Wharf's own HTTP health
// check reaches each replica at its host's port, the apps answer there, a second deploy restarts nothing (each host
// is compared with its own spec), a changed override restarts, and an override naming no target of the
// environment is refused with a located error.
// scripts/test.js: alone (health checks every 200 ms on two hosts)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestDaemon } from '../support/dockerd.js';
import { withDeployHub } from '../support/deploy-hub.js';
import { freePort, freePorts } from '../support/net.js';

test('two Docker hosts with their own port, env, labels and replicas', { timeout: 300_000 }, async (t) => {
  await withDeployHub(t, { name: 'overrides', hosts: 2, app: 'shop', versions: ['v1'] }, async ({ hosts, releases: rel, dir, wharf, ok }) => {
    const [h1, h2] = hosts as [TestDaemon, TestDaemon];
    const [portA, portB] = [await freePort(), await freePorts(2)];
    const file = join(dir, 'wharf.yaml');
    const appFile = (regionB: string) => `app: shop
container:
  network: host
  port: ${portA}
  env: { REGION: eu, TIER: web }
  stopTimeout: 2s
  healthcheck: { http: "http://{host}:{port}/version", interval: 200ms }
rollout: { healthTimeout: 20s, monitor: 300ms }
environments:
  production:
    replicas: 1
    targets: [host-1, host-2]
    overrides:
      host-2: { port: ${portB}, replicas: 2, env: { REGION: ${regionB} }, labels: { rack: b } }
`;
    await writeFile(file, appFile('us'));
    for (const [name, h] of [['host-1', h1], ['host-2', h2]] as const) await ok('target', 'add', name, h.endpoint, '--apps', 'shop', '--allow', 'network-host');
    assert.match(await ok('apply', '-f', file, '--dry-run'), /"overrides":\{"host-2":\{"port":/);
    await ok('apply', '-f', file);
    assert.match(await ok('release', 'shop', 'v1', '--env', 'production', '--deploy'), /succeeded/);

    const containers = async (h: TestDaemon) => {
      const ids = (await h.mustDocker(['ps', '-q', '--no-trunc', '--filter', 'label=wharf.app=shop'])).stdout.split('\n').filter(Boolean);
      const inspected = JSON.parse((await h.mustDocker(['inspect', ...ids])).stdout) as { Id: string; Config: { Env: string[]; Labels: Record<string, string> } }[];
      return inspected
        .map((c) => ({ id: c.Id, env: Object.fromEntries(c.Config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)])), rack: c.Config.Labels.rack }))
        .sort((a, b) => Number(a.env.WHARF_REPLICA) - Number(b.env.WHARF_REPLICA));
    };
    const one = await containers(h1);
    const two = await containers(h2);
    assert.deepEqual(one.map((c) => [c.env.PORT, c.env.REGION, c.env.TIER, c.rack]), [[String(portA), 'eu', 'web', undefined]]);
    assert.deepEqual(two.map((c) => [c.env.PORT, c.env.REGION, c.env.TIER, c.rack]), [
      [String(portB), 'us', 'web', 'b'],
      [String(portB + 1), 'us', 'web', 'b'],
    ]);
    // Each replica answers on its own host's port.
    for (const port of [portA, portB, portB + 1]) {
      const res = await fetch(`http://127.0.0.1:${port}/version`);
      assert.equal(res.status, 200, `port ${port}`);
      assert.match(await res.text(), /^v1-/);
    }
    const status = JSON.parse(await ok('status', 'shop', '--env', 'production', '--json')) as { inSync: boolean; targets: { containers: unknown[] }[] }[];
    assert.deepEqual([status[0]!.inSync, status[0]!.targets.map((x) => x.containers.length)], [true, [1, 2]]);

    // The same again: every host already runs its own spec, nothing restarts.
    assert.match(await ok('deploy', 'shop', '--env', 'production'), /unchanged|already runs/);
    assert.deepEqual((await containers(h2)).map((c) => c.id), two.map((c) => c.id));

    // host-2's override changes: its containers are made again with it; host-1's spec is unchanged.
    await writeFile(file, appFile('ap'));
    assert.match(await ok('apply', '-f', file, '--dry-run'), /~ environments\.production\.overrides\.host-2\.env\.REGION: us → ap/);
    await ok('apply', '-f', file);
    assert.match(await ok('deploy', 'shop', '--env', 'production'), /succeeded/);
    assert.deepEqual((await containers(h2)).map((c) => c.env.REGION), ['ap', 'ap']);
    assert.deepEqual((await containers(h1)).map((c) => c.env.REGION), ['eu']);

    // An override for a target the environment does not deploy to: refused, located, one line.
    await writeFile(file, appFile('us').replace('host-2: {', 'host-3: {'));
    const refused = await wharf('apply', '-f', file);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /environments\.production\.overrides\.host-3: 'host-3' is not a target of this environment \(this environment's targets are host-1, host-2\)/);
  });
});
