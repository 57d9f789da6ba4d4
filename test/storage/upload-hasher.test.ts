// The upload hasher: digests computed by the worker equal sha256 of the bytes, whatever the chunking and however many
// sessions run at once; a session far ahead of the worker is made to wait; a lost worker makes digests fail
// (so the store hashes the file instead) without hanging anyone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { digestOf } from '../../src/oci/digest.js';
import { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import { UploadHasher } from '../../src/storage/upload-hasher.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('running digests over odd chunks and many interleaved sessions equal sha256 of their bytes', async () => {
  const hasher = new UploadHasher(2);
  try {
    const datas = Array.from({ length: 6 }, (_, i) => randomBytes((3 << 20) + i * 777));
    const sessions = datas.map((_, i) => hasher.open(`s${i}`));
    const offsets = datas.map(() => 0);
    // Feed every session a chunk in turn, sizes from 1 byte to 300 KiB, honouring backpressure.
    for (let round = 0; offsets.some((o, i) => o < datas[i]!.length); round++) {
      for (const [i, d] of datas.entries()) {
        if (offsets[i]! >= d.length) continue;
        const n = Math.min(d.length - offsets[i]!, 1 + ((round * 7919 + i * 104729) % (300 * 1024)));
        await sessions[i]!.update(d.subarray(offsets[i]!, offsets[i]! + n));
        offsets[i]! += n;
        if (round === 3) {
          // a digest in the middle: the session goes on afterwards
          sessions[i]!.flush();
          assert.equal(await sessions[i]!.hex(), sha(d.subarray(0, offsets[i]!)));
        }
      }
    }
    for (const [i, d] of datas.entries()) assert.equal(await sessions[i]!.hex(), sha(d));
    const empty = hasher.open('empty');
    assert.equal(await empty.hex(), sha(Buffer.alloc(0)));
    for (const s of sessions) s.drop();
  } finally {
    await hasher.close();
  }
});

test('a session far ahead of the worker is told to wait', async () => {
  const hasher = new UploadHasher(1);
  try {
    const s = hasher.open('fast');
    const big = randomBytes(16 << 20);
    let waited = 0;
    for (let i = 0; i < 16; i++) {
      const wait = s.update(big.subarray(i << 20, (i + 1) << 20));
      if (wait) {
        waited++;
        await wait;
      }
    }
    assert.ok(waited > 0, 'at some point the body had to wait for the worker');
    assert.equal(await s.hex(), sha(big));
  } finally {
    await hasher.close();
  }
});

test('a lost worker fails digests and never blocks; the store then hashes the file and the upload still commits', async () => {
  const hasher = new UploadHasher(1);
  const s = hasher.open('doomed');
  s.update(randomBytes(5 << 20));
  await hasher.close();
  await assert.rejects(s.hex(), /closed|lost/);
  assert.equal(s.update(randomBytes(8 << 20)), undefined, 'updates to a lost session never wait');

  const root = await mkdtemp(join(tmpdir(), 'wharf-hasher-'));
  const hasher2 = new UploadHasher(1);
  try {
    const store = new FsBlobStore(root, hasher2);
    await store.init();
    const a = randomBytes(3 << 20);
    const b = randomBytes(2 << 20);
    const { id } = await store.startUpload('r');
    await store.appendUpload(id, Readable.from([a]));
    await hasher2.close(); // the worker dies between two chunks
    await store.appendUpload(id, Readable.from([b]));
    const whole = Buffer.concat([a, b]);
    assert.deepEqual(await store.commitUpload(id, digestOf(whole)), { size: whole.length });
    assert.ok(await store.verify(digestOf(whole)));

    // and a new session after the loss gets a new worker
    const { id: id2 } = await store.startUpload('r');
    await store.appendUpload(id2, Readable.from([b]));
    await assert.rejects(store.commitUpload(id2, digestOf(a)), /DIGEST_INVALID|digest/);
  } finally {
    await hasher2.close();
    await rm(root, { recursive: true, force: true });
  }
});
