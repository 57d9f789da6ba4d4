// Integrity on serve: a blob whose stored bytes changed is cut short (never delivered whole under its digest), a
// truncated one is a clean 404, both are quarantined (moved aside, /metrics, audit log) and a re-push or fsck heals
// them; the background scrub finds a bad blob at its bounded rate; hashOnServe: unverified skips verified blobs.
import { test, afterEach } from 'node:test';
import type { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { get } from 'node:http';
import { readdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { fsck } from '../../src/registry/fsck.js';
import { BlobIntegrity, BlobIntegrityError } from '../../src/registry/blob-integrity.js';
import { ScrubSchedule, scrubBlobs } from '../../src/registry/blob-scrub.js';
import type { BlobFile, BlobStore } from '../../src/storage/blob-store.js';
import { digestOf, expectError, pushBlob, startRegistry, type Registry } from '../server/v2-harness.js';

let r: Registry | undefined;
afterEach(async () => {
  await r?.close();
  r = undefined;
});

interface Pulled {
  status: number;
  contentLength: number;
  received: number;
  /** the whole body arrived (res.complete) */
  complete: boolean;
  body: Buffer;
}

/** A GET through node:http, which tells a body cut short (the socket destroyed) from a complete one. */
function pull(base: string, path: string): Promise<Pulled> {
  return new Promise((resolve, reject) => {
    get(base + path, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => undefined);
      res.on('close', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode!, contentLength: Number(res.headers['content-length']), received: body.length, complete: res.complete, body });
      });
    }).on('error', reject);
  });
}

async function quarantinedFiles(dataDir: string): Promise<string[]> {
  return readdir(join(dataDir, 'quarantine', 'sha256')).catch(() => []);
}

async function integrityFailures(reg: Registry, foundBy: 'serve' | 'scrub'): Promise<number> {
  const text = await (await reg.req('/metrics')).text();
  const m = new RegExp(`^wharf_blob_integrity_failures_total\\{found_by="${foundBy}"\\} (\\d+)`, 'm').exec(text);
  assert.ok(m, `no ${foundBy} integrity counter in /metrics:\n${text.slice(0, 500)}`);
  return Number(m[1]);
}

test('a blob changed on disk is cut short, quarantined and reported; later GETs are 404; a re-push heals it', async () => {
  r = await startRegistry({ env: { WHARF_HASH_ON_SERVE: 'always' } });
  const data = randomBytes(3 << 20); // several of the sender's buffers: some bytes go out before the end is checked
  const digest = await pushBlob(r, 'team/app', data);
  const good = await pull(r.url, `/v2/team/app/blobs/${digest}`);
  assert.ok(good.complete && good.body.equals(data));

  const flipped = Buffer.from(data);
  flipped[flipped.length - 10]! ^= 0xff; // same size: only the hash can tell
  await writeFile((r.wharf.blobs as FsBlobStore).blobPath(digest), flipped);

  const bad = await pull(r.url, `/v2/team/app/blobs/${digest}`);
  assert.equal(bad.status, 200);
  assert.equal(bad.complete, false, 'the client must see a failed transfer');
  assert.ok(bad.received < bad.contentLength, `received ${bad.received} of ${bad.contentLength}`);

  const later = await r.req(`/v2/team/app/blobs/${digest}`);
  const err = await expectError(later, 404, 'BLOB_UNKNOWN');
  assert.match(err.message, /quarantined/);
  assert.equal((await r.req(`/v2/team/app/blobs/${digest}`, { method: 'HEAD' })).status, 404);
  const moved = await quarantinedFiles(r.dataDir);
  assert.equal(moved.length, 1);
  assert.ok(moved[0]!.startsWith(digest.slice('sha256:'.length) + '.'));
  assert.equal(await integrityFailures(r, 'serve'), 1);
  const audit = await r.wharf.audit.list({ action: 'blob.quarantine' });
  assert.equal(audit.length, 1);
  assert.equal(audit[0]!.target, digest);
  assert.equal(audit[0]!.detail?.foundBy, 'serve');

  // The client pushes it again (it finds the blob missing): it is whole again.
  await pushBlob(r, 'team/app', data);
  const healed = await pull(r.url, `/v2/team/app/blobs/${digest}`);
  assert.ok(healed.complete && healed.body.equals(data));
});

test('hashOnServe: unverified (the default) skips a verified blob, and hashes it again once its bytes changed', async () => {
  r = await startRegistry();
  const data = randomBytes(1 << 20);
  const digest = await pushBlob(r, 'team/app', data);
  const first = await pull(r.url, `/v2/team/app/blobs/${digest}`); // hashed, and so verified
  assert.ok(first.complete && first.body.equals(data));
  // File timestamps move in clock ticks (a few ms): the change must come after the tick of the verified state.
  await new Promise((resolve) => setTimeout(resolve, 50));
  data[1000]! ^= 1;
  await writeFile((r.wharf.blobs as FsBlobStore).blobPath(digest), data);
  const bad = await pull(r.url, `/v2/team/app/blobs/${digest}`);
  assert.equal(bad.complete, false);
  await expectError(await r.req(`/v2/team/app/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
});

test('a truncated blob is a clean 404 on GET and HEAD, never its full Content-Length over a short body', async () => {
  r = await startRegistry();
  const data = randomBytes(1 << 20);
  const digest = await pushBlob(r, 'team/app', data);
  await truncate((r.wharf.blobs as FsBlobStore).blobPath(digest), 1000);
  await expectError(await r.req(`/v2/team/app/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
  assert.equal((await r.req(`/v2/team/app/blobs/${digest}`, { method: 'HEAD' })).status, 404);
  assert.equal((await quarantinedFiles(r.dataDir)).length, 1);

  // HEAD alone finds a truncated blob too.
  const other = randomBytes(4096);
  const otherDigest = await pushBlob(r, 'team/app', other);
  await truncate((r.wharf.blobs as FsBlobStore).blobPath(otherDigest), 10);
  assert.equal((await r.req(`/v2/team/app/blobs/${otherDigest}`, { method: 'HEAD' })).status, 404);
  assert.equal(await integrityFailures(r, 'serve'), 2);
  // A range of it is refused too: its size is checked on every open.
  const again = await pushBlob(r, 'team/app', other);
  await truncate((r.wharf.blobs as FsBlobStore).blobPath(again), 10);
  await expectError(await r.req(`/v2/team/app/blobs/${again}`, { headers: { range: 'bytes=0-5' } }), 404, 'BLOB_UNKNOWN');
});

test('fsck --repair settles a quarantined blob: its rows go, and GET stays a clean BLOB_UNKNOWN', async () => {
  r = await startRegistry();
  const data = randomBytes(100_000);
  const digest = await pushBlob(r, 'team/app', data);
  await truncate((r.wharf.blobs as FsBlobStore).blobPath(digest), 10);
  assert.equal((await r.req(`/v2/team/app/blobs/${digest}`)).status, 404);
  const report = await fsck(r.wharf.blobs, r.wharf.meta, { repair: true, orphanGraceMs: 0 });
  assert.deepEqual(
    report.problems.map((p) => [p.kind, p.repaired]),
    [['missing-blob', true]],
  );
  assert.deepEqual((await fsck(r.wharf.blobs, r.wharf.meta, { repair: false, orphanGraceMs: 0 })).problems, []);
  await expectError(await r.req(`/v2/team/app/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
});

test('fsck --repair moves a corrupt blob to quarantine/ rather than deleting the evidence', async () => {
  r = await startRegistry();
  const digest = await pushBlob(r, 'team/app', 'original bytes');
  await writeFile((r.wharf.blobs as FsBlobStore).blobPath(digest), 'tampered bytes');
  const report = await fsck(r.wharf.blobs, r.wharf.meta, { repair: true, orphanGraceMs: 0 });
  assert.deepEqual(
    report.problems.map((p) => p.kind),
    ['corrupt-blob'],
  );
  assert.equal((await quarantinedFiles(r.dataDir)).length, 1);
});

test('the scrub re-hashes every blob at its rate and quarantines a bad one before anyone pulls it', async () => {
  r = await startRegistry();
  const good = randomBytes(2 << 20);
  const bad = randomBytes(2 << 20);
  const goodDigest = await pushBlob(r, 'team/app', good);
  const badDigest = await pushBlob(r, 'team/app', bad);
  bad[0]! ^= 1;
  await writeFile((r.wharf.blobs as FsBlobStore).blobPath(badDigest), bad);

  const rate = 8 << 20;
  const began = Date.now();
  const report = await scrubBlobs(r.wharf.blobs, r.wharf.registry.integrity, { rate });
  const elapsed = Date.now() - began;
  assert.equal(report.blobs, 2);
  assert.equal(report.bytes, 4 << 20);
  assert.deepEqual(report.quarantined, [badDigest]);
  // 4 MiB at 8 MiB/s: at least half a second, whatever the disk could do.
  assert.ok(elapsed >= 450, `the scrub read 4 MiB in ${elapsed} ms, faster than its rate allows`);
  assert.equal(await integrityFailures(r, 'scrub'), 1);
  const err = await expectError(await r.req(`/v2/team/app/blobs/${badDigest}`), 404, 'BLOB_UNKNOWN');
  assert.match(err.message, /quarantined/);
  const served = await pull(r.url, `/v2/team/app/blobs/${goodDigest}`);
  assert.ok(served.complete && served.body.equals(good));
  const audit = await r.wharf.audit.list({ action: 'blob.quarantine' });
  assert.equal(audit[0]?.detail?.foundBy, 'scrub');
});

test('the scrub schedule runs passes on its interval and stops cleanly', async () => {
  r = await startRegistry();
  const data = randomBytes(64 << 10);
  const digest = await pushBlob(r, 'team/app', data);
  const schedule = new ScrubSchedule(r.wharf.blobs, r.wharf.registry.integrity, { interval: 100, rate: 64 << 20, firstDelay: 0 }, pino({ level: 'silent' }));
  schedule.start();
  try {
    await new Promise((resolve) => setTimeout(resolve, 300));
    data[5]! ^= 1;
    await writeFile((r.wharf.blobs as FsBlobStore).blobPath(digest), data);
    for (let i = 0; i < 100 && r.wharf.registry.integrity.counts.scrub === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(r.wharf.registry.integrity.counts.scrub, 1);
  } finally {
    await schedule.stop();
  }
});

/** A one-blob store in memory whose bytes can change without its modifiedMs changing (bit rot). */
function memoryStore(digest: string, bytes: Buffer, modifiedMs: number): BlobStore & { bytes: Buffer } {
  const store = {
    bytes,
    async open(d: string): Promise<BlobFile | null> {
      if (d !== digest) return null;
      const b = store.bytes;
      return {
        size: b.length,
        modifiedMs,
        read: async (into: Buffer, length: number, position: number) => b.copy(into, 0, position, Math.min(b.length, position + length)),
        close: async () => {},
      };
    },
    async quarantine() {},
  };
  return store as unknown as BlobStore & { bytes: Buffer };
}

async function readAll(file: BlobFile): Promise<Buffer> {
  const buf = Buffer.alloc(1000);
  const parts: Buffer[] = [];
  for (let position = 0; position < file.size; ) {
    const n = await file.read(buf, Math.min(buf.length, file.size - position), position);
    parts.push(Buffer.from(buf.subarray(0, n)));
    position += n;
  }
  await file.close();
  return Buffer.concat(parts);
}

test('hashOnServe: unverified hashes a blob until it is verified at its current modifiedMs; always hashes every time', async () => {
  const data = randomBytes(5000);
  const digest = digestOf(data);
  for (const mode of ['always', 'unverified'] as const) {
    const store = memoryStore(digest, Buffer.from(data), 1234);
    const integrity = new BlobIntegrity(store, mode);
    assert.ok((await readAll(await integrity.openForServe(digest, data.length))).equals(data)); // verified now
    store.bytes[100]! ^= 1; // rot that leaves the stamp alone
    const serve = integrity.openForServe(digest, data.length).then(readAll);
    if (mode === 'always') await assert.rejects(serve, BlobIntegrityError);
    else assert.equal((await serve).length, data.length, 'a verified, unchanged blob is served without hashing');
  }
});
