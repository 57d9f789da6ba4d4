// Two Wharf instances over one S3 bucket (a real Ceph RGW) and one PostgreSQL database: a chunked upload whose
// PATCHes alternate between them and whose commit lands on the one that did not see every byte, a push through one
// pulled through the other (and the same layer pushed again through the other, stored once), GC on one while pushes
// go through the other, and kill -9 of one in the middle of a PATCH: nothing visible, the session resumes on the
// other from its last acknowledged byte, and the killed one comes back and serves the result.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTestDatabase, dropTestDatabase, postgresMissing } from '../support/database.js';
import { openPostgres } from '../../src/metadata/postgres.js';
import { hashBlob, pushBlob, pushImage, sha256, verifyManifest } from '../support/registry-client.js';
import { createBucket, s3Server, type S3Server, type TestBucket } from '../support/s3.js';
import { startWharf, withLogsOnFailure, type WharfServer } from '../support/server.js';

const MiB = 1 << 20;
/** The smallest part S3 allows: a few MiB already cross part boundaries, so the test moves little data. */
const PART = 5 * MiB;
const GRACE_MS = 2_000;

const server = s3Server();
const skip = postgresMissing() || (typeof server === 'string' ? server : false);

let work: string;
let data: string;
let dbUrl: string;
let bucket: TestBucket;
let env: Record<string, string>;
let a: WharfServer;
let b: WharfServer;
const extra: WharfServer[] = [];

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'wharf-test-cluster-s3-'));
  data = join(work, 'data');
  await mkdir(data, { mode: 0o700 });
  dbUrl = await createTestDatabase();
  await (await openPostgres(dbUrl, { poolSize: 1, migrate: true })).close();
  bucket = await createBucket(server as S3Server);
  // GC only when asked (the API), with a short grace so that the orphan below is collectable within the test.
  env = { ...bucket.env, WHARF_DB: dbUrl, WHARF_S3_PART_SIZE: String(PART), WHARF_GC_INTERVAL: '0', WHARF_GC_GRACE: `${GRACE_MS / 1000}s` };
  // The shared data directory holds only the keys (the signing key and the secret key) here: blobs and sessions
  // are in the bucket, metadata in PostgreSQL.
  [a, b] = await Promise.all([startWharf({ dataDir: data, env }), startWharf({ dataDir: data, env })]);
});

after(async () => {
  for (const w of [a, b, ...extra]) await w?.stop().catch(() => w.kill('SIGKILL').catch(() => undefined));
  await bucket?.remove();
  if (dbUrl) await dropTestDatabase(dbUrl);
  if (work) await rm(work, { recursive: true, force: true });
});

const octets = { 'content-type': 'application/octet-stream' };
const blobKeys = async () => (await bucket.keys('blobs/')).map((k) => k.key).sort();

function req(w: WharfServer, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(new URL(path, w.url), { ...init, headers: { authorization: w.authorization, ...(init.headers as Record<string, string>) } });
}

async function openUpload(w: WharfServer, repo: string): Promise<string> {
  const res = await req(w, `/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(res.status, 202, await res.text());
  return res.headers.get('location')!;
}

async function patch(w: WharfServer, location: string, chunk: Buffer, start: number): Promise<string> {
  const res = await req(w, location, { method: 'PATCH', body: new Uint8Array(chunk), headers: { ...octets, 'content-range': `${start}-${start + chunk.length - 1}` } });
  assert.equal(res.status, 202, `PATCH at ${start} on ${w.url}: ${await res.text()}`);
  assert.equal(res.headers.get('range'), `0-${start + chunk.length - 1}`);
  return res.headers.get('location')!;
}

async function commit(w: WharfServer, location: string, digest: string): Promise<void> {
  const url = new URL(location, w.url);
  url.searchParams.set('digest', digest);
  const res = await req(w, url.pathname + url.search, { method: 'PUT' });
  assert.equal(res.status, 201, `commit on ${w.url}: ${await res.text()}`);
}

async function uploadedSize(w: WharfServer, location: string): Promise<number> {
  const res = await req(w, location);
  assert.equal(res.status, 204, await res.text());
  return Number(res.headers.get('range')!.split('-')[1]) + 1;
}

test('a chunked upload whose PATCHes alternate between two instances, committed by the one that missed bytes', { skip, timeout: 60_000 }, async () => {
  await withLogsOnFailure(b, async () => {
    const blob = randomBytes(13 * MiB + 4321);
    const digest = sha256(blob);
    const before = await blobKeys();
    let location = await openUpload(a, 'two/chunked');
    // 3 MiB + 17: no PATCH ends on a part boundary, so each one reads back the tail the other instance left.
    const step = 3 * MiB + 17;
    const order = [a, b, a, b, a];
    for (let o = 0, i = 0; o < blob.length; o += step, i++) location = await patch(order[i]!, location, blob.subarray(o, o + step), o);
    for (const w of [a, b]) assert.equal(await uploadedSize(w, location), blob.length, `status on ${w.url}`);
    // Not yet visible anywhere.
    assert.equal((await req(a, `/v2/two/chunked/blobs/${digest}`, { method: 'HEAD' })).status, 404);
    await commit(b, location, digest);
    for (const w of [a, b]) {
      const got = await hashBlob(w.url, 'two/chunked', digest);
      assert.deepEqual([got.status, got.digest, got.size], [200, digest, blob.length], `pulled from ${w.url}`);
    }
    // One object, the upload's; no session and no multipart upload left behind.
    const after = await blobKeys();
    assert.equal(after.length, before.length + 1);
    assert.deepEqual(await bucket.keys('uploads/'), []);
    assert.deepEqual(await bucket.multipartUploads(), []);
  });
});

test('an image pushed through one instance is pulled through the other; the same layer pushed again there is stored once', { skip, timeout: 60_000 }, async () => {
  const layer = randomBytes(6 * MiB + 99);
  const before = await blobKeys();
  const manifest = await pushImage(a.url, 'two/app', 'v1', layer);
  const v = await verifyManifest(b.url, 'two/app', 'v1');
  assert.deepEqual(v.problems, []);
  assert.equal(v.digest, manifest);
  // A range of the layer through b, across the first part boundary.
  const range = await req(b, `/v2/two/app/blobs/${sha256(layer)}`, { headers: { range: `bytes=${PART - 10}-${PART + 9}` } });
  assert.equal(range.status, 206);
  assert.ok(Buffer.from(await range.arrayBuffer()).equals(layer.subarray(PART - 10, PART + 10)));
  // Layer and config: two objects.
  assert.equal((await blobKeys()).length, before.length + 2);
  await pushImage(b.url, 'two/other', 'v1', layer);
  assert.equal((await blobKeys()).length, before.length + 2, 'the second upload of the layer (and config) was dropped, not stored');
  assert.deepEqual((await verifyManifest(a.url, 'two/other', 'v1')).problems, []);
});

test('GC on one instance while pushes go through the other: the orphan goes, nothing acknowledged is lost', { skip, timeout: 90_000 }, async () => {
  const before = new Set(await blobKeys());
  const orphan = randomBytes(3000);
  await pushBlob(a.url, 'two/gc', orphan);
  const orphanKeys = (await blobKeys()).filter((k) => !before.has(k));
  assert.equal(orphanKeys.length, 1);
  await sleep(GRACE_MS + 500);
  const acknowledged: { repo: string; tag: string; digest: string }[] = [];
  let pushing = true;
  const clients = Array.from({ length: 2 }, async (_, id) => {
    for (let i = 0; i < 4; i++) {
      // Layers of one part and a bit: multipart uploads in flight while GC lists and aborts.
      acknowledged.push({ repo: `two/gc${id}`, tag: `t${i}`, digest: await pushImage(a.url, `two/gc${id}`, `t${i}`, randomBytes(PART + 1000)) });
    }
  });
  const all = Promise.all(clients).finally(() => (pushing = false));
  let runs = 0;
  while (pushing) {
    const res = await req(b, '/api/v1/gc', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const text = await res.text();
    assert.ok(res.status === 200 || res.status === 409, `gc answered ${res.status}: ${text}`);
    runs++;
  }
  await all;
  assert.ok(runs > 1, `GC ran ${runs} times during the pushes`);
  for (const ack of acknowledged) {
    for (const w of [a, b]) {
      const v = await verifyManifest(w.url, ack.repo, ack.tag);
      assert.deepEqual(v.problems, [], `${ack.repo}:${ack.tag} on ${w.url}`);
      assert.equal(v.digest, ack.digest);
    }
  }
  assert.equal((await req(b, `/v2/two/gc/blobs/${sha256(orphan)}`, { method: 'HEAD' })).status, 404, 'the orphan blob was collected');
  assert.ok(!(await blobKeys()).includes(orphanKeys[0]!), 'and its object deleted');
});

test('kill -9 of an instance in the middle of a PATCH: nothing visible, the upload resumes on the other', { skip, timeout: 90_000 }, async () => {
  const blob = randomBytes(17 * MiB + 5);
  const digest = sha256(blob);
  const first = 6 * MiB; // one whole part in the multipart upload, and a tail
  const keysBefore = await blobKeys();
  let location = await openUpload(a, 'two/killed');
  location = await patch(a, location, blob.subarray(0, first), 0);
  // The second PATCH streams into a: 8 MiB in (a part sent, another filling), then a is killed, body still open.
  let sent = first;
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      if (sent >= first + 8 * MiB) {
        await sleep(500);
        await a.kill('SIGKILL');
        c.close();
        return;
      }
      c.enqueue(new Uint8Array(blob.subarray(sent, sent + MiB)));
      sent += MiB;
    },
  });
  const killed = await fetch(new URL(location, a.url), {
    method: 'PATCH',
    body,
    duplex: 'half',
    headers: { authorization: a.authorization, ...octets, 'content-range': `${first}-${blob.length - 1}` },
  } as RequestInit).catch(() => null);
  assert.ok(killed === null || killed.status !== 202, 'the killed PATCH was not acknowledged');
  assert.ok((await bucket.multipartUploads()).length >= 1, 'the killed PATCH had parts in flight');

  // Nothing of it is visible through b, and the session is where the last acknowledged PATCH left it.
  assert.equal((await req(b, `/v2/two/killed/blobs/${digest}`, { method: 'HEAD' })).status, 404);
  assert.equal(await uploadedSize(b, location), first);
  location = await patch(b, location, blob.subarray(first), first);
  await commit(b, location, digest);
  const got = await hashBlob(b.url, 'two/killed', digest);
  assert.deepEqual([got.status, got.digest, got.size], [200, digest, blob.length]);
  const id = /uploads\/([a-f0-9-]{36})/.exec(location)![1]!;
  assert.deepEqual(await bucket.keys(`uploads/${id}/`), [], 'the session ended');
  assert.equal((await blobKeys()).length, keysBefore.length + 1);

  // The killed instance comes back over the same directory, database and bucket, and serves the blob.
  const back = await startWharf({ dataDir: data, env });
  extra.push(back);
  const again = await hashBlob(back.url, 'two/killed', digest);
  assert.deepEqual([again.status, again.digest], [200, digest]);
  // The parts the killed PATCH sent were numbered as the resumed ones are, and replaced by them: the commit
  // completed that same multipart upload, so none is left over.
  assert.deepEqual(await bucket.multipartUploads(), []);
});
