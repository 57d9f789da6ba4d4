// A container that is not Wharf's stands in a deploy's way, on a real engine, through the server and the CLI:
// `wharf status` names it (holding the app's port on the host network, publishing it with -p, only named like
// the app, or the app's image started by hand from a tag that has gone), and `wharf deploy` fails at once naming the port and its holder, with nothing pulled, stopped or
// started on the host; once it is gone the same deploy goes ahead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mustRun } from '../support/command.js';
import { daemonsUnavailable, startDaemons, type DaemonSet } from '../support/dockerd.js';
import { pushTestReleases } from '../support/deploy-images.js';
import { BASE_IMAGE, ensureBaseImage } from '../support/images.js';
import { freePort } from '../support/net.js';
import { runWharf, startWharf, withLogsOnFailure, type WharfServer } from '../support/server.js';

test('status shows foreign containers; a deploy whose port is held fails before it changes anything', { timeout: 300_000 }, async (t) => {
  const why = await daemonsUnavailable();
  if (why) return t.skip(why);
  let daemons: DaemonSet | undefined;
  let server: WharfServer | undefined;
  const dir = await mkdtemp(join(tmpdir(), 'wharf-port-check-'));
  try {
    [daemons, server] = await Promise.all([startDaemons(1), startWharf()]);
    const s = server;
    const h = daemons.daemons[0]!;
    await withLogsOnFailure(s, async () => {
      await s.login('docker');
      const rel = await pushTestReleases(s.host, 'web', ['v1']);
      const env = { ...process.env, WHARF_SERVER: s.url, WHARF_CONFIG_DIR: join(dir, 'config') };
      const wharf = (...args: string[]) => runWharf(args, { env, timeoutMs: 120_000 });
      const ok = async (...args: string[]) => {
        const r = await wharf(...args);
        assert.equal(r.code, 0, `wharf ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
        return r.stdout;
      };
      assert.equal((await runWharf(['login', s.url, '-u', s.admin.username, '--password-stdin'], { env, input: s.admin.password })).code, 0);
      const port = await freePort();
      await ok('target', 'add', 'host-1', h.endpoint, '--apps', 'web', '--allow', 'network-host');
      const appFile = join(dir, 'wharf.yaml');
      await writeFile(
        appFile,
        `app: web
container: { network: host, port: ${port}, stopTimeout: 2s }
rollout: { healthTimeout: 20s, monitor: 300ms }
environments:
  production:
    targets: [host-1]
    replicas: 1
`,
      );
      await ok('apply', '-f', appFile);
      await ok('release', 'web', 'v1', '--env', 'production');
      // The host has the busybox image the foreign containers run, and nothing of the app.
      await ensureBaseImage('docker');
      await mustRun('sh', ['-c', `docker save ${BASE_IMAGE} | docker -H ${h.endpoint} load`], { timeoutMs: 120_000 });
      const appImages = async () => (await h.mustDocker(['images', '-q', rel.image])).stdout.trim();
      const appContainers = async () => (await h.mustDocker(['ps', '-aq', '--filter', 'label=wharf.app=web'])).stdout.trim();

      // 1. Someone serves on the app's port on the host network, saying so with PORT (as Wharf's own replicas do).
      await h.mustDocker(['run', '-d', '--name', 'squatter', '--network', 'host', '-e', `PORT=${port}`, BASE_IMAGE, 'httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', '/tmp']);
      const held = `port ${port} is held by container squatter (not Wharf's, runs ${BASE_IMAGE}; declared on the host network)`;
      let status = await wharf('status', 'web', '--env', 'production');
      assert.equal(status.code, 1, status.stdout + status.stderr);
      assert.ok(status.stdout.includes(`port_taken: ${held}: a deploy cannot start here`), status.stdout);
      const refused = await wharf('deploy', 'web', '--env', 'production');
      assert.notEqual(refused.code, 0, refused.stdout);
      assert.ok(refused.stderr.includes(`failed — on ${h.endpoint} ${held}: stop or remove it, or give the app another container.port; nothing was pulled, stopped or started`), refused.stderr);
      assert.equal(await appContainers(), '', 'no container was created');
      assert.equal(await appImages(), '', 'nothing was pulled');
      assert.match((await h.mustDocker(['inspect', '-f', '{{.State.Running}}', 'squatter'])).stdout, /true/, 'the holder was left alone');
      const envs = JSON.parse(await ok('env', 'list', 'web', '--json')) as { name: string; current: unknown; pending: { digest: string } | null }[];
      assert.equal(envs[0]!.pending?.digest, rel.releases.v1!.digest, 'the release is still waiting for its deployment');
      await h.mustDocker(['rm', '-f', 'squatter']);

      // 2. A container named like the app publishes the port with -p from a network of its own.
      await h.mustDocker(['network', 'create', 'elsewhere']);
      await h.mustDocker(['run', '-d', '--name', 'web', '--network', 'elsewhere', '-p', `127.0.0.1:${port}:80`, BASE_IMAGE, 'httpd', '-f', '-p', '80', '-h', '/tmp']);
      const published = `port ${port} is held by container web (not Wharf's, runs ${BASE_IMAGE}; published with -p)`;
      status = await wharf('status', 'web', '--env', 'production', '--json');
      const drift = (JSON.parse(status.stdout) as { targets: { drift: { kind: string; container?: string; message: string }[] }[] }[])[0]!.targets[0]!.drift;
      assert.deepEqual(drift.find((d) => d.kind === 'port_taken'), { kind: 'port_taken', container: 'web', message: `${published}: a deploy cannot start here` });
      const again = await wharf('deploy', 'web', '--env', 'production');
      assert.notEqual(again.code, 0);
      assert.ok(again.stderr.includes(published), again.stderr);
      assert.equal(await appContainers(), '');
      await h.mustDocker(['rm', '-f', 'web']);

      // 3. Named like the app, holding nothing: status shows it, and the deploy goes ahead.
      await h.mustDocker(['run', '-d', '--name', 'web', '--network', 'none', BASE_IMAGE, 'sleep', '600']);
      const deployed = await wharf('deploy', 'web', '--env', 'production');
      assert.equal(deployed.code, 0, deployed.stdout + deployed.stderr);
      assert.match(deployed.stdout, /succeeded/);
      assert.match(await (await fetch(`http://127.0.0.1:${port}/version`)).text(), /^v1-/);
      status = await wharf('status', 'web', '--env', 'production');
      assert.equal(status.code, 1, 'not in sync while a container named like the app is not Wharf\'s');
      assert.ok(status.stdout.includes(`foreign: web is named like the app but was not started by Wharf (runs ${BASE_IMAGE})`), status.stdout);
      const ids = await appContainers();
      const unchanged = await wharf('deploy', 'web', '--env', 'production');
      assert.equal(unchanged.code, 0, unchanged.stderr);
      assert.match(unchanged.stdout, /unchanged/, 'a container only named like the app does not make a deploy restart the app');
      assert.equal(await appContainers(), ids);
      await h.mustDocker(['rm', '-f', 'web']);
      status = await wharf('status', 'web', '--env', 'production');
      assert.equal(status.code, 0, status.stdout);
      assert.match(status.stdout, /in sync/);

      // 4. The app's image started by hand from a tag that has since moved: Docker shows only the image's ID.
      await h.mustDocker(['pull', `${rel.image}:v1`]);
      await h.mustDocker(['run', '-d', '--name', 'by-hand', '--network', 'none', `${rel.image}:v1`]);
      await h.mustDocker(['tag', BASE_IMAGE, `${rel.image}:v1`]);
      assert.match((await h.mustDocker(['ps', '--filter', 'name=by-hand', '--format', '{{.Image}}'])).stdout, /^(sha256:)?[0-9a-f]{12,64}\n?$/);
      status = await wharf('status', 'web', '--env', 'production', '--json');
      const target = (JSON.parse(status.stdout) as { targets: { containers: { name: string; digest: string; managed: boolean }[]; drift: { kind: string; container?: string }[] }[] }[])[0]!.targets[0]!;
      assert.deepEqual(target.drift.map((d) => [d.kind, d.container]), [['unmanaged', 'by-hand']]);
      assert.deepEqual(target.containers.find((c) => c.name === 'by-hand'), { ...target.containers.find((c) => c.name === 'by-hand'), digest: rel.releases.v1!.digest, managed: false });
      await h.mustDocker(['rm', '-f', 'by-hand']);
    });
  } finally {
    await daemons?.teardown();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
