// Zero-downtime deploys on one Docker host behind nginx (issue 20 item 8), through the wharf CLI on a real dockerd:
// a client polling the proxy every 10 ms through a deploy of a new release and through a rollback sees no failed
// request; a release whose health check fails leaves the proxy on the old containers; an app file cannot have a
// proxy on a target whose registration allows none, nor a public port outside the admin's range.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestDaemon } from '../support/dockerd.js';
import { withDeployHub } from '../support/deploy-hub.js';
import { freePort } from '../support/net.js';
import { importNginxImage, removeNginxTarball } from '../support/nginx-image.js';

const NGINX_IMAGE = 'wharf-test/nginx:1';
const POLL_EVERY_MS = 10;

interface PollCount {
  ok: number;
  failed: number;
  /** the first few failures, for the assertion message */
  errors: string[];
  /** versions served, in the order first seen */
  versions: string[];
}

/** GET /version through the proxy every 10 ms until stopped, counting answers and failures. */
function poll(url: string): { stop: () => Promise<PollCount> } {
  const count: PollCount = { ok: 0, failed: 0, errors: [], versions: [] };
  let running = true;
  const loop = (async () => {
    while (running) {
      const began = Date.now();
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
        const body = (await res.text()).trim();
        if (res.status === 200) {
          count.ok++;
          const version = body.split('-')[0]!;
          if (count.versions.at(-1) !== version) count.versions.push(version);
        } else {
          count.failed++;
          if (count.errors.length < 5) count.errors.push(`HTTP ${res.status}`);
        }
      } catch (e) {
        count.failed++;
        if (count.errors.length < 5) count.errors.push(String((e as { cause?: Error }).cause ?? e));
      }
      await sleep(Math.max(0, POLL_EVERY_MS - (Date.now() - began)));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return count;
    },
  };
}

test('a deploy and a rollback behind nginx drop no request; a failing release leaves the proxy on the old one', { timeout: 300_000 }, async (t) => {
  t.after(removeNginxTarball);
  await withDeployHub(t, { name: 'proxy', hosts: 1, app: 'proxied', versions: ['v1', 'v2', 'bad'] }, async ({ hosts, dir, ok, wharf }) => {
    const began = Date.now();
    const h1 = hosts[0] as TestDaemon;
    const [publicPort, appPort] = [await freePort(), await freePort()];
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

    // A new release, while a client polls every 10 ms.
    let poller = poll(url);
    await sleep(200);
    assert.match(await ok('release', 'proxied', 'v2', '--env', 'production'), /succeeded/);
    await sleep(200);
    const deploy = await poller.stop();
    assert.equal(deploy.failed, 0, `deploy: ${deploy.failed} of ${deploy.ok + deploy.failed} requests failed: ${deploy.errors.join('; ')}`);
    assert.deepEqual(deploy.versions, ['v1', 'v2'], 'served v1, then v2 only');

    // Only the new replicas run; the proxy container is the same one (reloaded, not restarted).
    const running = async () => (await h1.mustDocker(['ps', '--filter', 'label=wharf.app=proxied', '--format', '{{.Label "wharf.port"}}'])).stdout.split('\n').filter(Boolean).sort();
    assert.deepEqual(await running(), [String(appPort + 2), String(appPort + 3)], 'v2 on the second set of ports');
    assert.deepEqual((await h1.mustDocker(['ps', '-q', '--filter', 'label=wharf.proxy.app=proxied'])).stdout.split('\n').filter(Boolean), proxies);

    // A rollback to v1, while the client polls.
    poller = poll(url);
    await sleep(200);
    assert.match(await ok('rollback', 'proxied', '--env', 'production', '--deploy'), /succeeded/);
    await sleep(200);
    const rollback = await poller.stop();
    assert.equal(rollback.failed, 0, `rollback: ${rollback.failed} of ${rollback.ok + rollback.failed} requests failed: ${rollback.errors.join('; ')}`);
    assert.deepEqual(rollback.versions, ['v2', 'v1']);
    assert.deepEqual(await running(), [String(appPort), String(appPort + 1)], 'v1 back on the first set of ports');

    // A release whose new containers never get healthy: rolled back, and the proxy never left v1.
    poller = poll(url);
    const bad = await wharf('release', 'proxied', 'bad', '--env', 'production');
    const failed = await poller.stop();
    assert.equal(bad.code, 1, bad.stdout + bad.stderr);
    assert.match(bad.stdout + bad.stderr, /health check failed .*HTTP 404/);
    assert.equal(failed.failed, 0, `failed release: ${failed.errors.join('; ')}`);
    assert.deepEqual(failed.versions, ['v1'], 'the proxy stayed on v1');
    assert.deepEqual(await running(), [String(appPort), String(appPort + 1)]);

    t.diagnostic(
      `through the proxy, polled every ${POLL_EVERY_MS} ms: deploy ${deploy.ok} ok / ${deploy.failed} failed; rollback ${rollback.ok} ok / ${rollback.failed} failed; ` +
        `failed release ${failed.ok} ok / ${failed.failed} failed; test body ${((Date.now() - began) / 1000).toFixed(1)} s`,
    );
  });
});
