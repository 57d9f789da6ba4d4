// Cross-repository mounts with the real docker under token auth: pushing a second repository that shares
// every layer with a first one mounts them (POST …?mount=…&from=… answered 201) and uploads none of them
// (no PATCH or monolithic PUT of a layer into the second repository), read from the server's request log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needTool } from '../support/tools.js';
import { run } from '../support/command.js';
import { buildTestApp, removeImages } from '../support/images.js';
import { startWharf, withLogsOnFailure } from '../support/server.js';

interface Logged {
  method: string;
  url: string;
  status: number;
}

/** The requests of the server's access log, in order. */
function requests(logs: string): Logged[] {
  const out: Logged[] = [];
  for (const line of logs.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const r = JSON.parse(line) as { req?: { method: string; path: string; query?: string; status: number } };
      if (r.req) out.push({ method: r.req.method, url: r.req.query ? `${r.req.path}?${r.req.query}` : r.req.path, status: r.req.status });
    } catch {
      // not a log line
    }
  }
  return out;
}

test('docker pushing a second repository with the same layers mounts them under token auth', { timeout: 300_000 }, async (t) => {
  if (!(await needTool(t, 'docker', 'busybox'))) return;
  const server = await startWharf({ args: ['--log-level', 'debug'] });
  const config = await mkdtemp(join(tmpdir(), 'wharf-test-mount-docker-'));
  const docker = (args: string[], input?: string) => run('docker', args, { env: { DOCKER_CONFIG: config }, input, timeoutMs: 180_000 });
  const one = `${server.host}/mount/one:1`;
  const two = `${server.host}/mount/two:1`;
  try {
    await withLogsOnFailure(server, async () => {
      await buildTestApp(one);
      assert.equal((await docker(['tag', one, two])).code, 0);
      const login = await docker(['login', '-u', server.admin.username, '--password-stdin', server.host], server.admin.password);
      assert.equal(login.code, 0, login.stderr);
      const first = await docker(['push', one]);
      assert.equal(first.code, 0, first.stderr);
      const before = requests(server.logs()).length;
      const second = await docker(['push', two]);
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stdout, /Mounted from mount\/one/, second.stdout);

      const manifest = await fetch(`${server.url}/v2/mount/one/manifests/1`, { headers: { authorization: server.authorization, accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' } });
      assert.equal(manifest.status, 200);
      const layers = ((await manifest.json()) as { layers: { digest: string }[] }).layers.map((l) => l.digest);
      assert.equal(layers.length, 4, 'the base layer and the three of the app');

      const pushTwo = requests(server.logs()).slice(before).filter((r) => r.url.startsWith('/v2/mount/two/'));
      const digestIn = (url: string, key: string) => new URL(url, 'http://x').searchParams.get(key);
      for (const layer of layers) {
        const mounted = pushTwo.filter((r) => r.method === 'POST' && digestIn(r.url, 'mount') === layer);
        assert.ok(
          mounted.some((r) => r.status === 201 && digestIn(r.url, 'from') === 'mount/one'),
          `layer ${layer} is mounted from mount/one: ${JSON.stringify(pushTwo)}`,
        );
      }
      // Docker uploads the small config blob afresh (it never mounts configs); no layer is uploaded.
      const uploaded = pushTwo.filter((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/')).map((r) => digestIn(r.url, 'digest'));
      assert.deepEqual(uploaded.filter((d) => layers.includes(d!)), [], 'no layer was uploaded into the second repository');
      assert.ok(pushTwo.filter((r) => r.method === 'PATCH').length <= 1, `at most the config blob is sent: ${JSON.stringify(pushTwo)}`);
    });
  } finally {
    await removeImages('docker', [one, two]);
    await server.stop();
    await rm(config, { recursive: true, force: true });
  }
});
