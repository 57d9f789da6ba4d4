// Freeing request body chunks early (release-buffer.ts): it frees exactly the buffers it may, and the assumption it
// rests on holds for this Node: every chunk of an HTTP request body is a whole ArrayBuffer of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { canReleaseBuffers, releaseBuffer } from '../../src/storage/release-buffer.js';

test('releasing works on this Node (20 borrows transfer() from a fresh context, 22 and later have it)', () => {
  assert.equal(canReleaseBuffers, true);
});

test('a whole buffer is freed; a slice, a pooled buffer and shared memory are left alone', () => {
  const whole = Buffer.allocUnsafeSlow(1 << 16).fill(7);
  releaseBuffer(whole);
  assert.equal(whole.length, 0, 'detached: reads as empty');
  assert.equal(whole.buffer.byteLength, 0);

  const big = Buffer.allocUnsafeSlow(1 << 16).fill(9);
  const slice = big.subarray(16);
  releaseBuffer(slice);
  assert.equal(slice.length, (1 << 16) - 16);
  assert.equal(big[0], 9, 'the rest of the buffer is intact');

  const pooled = Buffer.from('abc');
  const neighbour = Buffer.from('def');
  releaseBuffer(pooled);
  assert.equal(pooled.toString(), 'abc');
  assert.equal(neighbour.toString(), 'def');

  const shared = new Uint8Array(new SharedArrayBuffer(64)).fill(3);
  releaseBuffer(shared);
  assert.equal(shared.length, 64);
});

test('each chunk of an HTTP request body is a whole ArrayBuffer nobody else holds', async () => {
  const seen: { offset: number; length: number; bufferLength: number }[] = [];
  const buffers = new Set<ArrayBufferLike>();
  let received = 0;
  const server = createServer((req, res) => {
    req.on('data', (chunk: Buffer) => {
      seen.push({ offset: chunk.byteOffset, length: chunk.length, bufferLength: chunk.buffer.byteLength });
      buffers.add(chunk.buffer);
      received += chunk.length;
      releaseBuffer(chunk);
    });
    req.on('end', () => res.end(String(received)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const body = Buffer.alloc(4 << 20, 1);
    const answer = await new Promise<string>((resolve, reject) => {
      const req = request({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', method: 'PUT', headers: { 'content-length': body.length } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      // Written in pieces, so the server reads the body over many socket reads.
      for (let i = 0; i < body.length; i += 100_000) req.write(body.subarray(i, i + 100_000));
      req.end();
    });
    assert.equal(answer, String(body.length), 'releasing each chunk lost no byte of the body');
    assert.ok(seen.length > 4);
    for (const s of seen) assert.deepEqual(s, { offset: 0, length: s.length, bufferLength: s.length });
    assert.equal(buffers.size, seen.length, 'no two chunks share memory');
  } finally {
    await new Promise((r) => server.close(r));
  }
});
