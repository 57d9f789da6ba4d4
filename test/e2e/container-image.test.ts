// Wharf's own container image (the root Dockerfile), built on a Node base made on this machine and run as the
// README says — `docker run -d -p 5000:5000 -v wharf-data:/data IMAGE` with only the port changed (published on
// loopback, from a network of its own since this engine has no default bridge): docker login, push and pull
// through it, its HEALTHCHECK turns healthy, it runs as its own non-root user with the data in the volume, and a new
// container on the same volume still has the image and the admin password.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { mustRun, run } from '../support/command.js';
import { buildTestApp, removeImages } from '../support/images.js';
import { fetchWhenUp, freePort } from '../support/net.js';
import { ensureNodeBase, nodeBaseUnavailable } from '../support/node-base.js';
import { REPO_ROOT } from '../support/server.js';
import { startPrebuiltMirror } from '../support/prebuilt-mirror.js';
import { missingReason, runsElsewhere } from '../support/tools.js';

/** The README's line, as it must stay (the test runs it with the port and the names changed). */
const README_RUN = 'docker run -d --name wharf -p 5000:5000 -v wharf-data:/data wharf';

test('the Dockerfile builds an image that runs the hub: push, pull, health, non-root, data kept in the volume', { timeout: 1_500_000 }, async (t) => {
  if (runsElsewhere(t, 'container-image')) return;
  const why = (await missingReason('docker')) ?? (await missingReason('busybox')) ?? (await nodeBaseUnavailable());
  if (why !== undefined) {
    if (process.env.CI === 'true') throw new Error(`CI=true and the image test cannot run: ${why}`);
    return t.skip(why);
  }
  assert.ok((await readFile(join(REPO_ROOT, 'README.md'), 'utf8')).includes(README_RUN), `README shows: ${README_RUN}`);
  const id = randomBytes(4).toString('hex');
  const image = `wharf-test/wharf:${id}`;
  const network = `wharf-image-${id}`;
  const volume = `wharf-image-data-${id}`;
  const containers: string[] = [];
  const port = await freePort();
  const registry = `127.0.0.1:${port}`;
  const app = `${registry}/hello:1.0.0`;
  const timings: string[] = [];
  const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const began = Date.now();
    const r = await fn();
    timings.push(`${what} ${((Date.now() - began) / 1000).toFixed(1)} s`);
    return r;
  };
  const start = async () => {
    const name = `wharf-image-${id}-${containers.length}`;
    containers.push(name);
    // The README's `docker run`, published on loopback only (-p 127.0.0.1:PORT:5000).
    await mustRun('docker', ['run', '-d', '--name', name, '--network', network, '-p', `${registry}:5000`, '-v', `${volume}:/data`, image]);
    await fetchWhenUp(`http://${registry}/healthz`, 60_000);
    return name;
  };
  try {
    const base = await timed('base image', () => ensureNodeBase());
    if (base.made) timings[timings.length - 1] += ' (made now)';
    // better-sqlite3 prebuilt from a mirror on loopback, as it comes from GitHub on a machine online (the base runs
    // this Node, so this checkout's build fits it): compiling it in the image took most of the build's minutes.
    const mirror = await startPrebuiltMirror();
    t.after(() => mirror.close());
    await timed('docker build', () =>
      mustRun(
        'docker',
        ['build', '--network', 'host', '--build-arg', `BASE=${base.tag}`, '--build-arg', `npm_config_better_sqlite3_binary_host=${mirror.url}`, '-t', image, '.'],
        { cwd: REPO_ROOT, timeoutMs: 1_200_000 },
      ),
    );
    assert.ok(mirror.requests.some((r) => r.served), `the build fetched better-sqlite3 from the mirror: ${JSON.stringify(mirror.requests)}`);
    const config = JSON.parse((await mustRun('docker', ['image', 'inspect', '-f', '{{json .Config}}', image])).stdout) as {
      User: string;
      Volumes: Record<string, unknown>;
      ExposedPorts: Record<string, unknown>;
      Env: string[];
      Healthcheck?: { Test: string[] };
    };
    assert.equal(config.User, 'wharf');
    assert.deepEqual(Object.keys(config.Volumes), ['/data']);
    assert.deepEqual(Object.keys(config.ExposedPorts), ['5000/tcp']);
    assert.ok(config.Env.includes('WHARF_LISTEN=0.0.0.0:5000') && config.Env.includes('WHARF_DATA=/data'), config.Env.join(' '));
    assert.ok(config.Healthcheck?.Test.length, 'the image has a HEALTHCHECK');

    await mustRun('docker', ['network', 'create', network]);
    const first = await timed('first start', start);
    assert.equal((await mustRun('docker', ['exec', first, 'id', '-u'])).stdout.trim(), '10001', 'runs as its own user');
    assert.equal((await mustRun('docker', ['exec', first, 'stat', '-c', '%u', '/data/initial-admin-password'])).stdout.trim(), '10001');
    const password = (await mustRun('docker', ['exec', first, 'cat', '/data/initial-admin-password'])).stdout.trim();
    assert.ok(password.length >= 16);
    const logs = await mustRun('docker', ['logs', first]);
    assert.match(logs.stdout + logs.stderr, /0\.0\.0\.0:5000|127\.0\.0\.1:5000/, 'start-up says where it listens');
    await timed('healthy', () => waitHealthy(first));

    await mustRun('docker', ['login', registry, '-u', 'admin', '--password-stdin'], { input: password });
    await buildTestApp(app);
    const push = await mustRun('docker', ['push', app]);
    const digest = push.stdout.match(/digest: (sha256:[0-9a-f]{64})/)?.[1];
    assert.ok(digest, push.stdout);
    await removeImages('docker', [app]);
    assert.match((await mustRun('docker', ['pull', app])).stdout, new RegExp(`Digest: ${digest}`));

    // A new container on the same volume: the image and the password are still there.
    await mustRun('docker', ['rm', '-f', first]);
    const second = await timed('second start', start);
    assert.equal((await mustRun('docker', ['exec', second, 'cat', '/data/initial-admin-password'])).stdout.trim(), password);
    await removeImages('docker', [app]);
    assert.match((await mustRun('docker', ['pull', app])).stdout, new RegExp(`Digest: ${digest}`));
    const manifest = await fetch(`http://${registry}/v2/hello/manifests/1.0.0`, {
      method: 'HEAD',
      headers: { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`, accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    assert.equal(manifest.headers.get('docker-content-digest'), digest);
    t.diagnostic(timings.join(', '));
  } finally {
    await run('docker', ['logout', registry]);
    if (containers.length > 0) await run('docker', ['rm', '-f', ...containers]);
    await run('docker', ['volume', 'rm', volume]);
    await run('docker', ['network', 'rm', network]);
    await removeImages('docker', [app]);
    // --no-prune keeps the layers under the tag: they are the build cache of the next run.
    await run('docker', ['rmi', '--no-prune', image]);
  }
});

/** The image's own HEALTHCHECK says healthy (its first probe runs one interval after the start). */
async function waitHealthy(container: string): Promise<void> {
  const deadline = Date.now() + 90_000;
  let state = '';
  while (Date.now() < deadline) {
    state = (await mustRun('docker', ['inspect', '-f', '{{.State.Health.Status}}', container])).stdout.trim();
    if (state === 'healthy') return;
    await sleep(500);
  }
  throw new Error(`${container} is ${state}, not healthy, after 90 s`);
}
