// Sends stored blobs on HTTP responses through a small, bounded pool of reused buffers.
//
// Why not `createReadStream(...).pipe(res)`: a file stream allocates a fresh buffer for every chunk, and at
// 1–2 GiB/s that is a thousand or more 1 MiB allocations a second — page faults for every new buffer and
// external-memory pressure that makes V8 run full garbage collections over the whole heap, so a busy
// registry spent more CPU on that than on the bytes. Here a response reads into a buffer from the pool,
// writes it, and the buffer goes back once the socket has taken it. The pool is bounded, so the memory a
// pull storm holds is the pool's size, whatever the number of connections: a response waits for a buffer
// rather than allocating one.
import type { ServerResponse } from 'node:http';
import type { BlobFile } from '../storage/blob-store.js';

export interface BufferPoolOptions {
  /** bytes per buffer: one read and one socket write */
  chunkSize: number;
  /** buffers the pool may hand out at once; its memory bound is chunkSize × maxBuffers */
  maxBuffers: number;
}

/** Up to 32 MiB of pooled buffers: a 5-layer pull storm of 96 connections stays well under 150 MiB RSS. */
export const DEFAULT_POOL: BufferPoolOptions = { chunkSize: 512 * 1024, maxBuffers: 64 };

/** An idle pool lets its buffers go after this long, so a past pull storm does not stay resident. */
const IDLE_TRIM_MS = 10_000;

export class BufferPool {
  private readonly free: Buffer[] = [];
  private readonly waiting: ((buf: Buffer) => void)[] = [];
  /** buffers handed out and not yet given back or written off */
  private out = 0;
  private lastAcquired = 0;
  private trimTimer?: NodeJS.Timeout;

  constructor(readonly options: BufferPoolOptions = DEFAULT_POOL) {}

  acquire(): Buffer | Promise<Buffer> {
    this.lastAcquired = Date.now();
    if (!this.trimTimer) {
      // Checked four times per idle period, so an idle pool goes within 12.5 s rather than up to 20.
      this.trimTimer = setInterval(() => this.trim(), IDLE_TRIM_MS / 4);
      this.trimTimer.unref();
    }
    if (this.out < this.options.maxBuffers) {
      this.out++;
      // allocUnsafeSlow: a buffer of its own, never a slice of Node's shared 8 KiB pool.
      return this.free.pop() ?? Buffer.allocUnsafeSlow(this.options.chunkSize);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(buf: Buffer): void {
    const next = this.waiting.shift();
    if (next) return next(buf);
    this.out--;
    this.free.push(buf);
  }

  /**
   * For a buffer that may still be referenced (a write on a connection that went away and never called
   * back): it is not reused, but its place in the bound is, so a lost callback can never starve the pool.
   */
  writeOff(): void {
    if (this.waiting.length > 0) this.waiting.shift()!(Buffer.allocUnsafeSlow(this.options.chunkSize));
    else this.out--;
  }

  /** Drops the free buffers (V8 frees them at its next collection) once nothing has been taken for a while. */
  trim(now = Date.now()): void {
    if (now - this.lastAcquired < IDLE_TRIM_MS || this.out > 0) return;
    this.free.length = 0;
    clearInterval(this.trimTimer);
    this.trimTimer = undefined;
  }

  stats(): { out: number; free: number; waiting: number } {
    return { out: this.out, free: this.free.length, waiting: this.waiting.length };
  }
}

/** Writes in flight per response: one buffer on the socket while the next one is read. */
const WRITES_IN_FLIGHT = 2;

/**
 * Sends bytes [start, end] of `file` as the body of `res`, whose headers have been set (Content-Length
 * included). Resolves when the body is written or the connection is gone; closes the file either way.
 */
export async function sendBlobFile(res: ServerResponse, file: BlobFile, start: number, end: number, pool: BufferPool): Promise<void> {
  let gone = false;
  let wake: (() => void) | undefined;
  const inFlight = new Set<Buffer>();
  const onClose = () => {
    gone = true;
    // The socket is closed: what it still held will never be sent, but a late callback may yet come.
    for (const buf of inFlight) pool.writeOff();
    inFlight.clear();
    wake?.();
  };
  res.once('close', onClose);
  try {
    let position = start;
    while (position <= end && !gone) {
      const buf = await pool.acquire();
      if (gone) {
        pool.release(buf);
        break;
      }
      let n: number;
      try {
        n = await file.read(buf, Math.min(buf.length, end - position + 1), position);
      } catch (e) {
        pool.release(buf);
        throw e;
      }
      if (n === 0) {
        pool.release(buf);
        throw new Error(`blob file ended at byte ${position} of ${end + 1}`);
      }
      if (gone) {
        pool.release(buf);
        break;
      }
      position += n;
      inFlight.add(buf);
      res.write(n === buf.length ? buf : buf.subarray(0, n), () => {
        // Called once the socket has taken the bytes (or failed to); onClose may have written it off already.
        if (inFlight.delete(buf)) pool.release(buf);
        wake?.();
      });
      while (inFlight.size >= WRITES_IN_FLIGHT && !gone) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
    // The end callback waits for 'finish', which never comes if the connection goes first: onClose wakes us.
    if (!gone) await new Promise<void>((resolve) => res.end((wake = resolve)));
  } catch (e) {
    res.destroy(e as Error);
  } finally {
    res.off('close', onClose);
    if (!gone && inFlight.size > 0) onClose();
    await file.close().catch(() => undefined);
  }
}
