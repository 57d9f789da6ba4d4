// Three Wharf instances over one PostgreSQL database and one shared data directory, behind nginx as a round-robin
// load balancer (the configuration docs/configuration.md shows): docker push/pull and skopeo through nginx, a chunked
// upload spread over the instances, a tag moved on one seen by another, racing releases and promotions, GC on one
// instance while pushes go through the others, and kill -9 of one instance in the middle of concurrent pushes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { missingReason } from '../support/tools.js';
import { mustRun, run } from '../support/command.js';
import { buildTestApp, removeImages } from '../support/images.js';
import { startWharf, type WharfServer } from '../support/server.js';
import { createTestDatabase, dropTestDatabase, postgresMissing } from '../support/database.js';
import { openPostgres } from '../../src/metadata/postgres.js';
import { getManifest, hashBlob, pushBlob, pushImage, rememberCredentials, sha256, verifyManifest } from '../support/registry-client.js';
import { freePort } from '../support/net.js';
import { addImage, addIndex, initLayout, makeLayer, tagInLayout } from '../support/oci-layout.js';

/** metadata/postgres-changes.ts: a commit on one instance is served by every other within this (docs/configuration.md). */
const STALENESS_BOUND_MS = 2_000;

/** The upstream and server blocks of docs/configuration.md's three-node example, with the test's ports. */
function nginxSite(listen: number, instances: number[]): string {
  return `upstream wharf {
${instances.map((p) => `  server 127.0.0.1:${p} max_fails=1 fail_timeout=10s;`).join('\n')}
  keepalive 32;
}
server {
  listen 127.0.0.1:${listen};
  client_max_body_size 0;
  proxy_request_buffering off;
  proxy_buffering off;
  proxy_buffer_size 256k;
  proxy_buffers 4 256k;
  proxy_http_version 1.1;
  proxy_read_timeout 900s;
  proxy_send_timeout 900s;
  proxy_next_upstream error timeout http_502 http_503;
  proxy_set_header Connection "";
  proxy_set_header Host $http_host;
  proxy_set_header X-Forwarded-For $remote_addr;
  proxy_set_header X-Forwarded-Proto $scheme;
  location / {
    proxy_pass http://wharf;
  }
}
`;
}

const skip = (await missingReason('nginx')) ?? postgresMissing() ?? (await missingReason('docker')) ?? (await missingReason('skopeo')) ?? (await missingReason('busybox'));
if (skip && process.env.CI === 'true') throw new Error(`CI=true but the cluster test cannot run: ${skip}`);

let work: string;
let dbUrl: string;
let nodes: WharfServer[] = [];
let nginx: ChildProcess | undefined;
let lb: string;
let lbHost: string;
let authorization: string;
let data: string;

async function startNode(dataDir: string, env: Record<string, string>): Promise<WharfServer> {
  return startWharf({ dataDir, env, args: ['--external-url', lb, '--trusted-proxies', '127.0.0.1'] });
}

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'wharf-test-cluster-'));
  dbUrl = await createTestDatabase();
  // As an operator would: `wharf migrate` once, then the instances start without --migrate.
  await (await openPostgres(dbUrl, { poolSize: 1, migrate: true })).close();
  data = join(work, 'data');
  await mkdir(data, { mode: 0o700 });
  const port = await freePort();
  lb = `http://127.0.0.1:${port}`;
  lbHost = `127.0.0.1:${port}`;
  // All three at once: the first start over a fresh directory and database (admin, signing key, secret key) races.
  const env = { WHARF_DB: dbUrl, WHARF_LOG_LEVEL: 'info' };
  nodes = await Promise.all([startNode(data, env), startNode(data, env), startNode(data, env)]);
  authorization = nodes[0]!.authorization;
  rememberCredentials(lb, authorization);

  const prefix = join(work, 'nginx');
  await mkdir(join(prefix, 'logs'), { recursive: true });
  const conf = join(prefix, 'nginx.conf');
  await writeFile(
    conf,
    `daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log ${prefix}/logs/access.log;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
${nginxSite(port, nodes.map((n) => Number(new URL(n.url).port)))}}
`,
  );
  nginx = spawn('nginx', ['-p', prefix, '-e', join(prefix, 'logs', 'error.log'), '-c', conf], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const up = await fetch(`${lb}/healthz`).then((r) => r.ok, () => false);
    if (up) break;
    if (i > 100 || nginx.exitCode !== null) throw new Error(`nginx did not start: ${await readFile(join(prefix, 'logs', 'error.log'), 'utf8').catch(() => '')}`);
    await sleep(100);
  }
});

after(async () => {
  if (nginx && nginx.exitCode === null) {
    const exited = new Promise((r) => nginx!.once('exit', r));
    process.kill(nginx.pid!, 'SIGQUIT');
    await exited;
  }
  for (const n of nodes) await n.stop().catch(() => undefined);
  if (dbUrl) await dropTestDatabase(dbUrl);
  if (work) await rm(work, { recursive: true, force: true });
});

function headers(extra: Record<string, string> = {}): Record<string, string> {
  return { authorization, ...extra };
}

test('docker push and pull through nginx', { skip, timeout: 300_000 }, async () => {
  const image = `${lbHost}/cluster/app:1.0.0`;
  try {
    await mustRun('docker', ['login', '-u', 'admin', '--password-stdin', lbHost], { input: nodes[0]!.admin.password });
    await buildTestApp(image);
    const push = await mustRun('docker', ['push', image], { timeoutMs: 180_000 });
    const pushed = push.stdout.match(/digest: (sha256:[0-9a-f]{64})/)?.[1];
    assert.ok(pushed, push.stdout);
    // Every instance serves it, each blob re-hashed.
    for (const n of nodes) {
      const stored = await verifyManifest(n.url, 'cluster/app', '1.0.0');
      assert.deepEqual(stored.problems, []);
      assert.equal(stored.digest, pushed);
    }
    await mustRun('docker', ['rmi', image]);
    const pull = await mustRun('docker', ['pull', image], { timeoutMs: 180_000 });
    assert.match(pull.stdout, new RegExp(`Digest: ${pushed}`));
    assert.match(pull.stdout, /Pull complete/);
  } finally {
    await removeImages('docker', [image]);
    await run('docker', ['logout', lbHost]);
  }
});

test('skopeo copy --all of a two-platform index through nginx', { skip, timeout: 180_000 }, async () => {
  const layout = join(work, 'layout');
  await initLayout(layout);
  const images = [];
  for (const architecture of ['amd64', 'arm64']) {
    const layer = makeLayer([{ name: 'arch.txt', content: Buffer.from(`${architecture} ${randomBytes(8).toString('hex')}\n`) }]);
    images.push(await addImage(layout, [layer], { architecture, os: 'linux' }));
  }
  const index = await addIndex(layout, images);
  await tagInLayout(layout, 'multi', index);
  const creds = `admin:${nodes[0]!.admin.password}`;
  await mustRun('skopeo', ['copy', '--all', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${layout}:multi`, `docker://${lbHost}/cluster/multi:1`], { timeoutMs: 120_000 });
  for (const n of nodes) {
    const got = await getManifest(n.url, 'cluster/multi', '1');
    assert.equal(got.status, 200);
    assert.equal(got.digest, index.digest, `${n.url} serves the index skopeo pushed`);
    for (const image of images) assert.deepEqual((await verifyManifest(n.url, 'cluster/multi', image.digest)).problems, []);
  }
  const back = join(work, 'back');
  await mustRun('skopeo', ['copy', '--all', '--src-tls-verify=false', '--src-creds', creds, `docker://${lbHost}/cluster/multi:1`, `oci:${back}:multi`], { timeoutMs: 120_000 });
  const backIndex = JSON.parse(await readFile(join(back, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  assert.equal(backIndex.manifests[0]!.digest, index.digest);
});

test('a chunked upload whose PATCHes land on different instances', { skip, timeout: 60_000 }, async () => {
  const [a, b, c] = nodes as [WharfServer, WharfServer, WharfServer];
  const chunks = [randomBytes(300_000), randomBytes(200_000), randomBytes(250_000), randomBytes(100_000)];
  const whole = Buffer.concat(chunks);
  const start = await fetch(`${a.url}/v2/cluster/chunked/blobs/uploads/`, { method: 'POST', headers: headers() });
  assert.equal(start.status, 202);
  let location = start.headers.get('location')!;
  // A writes first and last: its cached view of the session must follow what B and C appended meanwhile.
  const order = [a, b, a, c];
  let offset = 0;
  for (const [i, chunk] of chunks.entries()) {
    const node = order[i]!;
    const res = await fetch(new URL(location, node.url), {
      method: 'PATCH',
      headers: headers({ 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}` }),
      body: new Uint8Array(chunk),
    });
    assert.equal(res.status, 202, `PATCH ${i} on ${node.url}: ${await res.text()}`);
    offset += chunk.length;
    assert.equal(res.headers.get('range'), `0-${offset - 1}`, `PATCH ${i} on ${node.url}`);
    location = res.headers.get('location')!;
  }
  // A asked for the status: the size every instance has written.
  const status = await fetch(new URL(location, a.url), { headers: headers() });
  assert.equal(status.status, 204);
  assert.equal(status.headers.get('range'), `0-${whole.length - 1}`);
  const url = new URL(location, a.url);
  url.searchParams.set('digest', sha256(whole));
  const put = await fetch(url, { method: 'PUT', headers: headers() });
  assert.equal(put.status, 201, await put.text());
  for (const n of nodes) assert.deepEqual(await hashBlob(n.url, 'cluster/chunked', sha256(whole)), { status: 200, digest: sha256(whole), size: whole.length });
  // The session is gone everywhere, also where it was cached.
  for (const n of [b, c]) assert.equal((await fetch(new URL(location, n.url), { headers: headers() })).status, 404);
});

test('a tag moved through A is served by B within the documented bound', { skip, timeout: 60_000 }, async () => {
  const [a, b] = nodes as [WharfServer, WharfServer];
  let previous = await pushImage(a.url, 'cluster/moving', 'live', randomBytes(1000));
  for (let round = 0; round < 5; round++) {
    // B has served (and cached) the current digest.
    assert.equal((await getManifest(b.url, 'cluster/moving', 'live')).digest, previous);
    const next = await pushImage(a.url, 'cluster/moving', 'live', randomBytes(1000));
    const moved = Date.now();
    let served: string | null = previous;
    while (served !== next) {
      served = (await getManifest(b.url, 'cluster/moving', 'live')).digest;
      assert.ok(served === next || served === previous, `B serves ${served}: neither the old nor the new digest`);
      assert.ok(Date.now() - moved <= STALENESS_BOUND_MS, `B still served the old digest ${Date.now() - moved} ms after A's push`);
      if (served !== next) await sleep(20);
    }
    // Never older again once B has served the new one.
    for (let i = 0; i < 5; i++) assert.equal((await getManifest(b.url, 'cluster/moving', 'live')).digest, next);
    previous = next;
  }
});

async function api(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

test('releases and promotions racing on two instances: one wins, the other gets 409', { skip, timeout: 120_000 }, async () => {
  const [a, b] = nodes as [WharfServer, WharfServer];
  const app = 'cluster/race';
  const digests = [];
  for (let i = 0; i < 6; i++) digests.push(await pushImage(a.url, app, `v${i}`, randomBytes(500)));
  assert.equal((await api(a.url, 'POST', `/apps/${app}/environments`, { name: 'staging' })).status, 201);
  assert.equal((await api(b.url, 'POST', `/apps/${app}/environments`, { name: 'production', requiresPromotionFrom: 'staging' })).status, 201);

  let conflicts = 0;
  for (let round = 0; round < 10; round++) {
    const [x, y] = await Promise.all([
      api(a.url, 'POST', `/apps/${app}/releases`, { environment: 'staging', ref: `v${round % 6}` }),
      api(b.url, 'POST', `/apps/${app}/releases`, { environment: 'staging', ref: `v${(round + 1) % 6}` }),
    ]);
    const statuses = [x.status, y.status].sort();
    assert.ok(
      (statuses[0] === 201 && statuses[1] === 201) || (statuses[0] === 201 && statuses[1] === 409),
      `statuses ${statuses}: ${JSON.stringify([x.json, y.json])}`,
    );
    if (statuses[1] === 409) conflicts++;
    const p = await Promise.all([
      api(a.url, 'POST', `/apps/${app}/promote`, { from: 'staging', to: 'production' }),
      api(b.url, 'POST', `/apps/${app}/promote`, { from: 'staging', to: 'production' }),
    ]);
    const ps = p.map((r) => r.status).sort();
    assert.ok((ps[0] === 201 && ps[1] === 201) || (ps[0] === 201 && ps[1] === 409), `promote statuses ${ps}: ${JSON.stringify(p.map((r) => r.json))}`);
    if (ps[1] === 409) conflicts++;
  }
  // Whoever won, each environment's history is one line: every release replaces the one before it, none is lost.
  for (const env of ['staging', 'production']) {
    const list = await api(a.url, 'GET', `/apps/${app}/releases?environment=${env}&limit=1000`);
    const releases = ((list.json.releases ?? list.json.items ?? list.json) as unknown as { id: number; replaces: number | null }[]).slice().sort((p, q) => p.id - q.id);
    assert.ok(releases.length >= 10, `${env}: ${releases.length} releases`);
    for (const [i, r] of releases.entries()) assert.equal(r.replaces, i === 0 ? null : releases[i - 1]!.id, `${env}: release ${r.id} replaces the one before it`);
  }
  assert.ok(conflicts > 0, 'the two instances raced at least once (else this test showed nothing)');
});

test('GC on a fourth instance while pushes go through nginx: the orphan goes, nothing acknowledged is lost', { skip, timeout: 180_000 }, async () => {
  // Its own grace (3 s) so that the orphan below is old enough; pushes take well under a second each.
  const collector = await startNode(data, { WHARF_DB: dbUrl, WHARF_GC_GRACE: '3s', WHARF_GC_INTERVAL: '0' });
  try {
    const orphan = randomBytes(4000);
    const orphanDigest = sha256(orphan);
    await pushBlob(nodes[0]!.url, 'cluster/gc', orphan);
    await sleep(3_500);
    const acknowledged: { repo: string; tag: string; digest: string }[] = [];
    let pushing = true;
    const clients = Array.from({ length: 4 }, async (_, id) => {
      for (let i = 0; i < 6; i++) {
        const repo = `cluster/gc${id}`;
        const tag = `t${i}`;
        acknowledged.push({ repo, tag, digest: await pushImage(lb, repo, tag, randomBytes(200_000)) });
      }
    });
    const all = Promise.all(clients).finally(() => (pushing = false));
    let runs = 0;
    while (pushing) {
      const res = await fetch(`${collector.url}/api/v1/gc`, { method: 'POST', headers: headers({ 'content-type': 'application/json' }), body: '{}' });
      assert.ok(res.status === 200 || res.status === 409, `gc answered ${res.status}: ${await res.text()}`);
      runs++;
    }
    await all;
    assert.ok(runs > 1, `GC ran ${runs} times during the pushes`);
    assert.equal(acknowledged.length, 24);
    for (const ack of acknowledged) {
      const v = await verifyManifest(nodes[1]!.url, ack.repo, ack.tag);
      assert.deepEqual(v.problems, [], `${ack.repo}:${ack.tag}`);
      assert.equal(v.digest, ack.digest);
    }
    const head = await fetch(`${nodes[1]!.url}/v2/cluster/gc/blobs/${orphanDigest}`, { method: 'HEAD', headers: headers() });
    assert.equal(head.status, 404, 'the orphan blob was collected');
  } finally {
    await collector.stop();
  }
});

test('kill -9 of one instance in the middle of 8 concurrent pushes through nginx', { skip, timeout: 240_000 }, async () => {
  const victim = nodes[2]!;
  const acknowledged: { repo: string; tag: string; digest: string; layer: string }[] = [];
  let killed = false;
  let ackedAtKill = 0;
  let failures = 0;
  const client = async (id: number) => {
    for (let i = 0; i < 4; i++) {
      const repo = `cluster/crash${id}`;
      const tag = `t${i}`;
      const layer = randomBytes(1_500_000);
      for (let attempt = 0; ; attempt++) {
        try {
          const digest = await pushImage(lb, repo, tag, layer);
          acknowledged.push({ repo, tag, digest, layer: sha256(layer) });
          break;
        } catch (e) {
          failures++;
          if (attempt >= 5) throw e;
          await sleep(200);
        }
      }
    }
  };
  const killer = (async () => {
    while (acknowledged.length < 6) await sleep(10);
    ackedAtKill = acknowledged.length;
    await victim.kill('SIGKILL');
    killed = true;
  })();
  await Promise.all([...Array.from({ length: 8 }, (_, i) => client(i)), killer]);
  assert.ok(killed && ackedAtKill < 32, `the kill came in the middle of the pushes (${ackedAtKill} of 32 acknowledged before it)`);
  assert.equal(acknowledged.length, 32, 'every push succeeded, some after retries');
  // Every acknowledged manifest and blob is intact on the instances left.
  for (const n of nodes.slice(0, 2)) {
    for (const ack of acknowledged) {
      const v = await verifyManifest(n.url, ack.repo, ack.tag);
      assert.deepEqual(v.problems, [], `${ack.repo}:${ack.tag} on ${n.url}`);
      assert.equal(v.digest, ack.digest);
      assert.equal((await hashBlob(n.url, ack.repo, ack.layer)).digest, ack.layer);
    }
  }
  // The killed instance comes back over the same directory and database and serves them too.
  const back = await startNode(victim.dataDir, { WHARF_DB: dbUrl });
  nodes[2] = back;
  for (const ack of acknowledged) assert.equal((await verifyManifest(back.url, ack.repo, ack.tag)).digest, ack.digest);
  process.stdout.write(`# ${failures} push attempts failed around the kill and were retried\n`);
});
