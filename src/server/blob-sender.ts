// Sends stored blobs on HTTP responses through a small, bounded pool of reused buffers.
//
// Why not `createReadStream(...).pipe(res)`: a file stream allocates a fresh buffer for every chunk, and at
// 1–2 GiB/s that is a thousand or more 1 MiB allocations a second — page faults for every new buffer and
// external-memory pressure that makes V8 run full garbage collections over the whole heap, so a busy
// registry spent more CPU on that than on the bytes. Here a response reads into a buffer from the pool,
// writes it, and the buffer goes back once the socket has taken it. The pool is bounded, so the memory a
// pull storm holds is the pool's size, whatever the number of connections: a response waits for a buffer
// rather than allocating one.
//
// Responses for the same bytes share reads: when many clients pull the same layers at once (a pull storm, a
// deploy to many hosts), a chunk read into a pooled buffer for one response is written to every other response
// that reaches the same position of the same file while the buffer still holds it, so the page cache is copied
// once per chunk rather than once per client. Only files the store names by content (BlobFile.contentKey) share;
// whether a file may be served at all is decided per request, before it gets here (the blob is linked, its file
// opens at its recorded size), so sharing never serves a blob that request could not have read itself.
import type { ServerResponse } from 'node:http';
import type { BlobFile } from '../storage/blob-store.js';
import type { TurnBudget } from './turn-budget.js';

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

/**
 * What the pool knows of a buffer that holds a shared read: which bytes, how many responses hold it, and the
 * read filling it.
 */
interface SharedChunk {
  /** contentKey and position: the bytes this buffer holds */
  key: string;
  /** the length asked of the read that fills it (a later ask for more is not a hit) */
  asked: number;
  /** the bytes read; resolves once the buffer is filled */
  filled: Promise<number>;
  /** responses holding it (reading into it, or writing it to their socket) */
  refs: number;
  /** written off while others still held it: dropped, never reused, once the last one lets go */
  retired: boolean;
}

export class BufferPool {
  /** free buffers, the longest-free first; a shared chunk keeps its bytes (and its label) while it waits here */
  private readonly free: Buffer[] = [];
  private readonly waiting: ((buf: Buffer) => void)[] = [];
  /** buffers handed out and not yet given back or written off */
  private out = 0;
  private lastAcquired = 0;
  private trimTimer?: NodeJS.Timeout;
  /** shared reads by contentKey and position, and the same by buffer */
  private readonly chunks = new Map<string, Buffer>();
  private readonly labels = new Map<Buffer, SharedChunk>();
  /** reads answered from a buffer another response had read or was reading */
  sharedReads = 0;

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
      const reused = this.free.shift();
      if (reused) {
        this.unlabel(reused);
        return reused;
      }
      // allocUnsafeSlow: a buffer of its own, never a slice of Node's shared 8 KiB pool.
      return Buffer.allocUnsafeSlow(this.options.chunkSize);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /**
   * A buffer holding `length` bytes of the file named `contentKey` from `position` (fewer at its end): the one another
   * response read or is reading, when there is one, otherwise a buffer `fill` reads them into. In a pull storm many
   * clients fetch the same layers at once, and each read of a chunk then serves all of them: one copy from the page
   * cache instead of one per client. The pool's bound is the same; a shared buffer just counts once.
   * Give it back with release (or writeOff), once per call.
   */
  async acquireChunk(contentKey: string, position: number, length: number, fill: (buf: Buffer) => Promise<number>): Promise<{ buf: Buffer; n: number }> {
    const key = `${position}:${contentKey}`;
    const joined = this.join(key, length);
    if (joined) return joined;
    // Taken without a tick when one is free, so a response asking for the same bytes right after this one joins it.
    const got = this.acquire();
    let buf = got instanceof Promise ? await got : got;
    if (got instanceof Promise) {
      // While this one waited for a buffer, another response may have read (or begun reading) the same bytes.
      const late = this.join(key, length, buf);
      if (late) return late;
    }
    // A read of the same bytes too short for this one's (a range): this one reads on its own.
    const shareable = !this.chunks.has(key);
    const filled = fill(buf);
    if (shareable) {
      this.chunks.set(key, buf);
      this.labels.set(buf, { key, asked: length, filled, refs: 1, retired: false });
    }
    try {
      const n = await filled;
      // The end of the file (or a file shorter than its size): nothing there to share.
      if (n === 0) this.unshare(buf);
      return { buf, n };
    } catch (e) {
      // A failed read is shared with nobody new; those who joined it see the same error and give the buffer back.
      this.unshare(buf);
      this.release(buf);
      throw e;
    }
  }

  /** The buffer holding (or being filled with) `key` for at least `length` bytes, taken; `spare` goes back if so. */
  private join(key: string, length: number, spare?: Buffer): Promise<{ buf: Buffer; n: number }> | undefined {
    const held = this.chunks.get(key);
    const shared = held && this.labels.get(held);
    if (!held || !shared || shared.asked < length) return undefined;
    if (shared.refs++ === 0) {
      // A free buffer that still holds the bytes: it is out again.
      this.free.splice(this.free.indexOf(held), 1);
      this.out++;
    }
    if (spare) this.release(spare);
    this.lastAcquired = Date.now();
    this.sharedReads++;
    return shared.filled.then(
      (n) => ({ buf: held, n: Math.min(n, length) }),
      (e: unknown) => {
        this.release(held);
        throw e;
      },
    );
  }

  release(buf: Buffer): void {
    const shared = this.labels.get(buf);
    if (shared) {
      if (--shared.refs > 0) return;
      if (shared.retired) return this.dropSlot(buf);
      // Free, but still holding its bytes for the next response that asks for them (until it is taken for others).
      if (this.chunks.get(shared.key) !== buf) this.labels.delete(buf);
    }
    const next = this.waiting.shift();
    if (next) {
      this.unlabel(buf);
      return next(buf);
    }
    this.out--;
    this.free.push(buf);
  }

  /**
   * For a buffer that may still be referenced (a write on a connection that went away and never called
   * back): it is not reused, but its place in the bound is, so a lost callback can never starve the pool.
   * A buffer other responses still write keeps its place until the last of them gives it back.
   */
  writeOff(buf: Buffer): void {
    const shared = this.labels.get(buf);
    if (shared) {
      this.unshare(buf);
      shared.retired = true;
      if (--shared.refs > 0) return;
    }
    this.dropSlot(buf);
  }

  private dropSlot(buf: Buffer): void {
    this.labels.delete(buf);
    if (this.waiting.length > 0) this.waiting.shift()!(Buffer.allocUnsafeSlow(this.options.chunkSize));
    else this.out--;
  }

  /** No later response joins this buffer's read; those holding it keep it until they give it back. */
  private unshare(buf: Buffer): void {
    const shared = this.labels.get(buf);
    if (shared && this.chunks.get(shared.key) === buf) this.chunks.delete(shared.key);
  }

  /** Forgets what a free buffer holds, before it is read into again. */
  private unlabel(buf: Buffer): void {
    this.unshare(buf);
    this.labels.delete(buf);
  }

  /** Drops the free buffers (V8 frees them at its next collection) once nothing has been taken for a while. */
  trim(now = Date.now()): void {
    if (now - this.lastAcquired < IDLE_TRIM_MS || this.out > 0) return;
    for (const buf of this.free) this.unlabel(buf);
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
 * With `turns`, each chunk's write waits for its place in the event loop's turn (see TurnBudget).
 */
export async function sendBlobFile(res: ServerResponse, file: BlobFile, start: number, end: number, pool: BufferPool, turns?: TurnBudget): Promise<void> {
  let gone = false;
  let wake: (() => void) | undefined;
  const inFlight = new Set<Buffer>();
  const onClose = () => {
    gone = true;
    // The socket is closed: what it still held will never be sent, but a late callback may yet come.
    for (const buf of inFlight) pool.writeOff(buf);
    inFlight.clear();
    wake?.();
  };
  res.once('close', onClose);
  const key = file.contentKey;
  try {
    let position = start;
    while (position <= end && !gone) {
      const length = Math.min(pool.options.chunkSize, end - position + 1);
      let buf: Buffer;
      let n: number;
      if (key !== undefined) {
        // The read is awaited here even when the client has gone: the file stays open until it is done.
        ({ buf, n } = await pool.acquireChunk(key, position, length, (into) => file.read(into, length, position)));
      } else {
        buf = await pool.acquire();
        if (gone) {
          pool.release(buf);
          break;
        }
        try {
          n = await file.read(buf, length, position);
        } catch (e) {
          pool.release(buf);
          throw e;
        }
      }
      if (n === 0) {
        pool.release(buf);
        throw new Error(`blob file ended at byte ${position} of ${end + 1}`);
      }
      const turn = turns?.take(n);
      if (turn) await turn;
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
