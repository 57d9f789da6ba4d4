// Database round trips per registry request, read from a real server's /metrics (wharf_db_queries_total), pinned:
// a pull (manifest by tag or digest, tags/list, blob HEAD and GET) sends nothing to PostgreSQL on a warm cache and
// only SQLite's in-process `pragma data_version` (the change stamp) to SQLite, whoever asks; a blob push is one
// transaction of five statements; a manifest push has its count. A change that adds a round trip to these paths
// fails here. Runs on either backend (WHARF_TEST_DB=postgres: PostgreSQL).
// scripts/test.js: alone (counts every statement the server sends in a window)
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startWharf, type WharfServer } from '../support/server.js';
import { onPostgres } from '../support/database.js';

const REPO = 'rt/app';
const K = 20;

let server: WharfServer;
let basic: string;
let bearer: string;
let bearerPush: string;
const layer = Buffer.from('a layer of round trips'.repeat(100));
const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux' }));
/** A Buffer as fetch's body type wants it. */
const bytes = (b: Buffer) => b as unknown as RequestInit['body'];
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length }],
  }),
);

before(async () => {
  const file = join(tmpdir(), `wharf-round-trips-${process.pid}.yaml`);
  // The policy is read once for the whole test (normally every second while requests come: 4 statements) and the
  // webhook outbox polled once (normally every 5 s: a transaction of 4): per instance, not per request, so they
  // are kept out of the counts below, which are the requests' own. So is the deploy reconciler, which reads the
  // watched environments every 5 s (CI's loaded machine met that read inside a measurement).
  await writeFile(file, `auth:\n  policyRefresh: 1h\n  anonymousPull: ["rt/*"]\nwebhooks:\n  pollInterval: 1h\ndeploy:\n  reconcileInterval: 0\n`);
  server = await startWharf({ args: ['--config', file] });
  basic = server.authorization;
  const token = async (scope: string) => `Bearer ${((await (await fetch(`${server.url}/token?service=wharf&scope=${encodeURIComponent(scope)}`, { headers: { authorization: basic } })).json()) as { token: string }).token}`;
  bearer = await token(`repository:${REPO}:pull`);
  bearerPush = await token(`repository:${REPO}:pull,push`);
  for (const blob of [config, layer]) await pushMonolithic(blob);
  const put = await fetch(`${server.url}/v2/${REPO}/manifests/v1`, { method: 'PUT', body: bytes(manifest), headers: { authorization: bearerPush, 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(put.status, 201, await put.text());
});

after(async () => {
  await server?.stop();
});

async function pushMonolithic(blob: Buffer): Promise<void> {
  const post = await fetch(`${server.url}/v2/${REPO}/blobs/uploads/`, { method: 'POST', headers: { authorization: bearerPush } });
  assert.equal(post.status, 202, await post.text());
  const location = new URL(post.headers.get('location')!, server.url);
  location.searchParams.set('digest', sha(blob));
  const put = await fetch(location, { method: 'PUT', body: bytes(blob), headers: { authorization: bearerPush, 'content-type': 'application/octet-stream' } });
  assert.equal(put.status, 201, await put.text());
}

async function pushChunked(blob: Buffer): Promise<void> {
  const post = await fetch(`${server.url}/v2/${REPO}/blobs/uploads/`, { method: 'POST', headers: { authorization: bearerPush } });
  assert.equal(post.status, 202, await post.text());
  let location = new URL(post.headers.get('location')!, server.url);
  const half = blob.length >> 1;
  for (const [start, end] of [[0, half], [half, blob.length]] as const) {
    const patch = await fetch(location, { method: 'PATCH', body: bytes(blob.subarray(start, end)), headers: { authorization: bearerPush, 'content-type': 'application/octet-stream', 'content-range': `${start}-${end - 1}` } });
    assert.equal(patch.status, 202, await patch.text());
    location = new URL(patch.headers.get('location')!, server.url);
  }
  location.searchParams.set('digest', sha(blob));
  const put = await fetch(location, { method: 'PUT', headers: { authorization: bearerPush } });
  assert.equal(put.status, 201, await put.text());
}

async function statements(): Promise<Map<string, number>> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const counts = new Map<string, number>();
  const backend = onPostgres ? 'postgres' : 'sqlite';
  for (const m of text.matchAll(/^wharf_db_queries_total\{backend="([^"]+)",statement="([^"]+)"\} (\d+)$/gm)) {
    assert.equal(m[1], backend);
    counts.set(m[2]!, Number(m[3]));
  }
  assert.ok(counts.size > 0, 'wharf_db_queries_total is exposed at /metrics');
  return counts;
}

/**
 * The statements `work` sent, by name, less what a scrape of /metrics itself costs; `settleMs` waits for what the
 * server writes just after its answer (the audit record of a push).
 */
async function sent(work: () => Promise<void>, settleMs = 0): Promise<Record<string, number>> {
  const delta = async (w: () => Promise<void>) => {
    const before = await statements();
    await w();
    if (settleMs > 0) await new Promise((r) => setTimeout(r, settleMs));
    const after = await statements();
    const out: Record<string, number> = {};
    for (const [name, n] of after) if (n !== (before.get(name) ?? 0)) out[name] = n - (before.get(name) ?? 0);
    return out;
  };
  const scrape = await delta(async () => {});
  const measured = await delta(work);
  for (const [name, n] of Object.entries(scrape)) {
    measured[name] = (measured[name] ?? 0) - n;
    if (measured[name] === 0) delete measured[name];
  }
  // Once a second while logins come, an instance reads the login delays other instances started: a cost per
  // instance, not per request (CI's loaded machine stretched K requests past a second).
  delete measured.login_delays;
  return measured;
}

async function times(k: number, request: () => Promise<Response>, status = 200): Promise<void> {
  for (let i = 0; i < k; i++) {
    const res = await request();
    await res.arrayBuffer();
    assert.equal(res.status, status);
  }
}

/** What a warm pull request sends, K times: nothing to PostgreSQL; the change stamp to SQLite. */
const warmRead = onPostgres ? {} : { data_version: K };

/**
 * Warms the caches (and the credential cache) with `request`. On PostgreSQL an instance also hears its own writes'
 * notifications, a few milliseconds after their commit, and each moves its change stamp once more: the caches are
 * warm when a request has gone by without a statement.
 */
async function warm(request: () => Promise<Response>): Promise<void> {
  const once = onPostgres ? {} : { data_version: 1 };
  for (let i = 0; i < 100; i++) {
    if (JSON.stringify(await sent(() => times(1, request))) === JSON.stringify(once)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail('the caches never got warm');
}

const accept = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json';
const reads: [string, string, string][] = [
  ['manifest GET by tag', 'GET', `/v2/${REPO}/manifests/v1`],
  ['manifest HEAD by tag', 'HEAD', `/v2/${REPO}/manifests/v1`],
  ['manifest GET by digest', 'GET', `/v2/${REPO}/manifests/${sha(manifest)}`],
  ['tags/list', 'GET', `/v2/${REPO}/tags/list`],
  ['blob HEAD', 'HEAD', `/v2/${REPO}/blobs/${sha(layer)}`],
  ['blob GET', 'GET', `/v2/${REPO}/blobs/${sha(layer)}`],
];

for (const [what, method, path] of reads) {
  test(`${what} on a warm cache: no round trip (anonymous, Basic, Bearer)`, async () => {
    for (const authorization of [undefined, basic, bearer]) {
      const request = () => fetch(server.url + path, { method, headers: { accept, ...(authorization ? { authorization } : {}) } });
      await warm(request);
      assert.deepEqual(await sent(() => times(K, request)), warmRead, `${K} × ${what} as ${authorization?.split(' ')[0] ?? 'anonymous'}`);
    }
  });
}

test('a cold manifest GET by tag is one round trip: the cache is what makes it none', async () => {
  // A write (a blob link) moves the change stamp: the next GET asks the database once, the ones after it do not.
  await pushMonolithic(Buffer.from(`moves the stamp ${Date.now()}`));
  const request = () => fetch(`${server.url}/v2/${REPO}/manifests/v1`, { headers: { accept, authorization: bearer } });
  assert.deepEqual(await sent(() => times(1, request)), { manifest_by_tag: 1, ...(onPostgres ? {} : { data_version: 1 }) });
  await warm(request);
  assert.deepEqual(await sent(() => times(K, request)), warmRead);
});

test('a blob push is one transaction of five statements, monolithic or chunked', async () => {
  const commit = { begin: 1, insert: 2, repository_id: 1, commit: 1 };
  assert.deepEqual(await sent(() => pushMonolithic(Buffer.from(`monolithic ${Date.now()}`)), 300), commit);
  assert.deepEqual(await sent(() => pushChunked(Buffer.from(`chunked ${Date.now()}`.repeat(50))), 300), commit);
});

test('a manifest push by a new tag: one transaction, its statements counted', async () => {
  const res = () => fetch(`${server.url}/v2/${REPO}/manifests/v-${Date.now()}`, { method: 'PUT', body: bytes(manifest), headers: { authorization: bearerPush, 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  const got = await sent(() => times(1, res, 201), 500);
  // Inserts: manifest, references, tag, tag history, and the audit record (written just after the answer). On
  // PostgreSQL the tag write locks its repository's row first (FOR NO KEY UPDATE): one select more.
  assert.deepEqual(got, { begin: 1, commit: 1, repository_id: 1, insert: 5, update: 1, select: onPostgres ? 5 : 4 });
});
