// Idempotent deploys through the wharf CLI on real engines (two Docker hosts, and a one-node swarm on the first):
// a deploy or a retried release of what already runs, healthy, from the same app file restarts nothing (container
// and task ids unchanged) and says so; --force restarts; a changed app file or a missing replica deploys again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestDaemon } from '../support/dockerd.js';
import { withDeployHub } from '../support/deploy-hub.js';

const SERVICE = 'idem_cluster';

test('a deploy of what already runs restarts nothing; --force restarts', { timeout: 600_000 }, async (t) => {
  await withDeployHub(t, { name: 'idempotent', hosts: 2, swarm: true, app: 'idem', versions: ['v1'], cliTimeoutMs: 240_000 }, async ({ hosts, dir, ok }) => {
    const [h1, h2] = hosts as [TestDaemon, TestDaemon];
    const appFile = (greeting: string) => `app: idem
container:
  network: host
  stopTimeout: 2s
  env: { GREETING: ${greeting} }
rollout: { parallelism: 2, monitor: 300ms, healthTimeout: 20s }
environments:
  production:
    autoDeploy: true
    replicas: 2
    targets: [host-1, host-2]
  cluster:
    autoDeploy: true
    replicas: 3
    swarm: { target: host-1, service: ${SERVICE} }
    rollout: { parallelism: 3, monitor: 1s }
`;
    const file = join(dir, 'wharf.yaml');
    await writeFile(file, appFile('hello'));
    await ok('target', 'add', 'host-1', h1.endpoint, '--apps', 'idem', '--allow', 'network-host');
    await ok('target', 'add', 'host-2', h2.endpoint, '--apps', 'idem', '--allow', 'network-host');
    await ok('apply', '-f', file);

    const containers = async () => {
      const ids: string[] = [];
      for (const h of [h1, h2]) ids.push(...(await h.mustDocker(['ps', '-q', '--no-trunc', '--filter', 'label=wharf.app=idem', '--filter', 'label=wharf.env=production'])).stdout.split('\n').filter(Boolean));
      return ids.sort();
    };
    const tasks = async () =>
      (await h1.mustDocker(['service', 'ps', SERVICE, '-q', '--no-trunc', '--filter', 'desired-state=running'])).stdout.split('\n').filter(Boolean).sort();

    // Docker hosts
    assert.match(await ok('release', 'idem', 'v1', '--env', 'production'), /succeeded/);
    const first = await containers();
    assert.equal(first.length, 4);
    const again = await ok('deploy', 'idem', '--env', 'production');
    assert.match(again, /: unchanged — sha256:[0-9a-f]{64} already runs on every target \(4 replica\(s\), healthy, same app file\): nothing restarted; --force restarts/);
    assert.deepEqual(await containers(), first, 'a retried deploy restarts nothing');
    // A retried CI job releasing the same tag again: a new release row, no restart.
    assert.match(await ok('release', 'idem', 'v1', '--env', 'production'), /unchanged/);
    assert.deepEqual(await containers(), first);

    const forced = await ok('deploy', 'idem', '--env', 'production', '--force');
    assert.match(forced, /: succeeded/);
    const afterForce = await containers();
    assert.equal(afterForce.length, 4);
    assert.ok(afterForce.every((id) => !first.includes(id)), '--force restarts every replica');

    // A changed app file is a change, even with the same digest.
    await writeFile(file, appFile('bonjour'));
    await ok('apply', '-f', file);
    assert.match(await ok('deploy', 'idem', '--env', 'production'), /: succeeded/);
    const afterChange = await containers();
    assert.ok(afterChange.every((id) => !afterForce.includes(id)), 'the new app file was deployed');
    const greeting = (await h2.mustDocker(['inspect', afterChange.find(Boolean)!, '--format', '{{json .Config.Env}}']).catch(async () => h1.mustDocker(['inspect', afterChange[0]!, '--format', '{{json .Config.Env}}']))).stdout;
    assert.match(greeting, /GREETING=bonjour/);

    // A replica removed by hand: not in sync, so the deploy deploys.
    const gone = (await h2.mustDocker(['ps', '-q', '--no-trunc', '--filter', 'label=wharf.app=idem'])).stdout.split('\n').filter(Boolean)[0]!;
    await h2.mustDocker(['rm', '-f', gone]);
    assert.match(await ok('deploy', 'idem', '--env', 'production'), /: succeeded/);
    assert.equal((await containers()).length, 4);

    // Swarm: task ids stay; --force replaces them.
    assert.match(await ok('release', 'idem', 'v1', '--env', 'cluster'), /succeeded/);
    const firstTasks = await tasks();
    assert.equal(firstTasks.length, 3);
    assert.match(await ok('deploy', 'idem', '--env', 'cluster'), /: unchanged — .*3 replica\(s\)/);
    assert.deepEqual(await tasks(), firstTasks, 'a retried Swarm deploy restarts no task');
    assert.match(await ok('deploy', 'idem', '--env', 'cluster', '--force'), /: succeeded/);
    const forcedTasks = await tasks();
    assert.equal(forcedTasks.length, 3);
    assert.ok(forcedTasks.every((id) => !firstTasks.includes(id)), '--force replaces every task');

    // The record: the no-op deployments are rows too, with what they found.
    const list = JSON.parse(await ok('deployments', 'idem', '--env', 'production', '--json')) as { status: string; reason: string | null; trigger: string }[];
    assert.ok(list.some((d) => d.status === 'succeeded' && /already runs on every target/.test(d.reason ?? '')));
    assert.ok(list.some((d) => d.trigger === 'deploy --force'));
  });
});
