// The blob sender: bytes served from pooled buffers are exact (whole, ranges, many at once with fewer buffers
// than responses), the pool's bound holds, and an aborted or failing response gives every buffer back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { BufferPool, sendBlobFile } from '../../src/server/blob-sender.js';
import { TurnBudget } from '../../src/server/turn-budget.js';
import type { BlobFile } from '../../src/storage/blob-store.js';

/** A BlobFile over bytes in memory whose reads complete asynchronously, like a file's; counts closes. */
class MemoryFile implements BlobFile {
  closed = 0;
  reads = 0;
  constructor(
    private readonly bytes: Buffer,
    /** pretend the file was truncated after this many bytes */
    private readonly truncatedAt = bytes.length,
    /** present: reads of files with the same key may be shared */
    readonly contentKey?: string,
  ) {}
  get size() {
    return this.bytes.length;
  }
  async read(into: Buffer, length: number, position: number): Promise<number> {
    this.reads++;
    await new Promise((r) => setImmediate(r));
    return this.bytes.copy(into, 0, position, Math.min(position + length, this.truncatedAt));
  }
  async close() {
    this.closed++;
  }
}

async function serve(handler: (range: { start: number; end: number }, res: import('node:http').ServerResponse) => Promise<void>): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    // /START-END, or / for the whole blob (end NaN)
    const [start = '0', end = ''] = req.url!.slice(1).split('-');
    void handler({ start: Number(start), end: end === '' ? NaN : Number(end) }, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

function get(port: number, path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve(Buffer.concat(parts)));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

test('the pool hands out at most maxBuffers, queues the rest, and reuses what comes back', async () => {
  const pool = new BufferPool({ chunkSize: 16, maxBuffers: 2 });
  const a = (await pool.acquire()) as Buffer;
  const b = (await pool.acquire()) as Buffer;
  assert.equal(a.length, 16);
  let third: Buffer | undefined;
  void Promise.resolve(pool.acquire()).then((buf) => (third = buf));
  await sleep(5);
  assert.equal(third, undefined, 'a third buffer waits');
  assert.deepEqual(pool.stats(), { out: 2, free: 0, waiting: 1 });
  pool.release(a);
  await sleep(1);
  assert.equal(third, a, 'the released buffer goes to the waiter');
  pool.writeOff(b); // b's place is freed, b itself is never reused
  pool.release(third!);
  assert.deepEqual(pool.stats(), { out: 0, free: 1, waiting: 0 });
  assert.equal(await pool.acquire(), a);
  pool.release(a);
  pool.trim(Date.now() + 1_000);
  assert.equal(pool.stats().free, 1, 'a pool in use keeps its buffers');
  pool.trim(Date.now() + 60_000);
  assert.deepEqual(pool.stats(), { out: 0, free: 0, waiting: 0 }, 'an idle pool lets them go');
});

test('sends whole blobs and ranges byte-exact, 12 at once through a pool of 3 small buffers and a budget of 2 chunks a turn', async () => {
  const bytes = randomBytes(300_001);
  const pool = new BufferPool({ chunkSize: 4096, maxBuffers: 3 });
  const turns = new TurnBudget(2 * 4096);
  const files: MemoryFile[] = [];
  const { server, port } = await serve(async ({ start, end }, res) => {
    const file = new MemoryFile(bytes);
    files.push(file);
    const last = Number.isNaN(end) ? bytes.length - 1 : end;
    res.writeHead(200, { 'Content-Length': last - start + 1 });
    await sendBlobFile(res, file, start, last, pool, turns);
  });
  try {
    const asks = [...Array.from({ length: 8 }, () => '/'), '/1-1', '/4095-4096', '/100000-250123', `/299999-300000`];
    const bodies = await Promise.all(asks.map((p) => get(port, p)));
    for (const [i, p] of asks.entries()) {
      const [s, e] = p === '/' ? [0, bytes.length - 1] : p.slice(1).split('-').map(Number);
      assert.ok(bodies[i]!.equals(bytes.subarray(s, e! + 1)), `${p}: bytes differ`);
    }
    assert.equal(files.length, asks.length);
    assert.ok(files.every((f) => f.closed === 1), 'every file is closed once');
    assert.deepEqual(pool.stats(), { out: 0, free: 3, waiting: 0 });
    assert.ok(turns.deferred > 0, 'some writes waited for a later turn');
  } finally {
    server.close();
  }
});

test('a client that goes away mid-body, and a file that ends early, give every buffer back', async () => {
  const bytes = randomBytes(8 << 20);
  const pool = new BufferPool({ chunkSize: 64 * 1024, maxBuffers: 4 });
  // One chunk a turn: the client may go while a filled buffer waits for its turn.
  const turns = new TurnBudget(1);
  const done: Promise<void>[] = [];
  const files: MemoryFile[] = [];
  const { server, port } = await serve(async ({ start }, res) => {
    // /1-: the file pretends to have been truncated at 1 MiB
    const file = new MemoryFile(bytes, start === 1 ? 1 << 20 : bytes.length);
    files.push(file);
    res.writeHead(200, { 'Content-Length': bytes.length });
    const p = sendBlobFile(res, file, 0, bytes.length - 1, pool, turns);
    done.push(p);
    await p;
  });
  try {
    // The client reads a little, then destroys its socket.
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/' }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
      req.end();
      setTimeout(() => reject(new Error('no body')), 5000);
    });
    // The server's response to a truncated file is cut short: the client sees an aborted body, never a short "complete" one.
    await assert.rejects(get(port, '/1-'), /aborted|socket hang up|ECONNRESET/);
    while (done.length < 2) await sleep(5);
    await Promise.all(done);
    assert.ok(files.every((f) => f.closed === 1));
    assert.equal(pool.stats().out, 0, 'no buffer is still out');
    assert.equal(pool.stats().waiting, 0);
  } finally {
    server.close();
  }
});

test('responses for the same bytes share reads; other bytes at the same positions are never mixed in', async () => {
  const one = randomBytes(200_000);
  const other = randomBytes(200_000);
  const pool = new BufferPool({ chunkSize: 4096, maxBuffers: 8 });
  const files: MemoryFile[] = [];
  const { server, port } = await serve(async ({ start, end }, res) => {
    // /0-: the first blob, /1-: the second; /2-: the first again under no key (a file being verified: reads its own)
    const file = start === 2 ? new MemoryFile(one) : new MemoryFile(start === 0 ? one : other, undefined, start === 0 ? 'one' : 'other');
    files.push(file);
    res.writeHead(200, { 'Content-Length': file.size });
    await sendBlobFile(res, file, 0, file.size - 1, pool);
    void end;
  });
  try {
    const asks = ['/0-', '/1-', '/2-'].flatMap((p) => Array.from({ length: 6 }, () => p));
    const bodies = await Promise.all(asks.map((p) => get(port, p)));
    for (const [i, p] of asks.entries()) assert.ok(bodies[i]!.equals(p === '/1-' ? other : one), `${p}: bytes differ`);
    const reads = (key: string | undefined) => files.filter((f) => f.contentKey === key).reduce((sum, f) => sum + f.reads, 0);
    const chunks = Math.ceil(one.length / 4096);
    assert.equal(reads(undefined), 6 * chunks, 'a file without a key reads every chunk itself');
    assert.ok(reads('one') < 6 * chunks && reads('other') < 6 * chunks, `keyed files shared reads (${reads('one')}, ${reads('other')} of ${6 * chunks} each)`);
    assert.equal(pool.sharedReads, 12 * chunks - reads('one') - reads('other'));
    assert.ok(files.every((f) => f.closed === 1));
    assert.deepEqual({ ...pool.stats(), free: 0 }, { out: 0, free: 0, waiting: 0 });
    assert.ok(pool.stats().free <= 8);
  } finally {
    server.close();
  }
});

test('a shared buffer written off by one response is never reused, and a failed shared read fails everyone on it', async () => {
  const pool = new BufferPool({ chunkSize: 16, maxBuffers: 2 });
  let fills = 0;
  const fill = async (buf: Buffer) => {
    fills++;
    await sleep(1);
    return buf.write('0123456789abcdef');
  };
  const [x, y] = await Promise.all([pool.acquireChunk('k', 0, 16, fill), pool.acquireChunk('k', 0, 16, fill)]);
  assert.equal(x.buf, y.buf, 'the second response joined the first read');
  assert.equal(fills, 1);
  assert.equal(pool.stats().out, 1, 'a shared buffer counts once');
  pool.writeOff(x.buf); // the first response's connection went away with the write pending
  const z = await pool.acquireChunk('k', 0, 16, fill);
  assert.notEqual(z.buf, x.buf, 'a written-off buffer is not shared any more');
  pool.release(y.buf);
  pool.release(z.buf);
  assert.deepEqual(pool.stats(), { out: 0, free: 1, waiting: 0 }, 'the written-off buffer left the pool once its last holder let go');
  assert.equal((await pool.acquireChunk('k', 0, 16, fill)).buf, z.buf, 'a free buffer still holding the bytes is a hit');
  pool.release(z.buf);

  const failing = async () => {
    await sleep(1);
    throw new Error('EIO');
  };
  const results = await Promise.allSettled([pool.acquireChunk('bad', 0, 16, failing), pool.acquireChunk('bad', 0, 16, failing)]);
  assert.ok(results.every((r) => r.status === 'rejected' && /EIO/.test(String(r.reason))));
  assert.deepEqual({ ...pool.stats(), free: 0 }, { out: 0, free: 0, waiting: 0 });
  const fresh = await pool.acquireChunk('bad', 0, 16, fill);
  assert.equal(fresh.n, 16, 'the failed read was not remembered');
  pool.release(fresh.buf);
});
