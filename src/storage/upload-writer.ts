// Upload bodies hashed and written off the main thread.
//
// A push is bound by three costs per GiB: sha256 (about 0.6 CPU-s here, OpenSSL with SHA extensions), copying the
// bytes into the page cache (0.2–0.3 CPU-s, and far more when the kernel has to find fresh pages: on this kind of
// virtual machine a page the guest has not touched lately costs a fault in the host, and writing 1 GiB into a
// growing page cache took 2.3 CPU-s instead of 0.2), and the event loop's own receiving. So the main thread only
// receives: it copies each request body into 1 MiB batches that it hands (transfers) to a worker thread, and the
// worker hashes a batch and writes it to the upload's file, its bulk with O_DIRECT, bypassing the page cache
// (upload-worker.ts). A session has at most a few batches in flight: when the worker or the disk falls behind,
// the request body waits (backpressure), memory does not grow.
//
// A session resumed after a restart, or whose worker was lost, is hashed and written on the main thread instead
// (LocalDigest and a file stream, in the store): its running state has to be rebuilt from the file anyway, and
// that is rare.
import { createHash, type Hash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest } from './upload-protocol.js';

/** A sha256 on the main thread, for sessions whose state was rebuilt from their file. */
export class LocalDigest {
  constructor(private readonly hash: Hash = createHash('sha256')) {}
  update(chunk: Buffer): void {
    this.hash.update(chunk);
  }
  hex(): string {
    return this.hash.copy().digest('hex');
  }
}

/** An upload session whose bytes a worker thread hashes and writes to its file. */
export interface UploadWriter {
  /** false once its worker was lost: the running digest died with it, the store rebuilds it from the file */
  readonly alive: boolean;
  /** The file offset of the next byte given; the store sets it at the start of each request body. */
  position: number;
  /** Takes bytes; a promise means "wait for it before giving more". Rejects once a write failed or the worker was lost. */
  write(chunk: Buffer): Promise<void> | undefined;
  /** Sends what is batched and waits: resolves once every byte given is hashed and written (not yet fsynced). */
  finish(): Promise<void>;
  /**
   * After a broken request body: forgets the bytes not yet sent, waits for those sent and moves `position` back
   * to the end of them. Resolves false if any of them failed to be written (the file can no longer be trusted).
   */
  abandon(): Promise<boolean>;
  /** The hex digest of every byte written so far; the session can go on. Rejects if the worker was lost. */
  hex(): Promise<string>;
  /** Ends the session; its files are closed once its writes are done. */
  drop(): void;
}

const BATCH_BYTES = 1 << 20;
/** Batches a session may have at the worker before its body waits. */
const BATCHES_IN_FLIGHT = 4;
/** Batch buffers kept for reuse, enough for two sessions at full speed (more are left to the garbage collector: retained, they would count in every later RSS). */
const FREE_BUFFERS = 10;

interface Batch {
  buf: ArrayBuffer;
  filled: number;
  /** the file offset of its first byte */
  position: number;
}

class WorkerWriter implements UploadWriter {
  position = 0;
  private batch?: Batch;
  private inFlight = 0;
  private wake?: () => void;
  private idle?: () => void;
  private error?: Error;
  private dead = false;

  constructor(
    private readonly lane: Lane,
    readonly id: string,
  ) {}

  get alive(): boolean {
    return !this.dead;
  }

  write(chunk: Buffer): Promise<void> | undefined {
    if (this.error) return Promise.reject(this.error);
    let offset = 0;
    while (offset < chunk.length) {
      const batch = (this.batch ??= this.lane.pool.takeBatch(this.position));
      const n = Math.min(chunk.length - offset, BATCH_BYTES - batch.filled);
      new Uint8Array(batch.buf, batch.filled, n).set(chunk.subarray(offset, offset + n));
      batch.filled += n;
      offset += n;
      this.position += n;
      if (batch.filled === BATCH_BYTES) this.send();
    }
    if (this.inFlight < BATCHES_IN_FLIGHT) return undefined;
    return new Promise((resolve) => (this.wake = resolve));
  }

  private send(): void {
    const b = this.batch;
    this.batch = undefined;
    if (!b || b.filled === 0) {
      if (b) this.lane.pool.giveBack(b.buf);
      return;
    }
    this.inFlight++;
    this.lane.post({ op: 'update', session: this.id, buf: b.buf, length: b.filled, position: b.position });
  }

  /** The worker has hashed and written one batch (or failed to write it). */
  written(m: Extract<WorkerReply, { op: 'updated' }>): void {
    this.lane.pool.giveBack(m.buf);
    if (m.error !== undefined) this.error ??= new Error(`upload write failed: ${m.error}`);
    this.inFlight--;
    this.settle();
  }

  private settle(): void {
    if (this.wake && (this.inFlight < BATCHES_IN_FLIGHT || this.error)) {
      const wake = this.wake;
      this.wake = undefined;
      wake();
    }
    if (this.idle && this.inFlight === 0) {
      const idle = this.idle;
      this.idle = undefined;
      idle();
    }
  }

  private drained(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => (this.idle = resolve));
  }

  async finish(): Promise<void> {
    if (this.error) throw this.error;
    this.send();
    await this.drained();
    if (this.error) throw this.error;
  }

  async abandon(): Promise<boolean> {
    if (this.batch) {
      this.position -= this.batch.filled;
      this.lane.pool.giveBack(this.batch.buf);
      this.batch = undefined;
    }
    await this.drained();
    return this.error === undefined;
  }

  hex(): Promise<string> {
    if (this.error) return Promise.reject(this.error);
    return this.lane.digest(this.id);
  }

  drop(): void {
    if (this.batch) this.lane.pool.giveBack(this.batch.buf);
    this.batch = undefined;
    this.lane.drop(this);
    // A body still streaming into a cancelled session must not wait forever for batches nobody acknowledges.
    this.lost(new Error('upload session ended'));
  }

  /** The worker is gone, and the batches it had with it: nobody would wake a waiting body otherwise. */
  lost(e: Error): void {
    this.dead = true;
    this.error ??= e;
    this.inFlight = 0;
    this.settle();
  }
}

/** One worker thread and the sessions assigned to it. */
class Lane {
  private worker?: Worker;
  private readonly sessions = new Map<string, WorkerWriter>();
  private readonly digests = new Map<number, { resolve(hex: string): void; reject(e: Error): void }>();
  private seq = 0;

  constructor(readonly pool: UploadWriters) {}

  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./upload-worker.js', import.meta.url));
    // An idle worker must not keep a CLI command or a test process alive.
    worker.unref();
    worker.on('message', (m: WorkerReply) => {
      if (m.op === 'updated') {
        this.pending--;
        const s = this.sessions.get(m.session);
        if (s) s.written(m);
        else this.pool.giveBack(m.buf);
      } else {
        const waiter = this.digests.get(m.seq);
        this.digests.delete(m.seq);
        waiter?.resolve(m.hex);
      }
      this.holdWhileBusy();
    });
    const fail = (e: Error) => {
      if (this.worker === worker) this.lose(e);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`upload worker exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  /** Every session's running state died with the worker. */
  private lose(e: Error): void {
    this.worker = undefined;
    this.pending = 0;
    for (const w of this.digests.values()) w.reject(e);
    this.digests.clear();
    for (const s of this.sessions.values()) s.lost(e);
    this.sessions.clear();
  }

  open(id: string, path: string): WorkerWriter {
    const worker = this.started();
    const s = new WorkerWriter(this, id);
    this.sessions.set(id, s);
    worker.postMessage({ op: 'open', session: id, path } satisfies WorkerRequest);
    return s;
  }

  post(m: Extract<WorkerRequest, { op: 'update' }>): void {
    this.worker!.postMessage(m, [m.buf]);
    this.pending++;
    this.holdWhileBusy();
  }

  /** Batches sent and not yet answered. */
  private pending = 0;

  /** Writes and digests in flight keep the process alive (a CLI waiting for its answer); an idle worker does not. */
  private holdWhileBusy(): void {
    if (!this.worker) return;
    if (this.pending + this.digests.size > 0) this.worker.ref();
    else this.worker.unref();
  }

  digest(session: string): Promise<string> {
    if (!this.sessions.has(session) || !this.worker) return Promise.reject(new Error('upload worker was lost'));
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.digests.set(seq, { resolve, reject });
      this.holdWhileBusy();
      this.worker!.postMessage({ op: 'digest', session, seq } satisfies WorkerRequest);
    });
  }

  drop(s: WorkerWriter): void {
    if (this.sessions.get(s.id) !== s) return;
    this.sessions.delete(s.id);
    this.worker?.postMessage({ op: 'drop', session: s.id } satisfies WorkerRequest);
  }

  async close(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    await w.terminate();
    if (this.worker === w) this.lose(new Error('upload writer closed'));
  }
}

/** The process's upload workers, and the batch buffers they hand back. */
export class UploadWriters {
  private readonly lanes: Lane[];
  private next = 0;
  private readonly free: ArrayBuffer[] = [];

  /** One worker per spare core (at least one, at most four), started on first use. */
  constructor(workers = Math.min(4, Math.max(1, availableParallelism() - 1))) {
    this.lanes = Array.from({ length: workers }, () => new Lane(this));
  }

  /** A new session writing to `path` (which exists); sessions are spread over the workers and stay on theirs. */
  open(id: string, path: string): UploadWriter {
    const lane = this.lanes[this.next++ % this.lanes.length]!;
    return lane.open(id, path);
  }

  takeBatch(position: number): Batch {
    return { buf: this.free.pop() ?? new ArrayBuffer(BATCH_BYTES), filled: 0, position };
  }

  giveBack(buf: ArrayBuffer): void {
    if (this.free.length < FREE_BUFFERS && buf.byteLength === BATCH_BYTES) this.free.push(buf);
  }

  async close(): Promise<void> {
    await Promise.all(this.lanes.map((l) => l.close()));
  }
}

let processWriters: UploadWriters | undefined;

/** The process's writers: workers are per process, not per store (tests open many stores). */
export function uploadWriters(): UploadWriters {
  return (processWriters ??= new UploadWriters());
}
