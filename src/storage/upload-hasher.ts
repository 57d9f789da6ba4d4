// The running digest of an upload session, computed off the main thread.
//
// sha256 costs about 0.85 CPU-seconds per GiB here (OpenSSL, with SHA extensions): on the event loop it was the
// largest single cost of a push, and it kept a push on one core while the other sat idle. So the bytes of an
// upload are copied (about 0.1 s per GiB) into 1 MiB batches that a worker thread hashes, in order, while the
// main thread goes on receiving and the file writes go on in libuv's pool. Each session has at most a few
// batches in flight: when the worker falls behind, the request body waits (backpressure), memory does not grow.
//
// A session resumed after a restart, or whose request broke mid-body, hashes on the main thread instead
// (LocalDigest): its running state has to be rebuilt from the file anyway, and that is rare.
import { createHash, type Hash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { HashReply, HashRequest } from './hash-worker.js';

/** The sha256 of the bytes given so far. */
export interface RunningDigest {
  /** Adds bytes; a promise means "wait for it before giving more" (the worker is behind). */
  update(chunk: Buffer): Promise<void> | undefined;
  /** Ends a run of updates (a request body): nothing may stay buffered between requests. */
  flush(): void;
  /** The hex digest of everything so far; the digest can go on. Rejects if the worker was lost. */
  hex(): Promise<string>;
  /** Forgets the session. */
  drop(): void;
}

/** A digest on the main thread, for sessions whose state was rebuilt from their file. */
export class LocalDigest implements RunningDigest {
  constructor(private readonly hash: Hash = createHash('sha256')) {}
  update(chunk: Buffer): undefined {
    this.hash.update(chunk);
    return undefined;
  }
  flush(): void {}
  hex(): Promise<string> {
    return Promise.resolve(this.hash.copy().digest('hex'));
  }
  drop(): void {}
}

const BATCH_BYTES = 1 << 20;
/** Batches a session may have at the worker before its body waits. */
const BATCHES_IN_FLIGHT = 4;
/** Returned batch buffers kept for reuse, enough for two sessions at full speed (more are left to the garbage collector). */
const FREE_BATCHES = 10;

class WorkerDigest implements RunningDigest {
  private batch?: ArrayBuffer;
  private filled = 0;
  inFlight = 0;
  private wake?: () => void;
  /** the worker died: updates are ignored and hex() rejects, so the store hashes the file instead */
  private dead = false;

  constructor(
    private readonly lane: Lane,
    readonly id: string,
  ) {}

  update(chunk: Buffer): Promise<void> | undefined {
    if (this.dead) return undefined;
    let offset = 0;
    while (offset < chunk.length) {
      this.batch ??= this.lane.hasher.takeBuffer();
      const n = Math.min(chunk.length - offset, BATCH_BYTES - this.filled);
      new Uint8Array(this.batch, this.filled, n).set(chunk.subarray(offset, offset + n));
      this.filled += n;
      offset += n;
      if (this.filled === BATCH_BYTES) this.flush();
    }
    if (this.inFlight < BATCHES_IN_FLIGHT) return undefined;
    return new Promise((resolve) => (this.wake = resolve));
  }

  flush(): void {
    if (this.dead || !this.batch || this.filled === 0) return;
    const buf = this.batch;
    this.lane.post({ op: 'update', session: this.id, buf, length: this.filled }, [buf]);
    this.inFlight++;
    this.batch = undefined;
    this.filled = 0;
  }

  /** The worker hashed one batch. */
  hashed(): void {
    this.inFlight--;
    if (this.inFlight < BATCHES_IN_FLIGHT && this.wake) {
      const wake = this.wake;
      this.wake = undefined;
      wake();
    }
  }

  hex(): Promise<string> {
    this.flush();
    return this.lane.digest(this.id);
  }

  drop(): void {
    if (this.batch) this.lane.hasher.giveBuffer(this.batch);
    this.batch = undefined;
    this.lane.drop(this);
    // A body still streaming into a cancelled session must not wait forever for batches nobody acknowledges.
    this.lost();
  }

  /** The worker is gone: nobody will wake a waiting body otherwise. */
  lost(): void {
    this.dead = true;
    this.wake?.();
    this.wake = undefined;
  }
}

/** One worker thread and the sessions assigned to it. */
class Lane {
  private worker?: Worker;
  private readonly sessions = new Map<string, WorkerDigest>();
  private readonly digests = new Map<number, { resolve(hex: string): void; reject(e: Error): void }>();
  private seq = 0;

  constructor(readonly hasher: UploadHasher) {}

  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./hash-worker.js', import.meta.url));
    // An idle hasher must not keep a CLI command or a test process alive.
    worker.unref();
    worker.on('message', (m: HashReply) => {
      if (m.op === 'updated') {
        this.hasher.giveBuffer(m.buf);
        this.sessions.get(m.session)?.hashed();
      } else {
        const waiter = this.digests.get(m.seq);
        this.digests.delete(m.seq);
        if (this.digests.size === 0) worker.unref();
        waiter?.resolve(m.hex);
      }
    });
    const fail = (e: Error) => {
      if (this.worker === worker) this.lose(e);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`upload hash worker exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  /** Every session's running state died with the worker: their digests are computed from their files. */
  private lose(e: Error): void {
    this.worker = undefined;
    for (const w of this.digests.values()) w.reject(e);
    this.digests.clear();
    for (const s of this.sessions.values()) s.lost();
    this.sessions.clear();
  }

  open(id: string): WorkerDigest {
    this.started();
    const s = new WorkerDigest(this, id);
    this.sessions.set(id, s);
    return s;
  }

  post(m: HashRequest, transfer: ArrayBuffer[] = []): void {
    if (!this.sessions.has(m.session)) return; // lost with a dead worker: hex() will say so
    this.worker!.postMessage(m, transfer);
  }

  digest(session: string): Promise<string> {
    if (!this.sessions.has(session) || !this.worker) return Promise.reject(new Error('upload hash worker was lost'));
    const seq = ++this.seq;
    // Held while a digest is awaited: a process with nothing else to do still waits for its answer.
    this.worker.ref();
    return new Promise((resolve, reject) => {
      this.digests.set(seq, { resolve, reject });
      this.worker!.postMessage({ op: 'digest', session, seq } satisfies HashRequest);
    });
  }

  drop(s: WorkerDigest): void {
    if (this.sessions.get(s.id) !== s) return;
    this.sessions.delete(s.id);
    this.worker?.postMessage({ op: 'drop', session: s.id } satisfies HashRequest);
  }

  async close(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    this.lose(new Error('upload hasher closed'));
    await w.terminate();
  }
}

export class UploadHasher {
  private readonly lanes: Lane[];
  private next = 0;
  private readonly free: ArrayBuffer[] = [];

  /** One worker per spare core (at least one, at most four), started on first use. */
  constructor(workers = Math.min(4, Math.max(1, availableParallelism() - 1))) {
    this.lanes = Array.from({ length: workers }, () => new Lane(this));
  }

  /** A new session's digest; sessions are spread over the workers and stay on theirs. */
  open(id: string): RunningDigest {
    const lane = this.lanes[this.next++ % this.lanes.length]!;
    return lane.open(id);
  }

  takeBuffer(): ArrayBuffer {
    return this.free.pop() ?? new ArrayBuffer(BATCH_BYTES);
  }

  giveBuffer(buf: ArrayBuffer): void {
    if (this.free.length < FREE_BATCHES && buf.byteLength === BATCH_BYTES) this.free.push(buf);
  }

  async close(): Promise<void> {
    await Promise.all(this.lanes.map((l) => l.close()));
  }
}

let shared: UploadHasher | undefined;

/** The process's hasher: workers are per process, not per store (tests open many stores). */
export function uploadHasher(): UploadHasher {
  return (shared ??= new UploadHasher());
}
