// FsBlobStore upload sessions: appends, offsets, verified commits, sha512, restarts, expiry and one writer at a time.
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, rm, utimes, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { digestOf } from '../../src/oci/digest.js';
import { RegistryError } from '../../src/oci/errors.js';
import { FsBlobStore } from '../../src/storage/fs-blob-store.js';

let root: string;
let store: FsBlobStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'wharf-blobstore-'));
  store = await openStore();
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function openStore(): Promise<FsBlobStore> {
  const s = new FsBlobStore(root);
  await s.init();
  return s;
}

const body = (s: string | Buffer) => Readable.from([Buffer.from(s)]);

function registryError(code: string, message?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof RegistryError, `expected RegistryError ${code}, got ${String(e)}`);
    assert.equal(e.code, code);
    if (message) assert.match(e.message, message);
    return true;
  };
}

async function allBlobs(s: FsBlobStore): Promise<string[]> {
  const out: string[] = [];
  for await (const b of s.list()) out.push(b.digest);
  return out;
}

const uploadDirs = () => readdir(join(root, 'uploads'));

test('appends chunks, commits a verified blob and removes the session', async () => {
  const s = await store.startUpload('a/app');
  assert.equal(s.size, 0);
  assert.equal(s.repository, 'a/app');
  assert.equal((await store.appendUpload(s.id, body('hello '))).size, 6);
  assert.equal((await store.appendUpload(s.id, body('world'), 6)).size, 11);
  assert.equal((await store.getUpload(s.id))?.size, 11);
  const digest = digestOf('hello world');
  assert.deepEqual(await store.commitUpload(s.id, digest), { size: 11 });
  assert.deepEqual(await store.stat(digest), { size: 11 });
  assert.equal(await text(store.read(digest)), 'hello world');
  assert.equal(await text(store.read(digest, { start: 6, end: 10 })), 'world');
  assert.ok(await store.verify(digest));
  assert.deepEqual(await allBlobs(store), [digest]);
  assert.equal(await store.getUpload(s.id), null);
  assert.deepEqual(await uploadDirs(), []);
});

test('a chunk at the wrong offset is refused with the real position and changes nothing', async () => {
  const s = await store.startUpload('a/app');
  await store.appendUpload(s.id, body('abc'));
  for (const offset of [0, 2, 4]) {
    await assert.rejects(store.appendUpload(s.id, body('zzz'), offset), (e) => {
      registryError('RANGE_INVALID', /offset 3/)(e);
      assert.deepEqual((e as RegistryError).detail, { size: 3 });
      return true;
    });
  }
  assert.equal((await store.getUpload(s.id))?.size, 3);
  await store.appendUpload(s.id, body('def'), 3);
  await store.commitUpload(s.id, digestOf('abcdef'));
  assert.equal(await text(store.read(digestOf('abcdef'))), 'abcdef');
});

test('a commit with the wrong digest leaves no blob, no session and no temporary data', async () => {
  const s = await store.startUpload('a/app');
  await store.appendUpload(s.id, body('payload'));
  const wrong = digestOf('something else');
  await assert.rejects(store.commitUpload(s.id, wrong), registryError('DIGEST_INVALID', /sha256:/));
  assert.equal(await store.stat(wrong), null);
  assert.equal(await store.stat(digestOf('payload')), null);
  assert.deepEqual(await allBlobs(store), []);
  assert.equal(await store.getUpload(s.id), null);
  assert.deepEqual(await uploadDirs(), []);
  // A malformed digest is refused before anything is touched.
  const t = await store.startUpload('a/app');
  await assert.rejects(store.commitUpload(t.id, 'sha256:abc'), registryError('DIGEST_INVALID'));
  assert.deepEqual(await allBlobs(store), []);
});

test('sha512 uploads are verified with sha512', async () => {
  const data = Buffer.alloc(300_000, 7);
  const digest = digestOf(data, 'sha512');
  const s = await store.startUpload('a/app');
  await store.appendUpload(s.id, body(data.subarray(0, 100_000)));
  await store.appendUpload(s.id, body(data.subarray(100_000)), 100_000);
  await assert.rejects(store.commitUpload(s.id, digestOf(data, 'sha256').replace('sha256', 'sha512').padEnd(135, '0')), registryError('DIGEST_INVALID'));
  const again = await store.startUpload('a/app');
  await store.appendUpload(again.id, body(data));
  assert.deepEqual(await store.commitUpload(again.id, digest), { size: data.length });
  assert.ok(await store.verify(digest));
  assert.ok((await readdir(join(root, 'blobs'))).includes('sha512'));
});

test('a new store on the same directory resumes a session with the right size and hash', async () => {
  const s = await store.startUpload('team/app');
  await store.appendUpload(s.id, body('first half, '));
  const restarted = await openStore();
  const resumed = await restarted.getUpload(s.id);
  assert.equal(resumed?.size, 12);
  assert.equal(resumed?.repository, 'team/app');
  assert.equal(resumed?.startedAt, s.startedAt);
  await assert.rejects(restarted.appendUpload(s.id, body('x'), 0), registryError('RANGE_INVALID'));
  await restarted.appendUpload(s.id, body('second half'), 12);
  await restarted.commitUpload(s.id, digestOf('first half, second half'));
  assert.equal(await text(restarted.read(digestOf('first half, second half'))), 'first half, second half');

  // Committing straight after a restart (no append to rebuild the running hash) also verifies.
  const t = await restarted.startUpload('team/app');
  await restarted.appendUpload(t.id, body('whole'));
  const third = await openStore();
  await assert.rejects(third.commitUpload(t.id, digestOf('WHOLE')), registryError('DIGEST_INVALID'));
  const u = await third.startUpload('team/app');
  await third.appendUpload(u.id, body('whole'));
  await assert.doesNotReject((await openStore()).commitUpload(u.id, digestOf('whole')));
});

test('two stores on one directory (two instances) take turns on a session, each seeing the other\'s chunks', async () => {
  const other = await openStore();
  const s = await store.startUpload('team/app');
  await store.appendUpload(s.id, body('one '), 0);
  assert.equal((await other.appendUpload(s.id, body('two '), 4)).size, 8);
  // The first store cached the session at 4 bytes: it follows the file, not its memory.
  assert.equal((await store.getUpload(s.id))?.size, 8);
  await assert.rejects(store.appendUpload(s.id, body('x'), 4), registryError('RANGE_INVALID'));
  assert.equal((await store.appendUpload(s.id, body('three '), 8)).size, 14);
  await other.appendUpload(s.id, body('four'), 14);
  await store.commitUpload(s.id, digestOf('one two three four'));
  assert.equal(await text(other.read(digestOf('one two three four'))), 'one two three four');
  // Committed by one, the session is gone for the other too, though it had it cached.
  assert.equal(await other.getUpload(s.id), null);
  await assert.rejects(other.appendUpload(s.id, body('late'), 18), registryError('BLOB_UPLOAD_UNKNOWN'));
  await other.close();
});

test('expiry removes old sessions and their data, crash debris too, and keeps young ones', async () => {
  const old = await store.startUpload('a/app');
  await store.appendUpload(old.id, body('stale bytes'));
  const cutoff = Date.now() + 1;
  await new Promise((r) => setTimeout(r, 5));
  const young = await store.startUpload('a/app');
  // A session directory without info.json: a crash while it was being created.
  const debris = join(root, 'uploads', '00000000-0000-0000-0000-000000000000');
  await mkdir(debris);
  await writeFile(join(debris, 'data'), 'partial');
  const longAgo = new Date(Date.now() - 3_600_000);
  await utimes(debris, longAgo, longAgo);

  assert.equal(await store.expireUploads(cutoff), 2);
  assert.equal(await store.getUpload(old.id), null);
  await assert.rejects(store.appendUpload(old.id, body('more')), registryError('BLOB_UPLOAD_UNKNOWN'));
  assert.deepEqual(await uploadDirs(), [young.id]);
  assert.deepEqual((await store.listUploads()).map((u) => u.id), [young.id]);

  // A restarted store expires sessions it never saw in memory.
  const restarted = await openStore();
  assert.equal(await restarted.expireUploads(Date.now() + 1), 1);
  assert.deepEqual(await uploadDirs(), []);
});

test('one writer per session: a concurrent append is refused, also right after a restart', async () => {
  const s = await store.startUpload('a/app');
  const slow = new PassThrough();
  slow.write('first ');
  const first = store.appendUpload(s.id, slow);
  await new Promise((r) => setTimeout(r, 20));
  await assert.rejects(store.appendUpload(s.id, body('intruder')), registryError('RANGE_INVALID', /another request/));
  await assert.rejects(store.commitUpload(s.id, digestOf('first ')), registryError('RANGE_INVALID', /another request/));
  slow.end('writer');
  assert.equal((await first).size, 12);

  // Two requests racing to load the same session from disk must not both get to write.
  const restarted = await openStore();
  const a = new PassThrough();
  const b = new PassThrough();
  const results = Promise.allSettled([restarted.appendUpload(s.id, a, 12), restarted.appendUpload(s.id, b, 12)]);
  await new Promise((r) => setTimeout(r, 20));
  a.end('AAAA');
  b.end('BBBB');
  const [ra, rb] = await results;
  const fulfilled = [ra, rb].filter((r) => r.status === 'fulfilled');
  assert.equal(fulfilled.length, 1, `exactly one writer may win, got ${JSON.stringify([ra.status, rb.status])}`);
  const contents = await readFile(join(root, 'uploads', s.id, 'data'), 'utf8');
  assert.ok(contents === 'first writerAAAA' || contents === 'first writerBBBB', contents);
  await restarted.commitUpload(s.id, digestOf(contents));
});

test('a broken request body leaves a session that still commits what reached the disk', async () => {
  const s = await store.startUpload('a/app');
  const broken = new Readable({
    read() {
      this.push(Buffer.from('partial'));
      this.destroy(new Error('client went away'));
    },
  });
  await assert.rejects(store.appendUpload(s.id, broken), /client went away/);
  const state = await store.getUpload(s.id);
  const onDisk = await readFile(join(root, 'uploads', s.id, 'data'), 'utf8');
  assert.equal(state?.size, onDisk.length);
  await store.appendUpload(s.id, body('!'), onDisk.length);
  await store.commitUpload(s.id, digestOf(`${onDisk}!`));
});

test('cancel removes the session; unknown and malformed ids are unknown', async () => {
  const s = await store.startUpload('a/app');
  await store.appendUpload(s.id, body('bytes'));
  await store.cancelUpload(s.id);
  assert.equal(await store.getUpload(s.id), null);
  assert.deepEqual(await uploadDirs(), []);
  await assert.rejects(store.cancelUpload(s.id), registryError('BLOB_UPLOAD_UNKNOWN'));
  for (const id of ['../blobs', 'nope', '', '..']) {
    assert.equal(await store.getUpload(id), null);
    await assert.rejects(store.appendUpload(id, body('x')), registryError('BLOB_UPLOAD_UNKNOWN'));
  }
});

test('delete and stat of blobs', async () => {
  const s = await store.startUpload('a/app');
  await store.appendUpload(s.id, body('x'));
  await store.commitUpload(s.id, digestOf('x'));
  await store.delete(digestOf('x'));
  assert.equal(await store.stat(digestOf('x')), null);
  await assert.doesNotReject(store.delete(digestOf('x')));
  assert.throws(() => store.blobPath('sha256:../../etc'), registryError('DIGEST_INVALID'));
});

test('open gives positional reads of a stored blob, and null for an absent one', async () => {
  const bytes = Buffer.from('0123456789abcdef'.repeat(1000));
  const digest = digestOf(bytes);
  const { id } = await store.startUpload('r');
  await store.appendUpload(id, body(bytes));
  await store.commitUpload(id, digest);

  const file = await store.open(digest);
  assert.ok(file);
  assert.equal(file.size, bytes.length);
  const into = Buffer.alloc(10);
  assert.equal(await file.read(into, 10, 5), 10);
  assert.equal(into.toString(), '56789abcde');
  assert.equal(await file.read(into, 10, bytes.length - 4), 4, 'a read past the end is short');
  assert.equal(into.subarray(0, 4).toString(), 'cdef');
  assert.equal(await file.read(into, 10, bytes.length), 0);
  await file.close();
  await file.close(); // idempotent

  assert.equal(await store.open(digestOf(Buffer.from('never stored'))), null);
});

test('a blob file\'s contentKey is the same for the same bytes and changes when they may have (a write, a re-push)', async () => {
  const bytes = Buffer.from('layer bytes '.repeat(100));
  const digest = digestOf(bytes);
  const push = async () => {
    const { id } = await store.startUpload('r');
    await store.appendUpload(id, body(bytes));
    await store.commitUpload(id, digest);
  };
  const keyNow = async () => {
    const file = (await store.open(digest))!;
    await file.close();
    return file.contentKey!;
  };
  await push();
  const first = await keyNow();
  assert.ok(first.startsWith(`${digest}:`), 'the key names the digest');
  assert.equal(await keyNow(), first, 'two opens of the same file share a key');
  // Bytes written in place (bit rot, an operator): the same name, the same size, not the same key.
  await new Promise((r) => setTimeout(r, 5));
  await writeFile(store.blobPath(digest), Buffer.from(bytes).fill(0x20, 0, 1), { flag: 'r+' });
  const written = await keyNow();
  assert.notEqual(written, first);
  // Quarantined, then pushed again: another file.
  await store.quarantine(digest);
  assert.equal(await store.open(digest), null, 'a quarantined blob does not open');
  await push();
  const repushed = await keyNow();
  assert.notEqual(repushed, first);
  assert.notEqual(repushed, written);
});

test('closing the last store stops the upload workers at once, with upload sessions still open', async () => {
  const { UploadWriters } = await import('../../src/storage/upload-writer.js');
  const writers = new UploadWriters(2, { idleMs: 60_000 });
  const a = new FsBlobStore(root, writers);
  const b = new FsBlobStore(join(root, 'b'), writers);
  await a.init();
  await b.init();
  // Four sessions left open by their clients, one of them mid-body (a stream that never ends).
  const open = await Promise.all([a, a, b, b].map((s) => s.startUpload('app')));
  for (const [i, u] of open.entries()) await (i < 2 ? a : b).appendUpload(u.id, body(Buffer.alloc(700 << 10, i)));
  const stalled = new PassThrough();
  const hanging = a.appendUpload(open[0]!.id, stalled, 700 << 10).then(
    () => 'settled',
    () => 'settled',
  );
  stalled.write(Buffer.alloc(600 << 10, 9));
  assert.equal(writers.workersRunning, 2);
  await a.close();
  assert.equal(writers.workersRunning, 2, 'another store still uses them');
  await b.close();
  assert.equal(writers.workersRunning, 0, 'the last store closed: no worker, no message port left');
  stalled.end();
  assert.equal(await hanging, 'settled', 'the body that was streaming into a closed store ends rather than waits on a stopped worker');
  // The sessions themselves survive on disk: a reopened store resumes them.
  const again = new FsBlobStore(root);
  await again.init();
  assert.equal((await again.getUpload(open[1]!.id))?.size, 700 << 10);
  await again.close();
});
