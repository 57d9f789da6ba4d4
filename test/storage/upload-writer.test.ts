// The upload writers: what the worker writes is exactly the bytes given, at their offsets, and its digest is their
// sha256, whatever the chunking, however many sessions run at once and wherever a request body starts; the aligned
// bulk bypasses the page cache; a session far ahead of the worker is made to wait; a broken body keeps what was
// written; a lost worker fails writes and digests without hanging anyone (and the store carries on without it); an
// idle worker stops.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { digestOf } from '../../src/oci/digest.js';
import { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import { UploadWriters, type UploadWriter } from '../../src/storage/upload-writer.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-writer-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Whether this file system opens files with O_DIRECT at all (tmpfs does not). */
function takesDirectIo(path: string): boolean {
  if (constants.O_DIRECT === undefined) return false;
  try {
    closeSync(openSync(path, constants.O_RDONLY | constants.O_DIRECT));
    return true;
  } catch {
    return false;
  }
}

/** Runs `fn` with the writers and a temporary directory, then closes and removes both. */
async function withWriters(writers: UploadWriters, fn: (writers: UploadWriters, dir: string) => Promise<void>): Promise<void> {
  try {
    await withDir((dir) => fn(writers, dir));
  } finally {
    await writers.close();
  }
}

async function give(w: UploadWriter, bytes: Buffer): Promise<void> {
  const wait = w.write(bytes);
  if (wait) await wait;
}

test('many interleaved sessions, odd chunks and request bodies that start anywhere: files and digests are exact', async () => {
  await withWriters(new UploadWriters(2), async (writers, dir) => {
    const datas = Array.from({ length: 6 }, (_, i) => randomBytes((3 << 20) + i * 777));
    const paths = datas.map((_, i) => join(dir, `s${i}`));
    for (const p of paths) await writeFile(p, '');
    const sessions = datas.map((_, i) => writers.open(`s${i}`, paths[i]!));
    const offsets = datas.map(() => 0);
    // Feed every session a chunk in turn, sizes from 1 byte to 300 KiB, honouring backpressure.
    for (let round = 0; offsets.some((o, i) => o < datas[i]!.length); round++) {
      for (const [i, d] of datas.entries()) {
        if (offsets[i]! >= d.length) continue;
        const n = Math.min(d.length - offsets[i]!, 1 + ((round * 7919 + i * 104729) % (300 * 1024)));
        await give(sessions[i]!, d.subarray(offsets[i]!, offsets[i]! + n));
        offsets[i]! += n;
        if (round === 3 || round === 9) {
          // The end of a request body, at an unaligned offset: the next one starts mid-page.
          await sessions[i]!.finish();
          assert.equal(sessions[i]!.position, offsets[i]);
          assert.equal(await sessions[i]!.hex(), sha(d.subarray(0, offsets[i]!)));
          assert.deepEqual(await readFile(paths[i]!), d.subarray(0, offsets[i]!));
        }
      }
    }
    for (const [i, d] of datas.entries()) {
      await sessions[i]!.finish();
      assert.equal(await sessions[i]!.hex(), sha(d));
      assert.deepEqual(await readFile(paths[i]!), d, `file ${i} holds exactly its bytes`);
      sessions[i]!.drop();
    }
    await writeFile(join(dir, 'empty'), '');
    const empty = writers.open('empty', join(dir, 'empty'));
    await empty.finish();
    assert.equal(await empty.hex(), sha(Buffer.alloc(0)));
  });
});

test('the aligned bulk of an upload is written around the page cache', async (t) => {
  await withWriters(new UploadWriters(1), async (writers, dir) => {
    const path = join(dir, 'data');
    await writeFile(path, '');
    const data = randomBytes((16 << 20) + 100);
    const w = writers.open('direct', path);
    for (let i = 0; i < data.length; i += 65536) await give(w, data.subarray(i, i + 65536));
    await w.finish();
    w.drop();
    // fincore (util-linux) counts the file's pages in the page cache; a file system without O_DIRECT (tmpfs)
    // caches everything, which the writer tolerates.
    let cached: number;
    try {
      cached = Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' }).trim());
    } catch (e) {
      return t.skip(`fincore unavailable: ${(e as Error).message}`);
    }
    if (!takesDirectIo(path)) return t.skip(`${dir} takes no O_DIRECT (tmpfs?): the writer falls back to the page cache`);
    assert.ok(cached <= 64 * 1024, `${cached} bytes of a 16 MiB upload stayed in the page cache`);
    assert.equal(sha(await readFile(path)), sha(data));
  });
});

test('a session far ahead of the worker is told to wait', async () => {
  await withWriters(new UploadWriters(1), async (writers, dir) => {
    await writeFile(join(dir, 'data'), '');
    const s = writers.open('fast', join(dir, 'data'));
    const big = randomBytes(16 << 20);
    let waited = 0;
    for (let i = 0; i < 16; i++) {
      const wait = s.write(big.subarray(i << 20, (i + 1) << 20));
      if (wait) {
        waited++;
        await wait;
      }
    }
    assert.ok(waited > 0, 'at some point the body had to wait for the worker');
    await s.finish();
    assert.equal(await s.hex(), sha(big));
  });
});

test('a broken body keeps what the worker was sent, and the session goes on from there', async () => {
  await withWriters(new UploadWriters(1), async (writers, dir) => {
    const path = join(dir, 'data');
    await writeFile(path, '');
    const s = writers.open('broken', path);
    const data = randomBytes((2 << 20) + 5000);
    await give(s, data);
    assert.equal(await s.abandon(), true);
    // The whole batches (2 MiB) were sent; the partial last one was never sent, so never written nor hashed.
    assert.equal(s.position, 2 << 20);
    assert.deepEqual(await readFile(path), data.subarray(0, 2 << 20));
    await give(s, data.subarray(2 << 20));
    await s.finish();
    assert.equal(await s.hex(), sha(data));
    assert.deepEqual(await readFile(path), data);
  });
});

test('a worker lost mid-body fails the request, and the store takes the session back to where the request began', async () => {
  await withDir(async (dir) => {
    const writers = new UploadWriters(1);
    try {
      const store = new FsBlobStore(dir, writers);
      await store.init();
      const a = randomBytes(3 << 20);
      const { id } = await store.startUpload('r');
      await store.appendUpload(id, Readable.from([a]));
      // The worker lost in the middle of a body: which of the batches it had reached the file is unknown.
      const body = new Readable({ read() {} });
      const appending = store.appendUpload(id, body);
      body.push(randomBytes(2 << 20));
      await new Promise((r) => setTimeout(r, 50));
      await writers.close();
      body.push(randomBytes(1 << 20));
      body.push(null);
      await assert.rejects(appending);
      assert.equal((await store.getUpload(id))?.size, a.length, 'the failed request left nothing behind');
      assert.deepEqual(await readFile(join(dir, 'uploads', id, 'data')), a);
      // The session carries on without a worker, from the file.
      const b = randomBytes(1000);
      await store.appendUpload(id, Readable.from([b]), a.length);
      const whole = Buffer.concat([a, b]);
      assert.deepEqual(await store.commitUpload(id, digestOf(whole)), { size: whole.length });
      assert.ok(await store.verify(digestOf(whole)));
    } finally {
      await writers.close();
    }
  });
});

test('a lost worker fails writes and digests and never blocks; the store then hashes the file and the upload still commits', async () => {
  await withDir(async (dir) => {
    const writers = new UploadWriters(1);
    await writeFile(join(dir, 'doomed'), '');
    const s = writers.open('doomed', join(dir, 'doomed'));
    s.write(randomBytes(5 << 20));
    await writers.close();
    await assert.rejects(s.hex(), /closed|lost|exited/);
    await assert.rejects(async () => s.write(randomBytes(8 << 20)), /closed|lost|exited/, 'writes to a lost session fail at once');
    await assert.rejects(s.finish(), /closed|lost|exited/);
    assert.equal(s.alive, false);

    const writers2 = new UploadWriters(1);
    try {
      const store = new FsBlobStore(dir, writers2);
      await store.init();
      const a = randomBytes(3 << 20);
      const b = randomBytes(2 << 20);
      const { id } = await store.startUpload('r');
      await store.appendUpload(id, Readable.from([a]));
      await writers2.close(); // the worker dies between two chunks
      await store.appendUpload(id, Readable.from([b]));
      const whole = Buffer.concat([a, b]);
      assert.deepEqual(await store.commitUpload(id, digestOf(whole)), { size: whole.length });
      assert.ok(await store.verify(digestOf(whole)));

      // and a new session after the loss gets a new worker
      const { id: id2 } = await store.startUpload('r');
      await store.appendUpload(id2, Readable.from([b]));
      await assert.rejects(store.commitUpload(id2, digestOf(a)), /DIGEST_INVALID|digest/);
    } finally {
      await writers2.close();
    }
  });
});

test('a worker without uploads stops after a while, and the next upload starts another', async () => {
  await withWriters(new UploadWriters(1, { idleMs: 200 }), async (writers, dir) => {
    const run = async (name: string) => {
      const path = join(dir, name);
      await writeFile(path, '');
      const data = randomBytes((1 << 20) + 333);
      const w = writers.open(name, path);
      await give(w, data);
      await w.finish();
      assert.equal(await w.hex(), sha(data));
      assert.deepEqual(await readFile(path), data);
      w.drop();
    };
    await run('first');
    assert.equal(writers.workersRunning, 1);
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(writers.workersRunning, 0, 'the idle worker was stopped');
    await run('second');
    assert.equal(writers.workersRunning, 1);
  });
});

test('more sessions than shared slots: the rest batch in plain buffers, through the page cache, as exactly', async () => {
  await withWriters(new UploadWriters(1), async (writers, dir) => {
    const n = 40;
    const datas = Array.from({ length: n }, (_, i) => randomBytes((700 << 10) + i * 4099));
    const sessions = await Promise.all(
      datas.map(async (_, i) => {
        await writeFile(join(dir, `c${i}`), '');
        return writers.open(`c${i}`, join(dir, `c${i}`));
      }),
    );
    // Every session holds a partly filled batch before any finishes: 40 batches at once, more than the slots.
    for (const [i, d] of datas.entries()) await give(sessions[i]!, d.subarray(0, 100_000));
    for (const [i, d] of datas.entries()) await give(sessions[i]!, d.subarray(100_000));
    for (const [i, d] of datas.entries()) {
      await sessions[i]!.finish();
      assert.equal(await sessions[i]!.hex(), sha(d));
      assert.deepEqual(await readFile(join(dir, `c${i}`)), d);
      sessions[i]!.drop();
    }
  });
});
