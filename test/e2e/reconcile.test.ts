// The server's reconcile loop on a real Docker host, woken by the engine's events: the schedule is an hour, so only
// the event of a container removed by hand can make it look. The removal is announced as drift (a deployment.drift
// webhook, the wharf_environments_drifted metric) and, with autoHeal, the current release is deployed again within
// seconds — never the newer release that is only pending. Wharf's own deployment, whose stops and removals are
// events too, starts no heal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withDeployHub } from '../support/deploy-hub.js';
import { eventually } from '../webhooks/receiver.js';

test('a container removed by hand is healed at its event with the current release, and the drift announced; a forced deploy starts no heal', { timeout: 300_000 }, async (t) => {
  await withDeployHub(t, { name: 'reconcile', hosts: 1, app: 'heal', versions: ['v1', 'v2'], wharf: { env: { WHARF_RECONCILE_INTERVAL: '1h' } } }, async ({ server: s, hosts, releases: rel, dir, ok, receiver }) => {
    const h1 = hosts[0]!;
    const hook = await receiver();
    await ok('webhook', 'add', hook.url, '--events', 'deployment.drift,deploy.*');
    const file = join(dir, 'wharf.yaml');
    await writeFile(
      file,
      `app: heal
container: { network: host, stopTimeout: 2s }
rollout: { monitor: 300ms, healthTimeout: 20s }
environments:
  production:
    autoDeploy: true
    autoHeal: true
    replicas: 2
    targets: [host-1]
`,
    );
    await ok('target', 'add', 'host-1', h1.endpoint, '--apps', 'heal', '--allow', 'network-host');
    await ok('apply', '-f', file);
    assert.match(await ok('release', 'heal', 'v1', '--env', 'production'), /succeeded/);
    const metrics = async () => (await fetch(`${s.url}/metrics`)).text();
    await eventually(async () => ((await metrics()).includes('wharf_engine_event_streams{state="open"} 1') ? true : undefined), 'the event stream of host-1', 15_000);
    // Wharf's own deployment stops and removes both replicas: the loop waits for it to end, finds no drift, heals nothing.
    const looks = () => s.logs().split('\n').filter((l) => l.includes('"app":"heal"') && l.includes('looked after an engine event: it runs its current release')).length;
    const looked = looks();
    assert.match(await ok('deploy', 'heal', '--env', 'production', '--force'), /succeeded/);
    const deployed = Date.now();
    // The look those events start comes once the deployment is over and settled (3 s): anything it did is done then.
    await eventually(async () => (looks() > looked ? true : undefined), 'the reconcile loop to look after the deployment', 30_000);
    t.diagnostic(`the loop looked ${((Date.now() - deployed) / 1000).toFixed(1)} s after the forced deploy (it waited a fixed 5 s before)`);
    const deployments = async () => JSON.parse(await ok('deployments', 'heal', '--env', 'production', '--json')) as { trigger: string; status: string; actor: string }[];
    assert.deepEqual((await deployments()).map((d) => d.trigger), ['deploy --force', 'release'], 'no auto-heal after a deploy of its own');
    assert.equal(hook.received.filter((r) => r.body?.event === 'deployment.drift').length, 0, 'no drift announced for a deploy of its own');

    // v2 released without deploying: pending, so healing must not ship it.
    const pending = await fetch(`${s.url}/api/v1/apps/heal/releases`, {
      method: 'POST',
      headers: { authorization: s.authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ environment: 'production', ref: 'v2', deploy: false }),
    });
    assert.equal(pending.status, 201, await pending.text());

    const running = async () =>
      (await h1.mustDocker(['ps', '--no-trunc', '--filter', 'label=wharf.app=heal', '--format', '{{.ID}} {{.Image}}'])).stdout.split('\n').filter(Boolean);
    const before = await running();
    assert.equal(before.length, 2);
    const victim = before[0]!.split(' ')[0]!;
    assert.match(await metrics(), /^wharf_environments_drifted 0$/m);
    await h1.mustDocker(['rm', '-f', victim]);
    const removedAt = Date.now();
    // Drifted from the look that finds it until the look after the heal (the heal, then 3 s of settling): seen while
    // polling from the removal on, with no wait of its own.
    const counted = eventually(async () => (/^wharf_environments_drifted 1$/m.test(await metrics()) ? true : undefined), 'wharf_environments_drifted 1', 30_000);

    const drift = await eventually(async () => hook.received.find((r) => r.body?.event === 'deployment.drift'), 'the deployment.drift webhook', 30_000);
    await counted;
    assert.equal(drift.body.repository, 'heal');
    assert.equal(drift.body.environment, 'production');
    assert.equal(drift.body.digest, rel.releases.v1!.digest);
    assert.ok((drift.body.drift as { kind: string }[]).some((d) => d.kind === 'missing_replica'), JSON.stringify(drift.body.drift));

    const healed = await eventually(
      async () => hook.received.find((r) => r.body?.event === 'deploy.succeeded' && r.body.actor === 'wharf'),
      'the auto-heal deployment',
      60_000,
    );
    t.diagnostic(`healed ${((Date.now() - removedAt) / 1000).toFixed(1)} s after the removal (schedule: 1 h)`);
    assert.equal(healed.body.digest, rel.releases.v1!.digest, 'the current release, not the pending v2');
    const after = await running();
    assert.equal(after.length, 2);
    for (const line of after) assert.equal(line.split(' ')[1], `${rel.image}@${rel.releases.v1!.digest}`);
    assert.ok(!after.some((l) => l.startsWith(victim)));
    const list = await deployments();
    assert.deepEqual([list[0]!.trigger, list[0]!.status, list[0]!.actor], ['auto-heal', 'succeeded', 'wharf']);
    // In sync again: the metric goes back to 0, and v2 is still only pending.
    await eventually(async () => ((await metrics()).includes('wharf_environments_drifted 0') ? true : undefined), 'the drift metric back to 0', 15_000);
    const envs = JSON.parse(await ok('env', 'list', 'heal', '--json')) as { name: string; current: { digest: string }; pending: { digest: string } | null }[];
    assert.deepEqual([envs[0]!.current.digest, envs[0]!.pending?.digest], [rel.releases.v1!.digest, rel.releases.v2!.digest]);
  });
});
