// The seed's multi-host story through the wharf CLI and a running server, on real engines: apply an app file,
// release with auto-deploy to two hosts, a release whose health check fails rolls back by itself and exits
// non-zero — and takes the environment's current release and tag back with it, its digest refused for promotion —,
// rollback --deploy to a release three versions back, status with drift, and the deployment record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestDaemon } from '../support/dockerd.js';
import { HEALTH_FAILURE } from '../support/deploy-images.js';
import { withDeployHub } from '../support/deploy-hub.js';
import { getManifest } from '../support/registry-client.js';
import { eventually } from '../webhooks/receiver.js';

test('apply, release with auto-deploy, failed release rolled back, rollback --deploy, status and drift', { timeout: 420_000 }, async (t) => {
  await withDeployHub(t, { name: 'deploy-cli', hosts: 2, app: 'web', versions: ['v1', 'v2', 'v3', 'v4', 'bad'], cliTimeoutMs: 180_000 }, async ({ hosts, releases: rel, server: s, dir, wharf, ok, receiver }) => {
    const [h1, h2] = hosts as [TestDaemon, TestDaemon];
    const hook = await receiver();
    await ok('webhook', 'add', hook.url, '--events', 'deploy.*');

    const appFile = join(dir, 'wharf.yaml');
    await writeFile(
      appFile,
      `app: web
container:
  stopTimeout: 2s
  env: { GREETING: hello }
rollout: { parallelism: 1, healthTimeout: 20s, monitor: 300ms }
environments:
  production:
    autoDeploy: true
    replicas: 1
    targets:
      - host-1
      - host-2
`,
    );
    // The hosts are registered deploy targets (global admin); the app file names them.
    await ok('target', 'add', 'host-1', h1.endpoint, '--apps', 'web');
    await ok('target', 'add', 'host-2', h2.endpoint, '--apps', 'web');
    const dry = await ok('apply', '-f', appFile, '--dry-run');
    assert.match(dry, /dry run, nothing applied/);
    assert.match(dry, /\+ environments/);
    assert.match(await ok('apply', '-f', appFile), /app web applied/);
    assert.match(await ok('apply', '-f', appFile), /applied \(0 changes\)/, 'apply is idempotent');
    assert.match(await ok('get', 'web', '-o', 'yaml'), /autoDeploy: true/);

    // A bad app file is refused with a located error.
    const broken = join(dir, 'broken.yaml');
    await writeFile(broken, `app: web\nenvironments:\n  production:\n    targets: ["htp://nowhere"]\n`);
    const refused = await wharf('apply', '-f', broken);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /environments\.production\.targets\[0\]/);

    const running = async (h: typeof h1) =>
      (await h.mustDocker(['ps', '--no-trunc', '--filter', 'label=wharf.app=web', '--format', '{{.Image}}'])).stdout.split('\n').filter(Boolean);
    const digestOf = (v: string) => rel.releases[v]!.digest;

    // autoDeploy: the release deploys to both hosts.
    for (const v of ['v1', 'v2', 'v3', 'v4']) {
      const out = await ok('release', 'web', v, '--env', 'production', '--note', `ship ${v}`);
      assert.match(out, /succeeded/, out);
    }
    for (const h of [h1, h2]) assert.deepEqual(await running(h), [`${rel.image}@${digestOf('v4')}`]);

    // A release whose health check fails: rolled back everywhere, exit code non-zero, the reason said.
    const bad = await wharf('release', 'web', 'bad', '--env', 'production');
    assert.notEqual(bad.code, 0, `a failed deployment exits non-zero:\n${bad.stdout}\n${bad.stderr}`);
    assert.match(bad.stderr, /rolled back|failed/);
    assert.match(bad.stdout + bad.stderr, new RegExp(HEALTH_FAILURE));
    for (const h of [h1, h2]) assert.deepEqual(await running(h), [`${rel.image}@${digestOf('v4')}`], 'the previous release runs everywhere');

    // …and production's current release never left v4 (the failed one was only pending); web:production neither.
    assert.match(bad.stdout, /released bad .* \(pending: current once its deployment succeeds/);
    const envs = JSON.parse(await ok('env', 'list', 'web', '--json')) as { name: string; current: { digest: string; kind: string; note: string }; pending: unknown }[];
    const production = envs.find((e) => e.name === 'production')!;
    assert.deepEqual([production.current.digest, production.current.kind, production.current.note, production.pending], [digestOf('v4'), 'release', 'ship v4', null]);
    assert.equal((await getManifest(s.url, 'web', 'production')).digest, digestOf('v4'));
    const listed = await ok('releases', 'web', '--env', 'production', '--limit', '2');
    assert.match(listed, /DEPLOYED/);
    assert.match(listed.split('\n')[1]!, /release\s+bad\s.*#\d+ rolled back/);
    assert.match(listed.split('\n')[2]!, /release\s+v4\s.*#\d+ succeeded/);

    // Promotion takes what runs (v4); the failed digest released again without deploying is pending, not promoted.
    await ok('env', 'create', 'web', 'dr', '--requires-promotion-from', 'production');
    assert.equal(JSON.parse(await ok('promote', 'web', '--from', 'production', '--to', 'dr', '--json')).digest, digestOf('v4'));
    const again = await fetch(`${s.url}/api/v1/apps/web/releases`, {
      method: 'POST',
      headers: { authorization: s.authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ environment: 'production', ref: 'bad', deploy: false }),
    });
    assert.equal(again.status, 201, await again.text());
    assert.match(await ok('env', 'list', 'web'), new RegExp(`production\\s+${digestOf('v4').slice(0, 19)}\\s+\\d+\\s+${digestOf('bad').slice(0, 19)} \\(release \\d+\\)`));
    assert.equal(JSON.parse(await ok('promote', 'web', '--from', 'production', '--to', 'dr', '--json')).digest, digestOf('v4'));
    assert.equal((await getManifest(s.url, 'web', 'production')).digest, digestOf('v4'), 'web:production still names what runs');

    // Rollback --deploy to a release three versions back (v1), by version.
    const back = JSON.parse(await ok('rollback', 'web', '--env', 'production', '--to', 'v1', '--deploy', '--json'));
    assert.equal(back.release.digest, digestOf('v1'));
    assert.equal(back.result.status, 'succeeded');
    for (const h of [h1, h2]) assert.deepEqual(await running(h), [`${rel.image}@${digestOf('v1')}`]);

    // Status tells the truth: in sync, then drift after a container started by hand with another image.
    const status = JSON.parse(await ok('status', 'web', '--json'));
    assert.equal(status[0].inSync, true, JSON.stringify(status));
    assert.equal(status[0].intended.digest, digestOf('v1'));
    await h2.mustDocker(['pull', `${rel.image}@${digestOf('v2')}`]).catch(() => undefined);
    await h2.mustDocker(['run', '-d', '--network', 'host', '--label', 'wharf.app=web', '--label', 'wharf.env=production', '--name', 'by-hand', `${rel.image}@${digestOf('v2')}`]).catch(
      async () => {
        // the host needs credentials for the pull: log it in through the docker CLI of that daemon
        await h2.mustDocker(['login', '-u', s.admin.username, '-p', s.admin.password, s.host]);
        await h2.mustDocker(['run', '-d', '--network', 'host', '--label', 'wharf.app=web', '--label', 'wharf.env=production', '--name', 'by-hand', `${rel.image}@${digestOf('v2')}`]);
      },
    );
    const drifted = await wharf('status', 'web', '--env', 'production');
    assert.notEqual(drifted.code, 0, 'status exits non-zero when something drifted');
    assert.match(drifted.stdout, new RegExp(`${h2.endpoint.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}.*(unmanaged|wrong_image|extra_replica)`));

    // deploy.* events reached the webhook, the rolled-back one with its reason.
    const rolledBack = await eventually(
      async () => hook.received.find((x) => x.body.event === 'deploy.rolled_back'),
      'a deploy.rolled_back webhook',
      30_000,
    );
    assert.equal(rolledBack.body.digest, digestOf('bad'));
    assert.match(rolledBack.body.reason, new RegExp(HEALTH_FAILURE));
    assert.ok(hook.received.some((x) => x.body.event === 'deploy.started'));
    assert.ok(hook.received.some((x) => x.body.event === 'deploy.succeeded' && x.body.digest === digestOf('v1')));

    // Every deployment is recorded with its outcome.
    const history = JSON.parse(await ok('deployments', 'web', '--env', 'production', '--json')) as { status: string; digest: string }[];
    assert.equal(history.length, 6);
    // newest first: the rollback, the bad release, then v4 … v1
    assert.deepEqual(
      history.map((d) => d.status),
      ['succeeded', 'rolled_back', 'succeeded', 'succeeded', 'succeeded', 'succeeded'],
    );
    assert.equal(history[1]!.digest, digestOf('bad'));
  });
});
