// Zero-downtime deploys on one Docker host behind nginx (issue 20 item 8), through the wharf CLI on a real dockerd:
// a client polling the proxy every 10 ms through a deploy of a new release and through a rollback sees no failed
// request; a release whose health check fails leaves the proxy on the old containers; an app file cannot have a
// proxy on a target whose registration allows none, nor a public port outside the admin's range; a proxy removed by
// hand is drift, and the next deploy starts it again.
// scripts/test.js: alone (no request may be dropped while replicas are swapped)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestDaemon } from '../support/dockerd.js';
import { withDeployHub } from '../support/deploy-hub.js';
import { freePorts } from '../support/net.js';
import { importNginxImage, removeNginxTarball } from '../support/nginx-image.js';

const NGINX_IMAGE = 'wharf-test/nginx:1';
const POLL_EVERY_MS = 10;
/** what /version holds: the release's name and a random suffix */
const VERSION = /^[a-z0-9]+-[0-9a-f]{12}\n?$/;

interface PollCount {
  ok: number;
  failed: number;
  /** keep-alive client: requests sent again after the proxy closed the idle connection they went out on */
  retried: number;
  /** the first few failures, for the assertion message */
  errors: string[];
  /** versions served, in the order first seen */
  versions: string[];
}

/** Pollers not stopped yet: a failed assertion must not leave one running. */
const pollers = new Set<() => Promise<PollCount>>();

/** One GET on a connection of its own (as `curl` in a loop): the status and body. */
function getOnce(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

/**
 * GET /version through the proxy every 10 ms until stopped, counting answers and failures. `fresh`: a new
 * connection per request. `keep-alive`: one reused connection (fetch), and a request that went out on an idle
 * connection the proxy was closing is sent again once — what browsers and RFC 9112 §9.3.1 do for a GET.
 */
function poll(url: string, client: 'fresh' | 'keep-alive'): { stop: () => Promise<PollCount> } {
  const count: PollCount = { ok: 0, failed: 0, retried: 0, errors: [], versions: [] };
  const keepAlive = async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
        return { status: res.status, body: await res.text() };
      } catch (e) {
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        const closed = cause?.code === 'UND_ERR_SOCKET' || cause?.code === 'ECONNRESET';
        if (!closed || attempt > 0) throw e;
        count.retried++;
      }
    }
  };
  let running = true;
  const loop = (async () => {
    while (running) {
      const began = Date.now();
      try {
        const { status, body } = client === 'fresh' ? await getOnce(url) : await keepAlive();
        if (status === 200 && VERSION.test(body)) {
          count.ok++;
          const version = body.trim().split('-')[0]!;
          if (count.versions.at(-1) !== version) count.versions.push(version);
        } else {
          count.failed++;
          if (count.errors.length < 5) count.errors.push(`HTTP ${status} ${JSON.stringify(body.slice(0, 40))}`);
        }
      } catch (e) {
        count.failed++;
        if (count.errors.length < 5) count.errors.push(String((e as { cause?: Error }).cause ?? e));
      }
      await sleep(Math.max(0, POLL_EVERY_MS - (Date.now() - began)));
    }
  })();
  const stop = async () => {
    running = false;
    pollers.delete(stop);
    await loop;
    return count;
  };
  pollers.add(stop);
  return { stop };
}

/**
 * A GET of /cgi-bin/slow (a second in flight) on a new connection every 100 ms until stopped: those in flight when
 * the proxy switches are answered only if the old containers are kept until nginx's old workers have finished.
 */
function slowRequests(url: string): { stop: () => Promise<PollCount> } {
  const count: PollCount = { ok: 0, failed: 0, retried: 0, errors: [], versions: [] };
  const inFlight: Promise<void>[] = [];
  const send = () =>
    inFlight.push(
      getOnce(url).then(
        ({ status, body }) => {
          // a reply cut short (the container stopped under it) is a failure too
          if (status !== 200 || !VERSION.test(body)) throw new Error(`HTTP ${status} ${JSON.stringify(body.slice(0, 40))}`);
          count.ok++;
          const version = body.trim().split('-')[0]!;
          if (!count.versions.includes(version)) count.versions.push(version);
        },
        (e: unknown) => {
          count.failed++;
          if (count.errors.length < 5) count.errors.push(String(e));
        },
      ).catch((e: unknown) => {
        count.failed++;
        if (count.errors.length < 5) count.errors.push(String(e));
      }),
    );
  const timer = setInterval(send, 100);
  const stop = async () => {
    clearInterval(timer);
    pollers.delete(stop);
    await Promise.all(inFlight);
    return count;
  };
  pollers.add(stop);
  return { stop };
}

/** Both clients at once, through `during`; asserts that neither saw a failed request or a version out of order. */
async function polled(url: string, what: string, versions: string[], during: () => Promise<void>): Promise<string> {
  const fresh = poll(url, 'fresh');
  const reused = poll(url, 'keep-alive');
  const slow = slowRequests(url.replace(/\/version$/, '/cgi-bin/slow'));
  await sleep(200);
  await during();
  await sleep(200);
  const [f, k, w] = [await fresh.stop(), await reused.stop(), await slow.stop()];
  assert.equal(w.failed, 0, `${what}, requests in flight for a second: ${w.failed} of ${w.ok + w.failed} failed: ${w.errors.join('; ')}`);
  assert.deepEqual([...w.versions].sort(), [...versions].sort(), `${what}: slow requests answered by ${w.versions.join(', ')}`);
  for (const [name, c] of [['new connection per request', f], ['keep-alive', k]] as const) {
    assert.equal(c.failed, 0, `${what}, ${name}: ${c.failed} of ${c.ok + c.failed} requests failed: ${c.errors.join('; ')}`);
    // While nginx's old workers finish, both may answer for a moment; it starts on the one and ends on the other.
    assert.deepEqual([c.versions[0], c.versions.at(-1)], [versions[0], versions.at(-1)], `${what}, ${name}: served ${c.versions.join(', ')}`);
    assert.ok(c.versions.every((v) => versions.includes(v)), `${what}, ${name}: served ${c.versions.join(', ')}`);
  }
  return `${what}: ${f.ok} ok / ${f.failed} failed (new connections), ${k.ok} ok / ${k.failed} failed / ${k.retried} sent again on a closed idle connection (keep-alive), ${w.ok} ok / ${w.failed} failed (1 s in flight)`;
}

test('a deploy and a rollback behind nginx drop no request; a failing release leaves the proxy on the old one', { timeout: 300_000 }, async (t) => {
  t.after(async () => {
    await Promise.all([...pollers].map((stop) => stop()));
    await removeNginxTarball();
  });
  await withDeployHub(t, { name: 'proxy', hosts: 1, app: 'proxied', versions: ['v1', 'v2', 'bad'] }, async ({ hosts, dir, ok, wharf }) => {
    const began = Date.now();
    const h1 = hosts[0] as TestDaemon;
    // The public port, then the app's two sets of two ports: five in a row, free.
    const publicPort = await freePorts(5);
    const appPort = publicPort + 1;
    await importNginxImage(['-H', h1.endpoint], NGINX_IMAGE);
    const file = join(dir, 'wharf.yaml');
    await writeFile(
      file,
      `app: proxied
container: { network: host, port: ${appPort}, stopTimeout: 2s }
proxy: { port: ${publicPort}, healthPath: /health, drain: 2s }
rollout: { monitor: 300ms, healthTimeout: 20s }
environments:
  production: { autoDeploy: true, targets: [host-1], replicas: 2 }
`,
    );

    // Denied: the target's registration allows no proxy, then not this public port.
    await ok('target', 'add', 'host-1', h1.endpoint, '--apps', 'proxied', '--allow', 'network-host');
    let refused = await wharf('apply', '-f', file);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /environments\.production\.proxy\.port: target 'host-1' has no proxy/);
    await ok('target', 'add', 'host-1', h1.endpoint, '--apps', 'proxied', '--allow', 'network-host', '--proxy-image', NGINX_IMAGE, '--proxy-address', '127.0.0.1', '--proxy-ports', `${publicPort + 1}-${publicPort + 1}`);
    refused = await wharf('apply', '-f', file);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(`port ${publicPort} is not among the public ports target 'host-1' allows`));
    await ok('target', 'add', 'host-1', h1.endpoint, '--apps', 'proxied', '--allow', 'network-host', '--proxy-image', NGINX_IMAGE, '--proxy-address', '127.0.0.1', '--proxy-ports', `${publicPort}-${publicPort}`);
    await ok('apply', '-f', file);

    const url = `http://127.0.0.1:${publicPort}/version`;
    assert.match(await ok('release', 'proxied', 'v1', '--env', 'production'), /succeeded/);
    assert.match(await (await fetch(url)).text(), /^v1-/);
    const proxies = (await h1.mustDocker(['ps', '-q', '--filter', 'label=wharf.proxy.app=proxied'])).stdout.split('\n').filter(Boolean);
    assert.equal(proxies.length, 1, 'one proxy container');

    // A new release, while the clients poll every 10 ms.
    const counts: string[] = [];
    counts.push(await polled(url, 'deploy', ['v1', 'v2'], async () => void assert.match(await ok('release', 'proxied', 'v2', '--env', 'production'), /succeeded/)));

    // Only the new replicas run; the proxy container is the same one (reloaded, not restarted).
    const running = async () => (await h1.mustDocker(['ps', '--filter', 'label=wharf.app=proxied', '--format', '{{.Label "wharf.port"}}'])).stdout.split('\n').filter(Boolean).sort();
    assert.deepEqual(await running(), [String(appPort + 2), String(appPort + 3)], 'v2 on the second set of ports');
    assert.deepEqual((await h1.mustDocker(['ps', '-q', '--filter', 'label=wharf.proxy.app=proxied'])).stdout.split('\n').filter(Boolean), proxies);

    // A rollback to v1, while the clients poll.
    counts.push(await polled(url, 'rollback', ['v2', 'v1'], async () => void assert.match(await ok('rollback', 'proxied', '--env', 'production', '--deploy'), /succeeded/)));
    assert.deepEqual(await running(), [String(appPort), String(appPort + 1)], 'v1 back on the first set of ports');

    // A release whose new containers never get healthy: rolled back, and the proxy never left v1.
    counts.push(
      await polled(url, 'failed release', ['v1'], async () => {
        const bad = await wharf('release', 'proxied', 'bad', '--env', 'production');
        assert.equal(bad.code, 1, bad.stdout + bad.stderr);
        assert.match(bad.stdout + bad.stderr, /health check failed .*HTTP 404/);
      }),
    );
    assert.deepEqual(await running(), [String(appPort), String(appPort + 1)]);

    // The proxy removed by hand: status says so, and a deploy (not a no-op) starts it again.
    await h1.mustDocker(['rm', '-f', ...proxies]);
    const status = await wharf('status', 'proxied', '--env', 'production');
    assert.notEqual(status.code, 0);
    assert.match(status.stdout, new RegExp(`the proxy is not running: nothing serves port ${publicPort}`));
    assert.match(await ok('deploy', 'proxied', '--env', 'production'), /: succeeded/);
    assert.match(await (await fetch(url)).text(), /^v1-/);

    t.diagnostic(`through the proxy, polled every ${POLL_EVERY_MS} ms — ${counts.join('; ')}; test body ${((Date.now() - began) / 1000).toFixed(1)} s`);
  });
});
