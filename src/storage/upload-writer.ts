// Upload bodies hashed and written off the main thread.
//
// A push is bound by three costs per GiB: sha256 (about 0.6 CPU-s here, OpenSSL with SHA extensions), copying the
// bytes into the page cache (0.2–0.3 CPU-s, and far more when the kernel has to find fresh pages: on this kind of
// virtual machine a page the guest has not touched lately costs a fault in the host, and writing 1 GiB into a
// growing page cache took 2.3 CPU-s instead of 0.2), and the event loop's own receiving. So the main thread only
// receives: it copies each request body into batches in memory it shares with a worker thread, and the worker
// hashes each batch and writes it to the upload's file, its whole pages with O_DIRECT, bypassing the page cache
// (upload-worker.ts). Shared slots rather than buffers handed back and forth: a transferred ArrayBuffer counts as
// new external memory on each side, and a gigabyte of them set off a major collection every few dozen megabytes.
// A session has at most a few batches in flight: when the worker or the disk falls behind, the request body waits
// (backpressure), memory does not grow. The worker and the slots go away 3 s after the last upload, so a process
// that mostly serves pulls does not carry them.
//
// A session resumed after a restart, or whose worker was lost, is hashed and written on the main thread instead
// (a digest and a file stream of the store's own): its running state has to be rebuilt from the file anyway, and
// that is rare.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { DIRECT_ALIGN, type WorkerReply, type WorkerRequest, type WorkerSetup } from './upload-protocol.js';

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

const BATCH_BYTES = 512 << 10;
/** A slot holds a batch starting anywhere in its first page: file offset and slot offset agree modulo the alignment. */
const SLOT_STRIDE = BATCH_BYTES + DIRECT_ALIGN;
/** Batches a session may have at the worker before its body waits. */
const BATCHES_IN_FLIGHT = 4;
/**
 * Shared slots: four sessions at full speed (12 MiB). Beyond, a batch is a plain buffer written through the page
 * cache, so a crowd of slow uploads holding slots never makes another one wait.
 */
const SLOTS = 24;
/** Plain batch buffers kept for reuse. */
const FREE_BUFFERS = 4;
/**
 * A worker with no session for this long is stopped, and with the last one the slots are let go: together about
 * 30 MiB after a few concurrent uploads. Starting a worker again costs the next upload 30–45 ms, once.
 */
const IDLE_MS = 3_000;

interface SharedSlots {
  memory: WebAssembly.Memory;
  view: Uint8Array;
  free: number[];
}

interface Batch {
  /** -1: a plain buffer */
  slot: number;
  /** the slots it is in: a batch held across the loss of every worker must not go back into their successors */
  slots?: SharedSlots;
  buf?: ArrayBuffer;
  view: Uint8Array;
  start: number;
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
      this.lane.pool.copy(chunk.subarray(offset, offset + n), batch.view, batch.start + batch.filled);
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
    if (!b) return;
    if (b.filled === 0) return this.lane.pool.giveBatch(b);
    this.inFlight++;
    this.lane.post({ op: 'update', session: this.id, slot: b.slot, buf: b.buf, start: b.start, length: b.filled, position: b.position });
  }

  /** The worker has hashed and written one batch (or failed to write it). */
  written(m: Extract<WorkerReply, { op: 'updated' }>): void {
    // The errno code crosses over too: ENOSPC must reach the client as "storage full", not as an unknown failure.
    if (m.error !== undefined) this.error ??= Object.assign(new Error(`upload write failed: ${m.error}`), { code: m.errorCode });
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
    const b = this.batch;
    if (b) {
      this.position -= b.filled;
      this.batch = undefined;
      this.lane.pool.giveBatch(b);
    }
    await this.drained();
    return this.error === undefined;
  }

  hex(): Promise<string> {
    if (this.error) return Promise.reject(this.error);
    return this.lane.digest(this.id);
  }

  drop(): void {
    const b = this.batch;
    this.batch = undefined;
    if (b) this.lane.pool.giveBatch(b);
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
  /** Batches sent and not yet answered, and the shared slots among them. */
  private pending = 0;
  private readonly slotsOut = new Set<number>();
  private idleTimer?: NodeJS.Timeout;

  constructor(
    readonly pool: UploadWriters,
    private readonly idleMs: number,
  ) {}

  get running(): boolean {
    return this.worker !== undefined;
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const setup: WorkerSetup = { memory: this.pool.memory(), slotStride: SLOT_STRIDE };
    const worker = new Worker(new URL('./upload-worker.js', import.meta.url), { workerData: setup });
    // An idle worker must not keep a CLI command or a test process alive.
    worker.unref();
    worker.on('message', (m: WorkerReply) => {
      if (m.op === 'updated') {
        this.pending--;
        this.slotsOut.delete(m.slot);
        this.pool.giveBack(m.slot, m.buf);
        this.sessions.get(m.session)?.written(m);
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
    // The slots it held are free again: nothing reads them any more.
    for (const slot of this.slotsOut) this.pool.giveBack(slot);
    this.slotsOut.clear();
    for (const w of this.digests.values()) w.reject(e);
    this.digests.clear();
    for (const s of this.sessions.values()) s.lost(e);
    this.sessions.clear();
    this.pool.laneStopped();
  }

  open(id: string, path: string): WorkerWriter {
    clearTimeout(this.idleTimer);
    const worker = this.started();
    const s = new WorkerWriter(this, id);
    this.sessions.set(id, s);
    worker.postMessage({ op: 'open', session: id, path } satisfies WorkerRequest);
    return s;
  }

  post(m: Extract<WorkerRequest, { op: 'update' }>): void {
    this.worker!.postMessage(m, m.buf ? [m.buf] : []);
    this.pending++;
    if (m.slot >= 0) this.slotsOut.add(m.slot);
    this.holdWhileBusy();
  }

  /** Writes and digests in flight keep the process alive (a CLI waiting for its answer); an idle worker does not. */
  private holdWhileBusy(): void {
    if (!this.worker) return;
    if (this.pending + this.digests.size > 0) this.worker.ref();
    else {
      this.worker.unref();
      if (this.sessions.size === 0) this.stopWhenIdle();
    }
  }

  private stopWhenIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      const w = this.worker;
      if (!w || this.sessions.size > 0 || this.pending + this.digests.size > 0) return;
      this.worker = undefined;
      this.pool.laneStopped();
      void w.terminate();
    }, this.idleMs);
    this.idleTimer.unref();
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
    this.holdWhileBusy();
  }

  async close(): Promise<void> {
    clearTimeout(this.idleTimer);
    const w = this.worker;
    if (!w) return;
    await w.terminate();
    if (this.worker === w) this.lose(new Error('upload writer closed'));
  }
}

/** The process's upload workers, and the batch slots they share with the main thread. */
export class UploadWriters {
  private readonly lanes: Lane[];
  private next = 0;
  private shared?: SharedSlots;
  private readonly freeBuffers: ArrayBuffer[] = [];
  /** Staging for copies into the slots (see copy()). */
  private readonly scratch = new Uint8Array(BATCH_BYTES + 8);

  /** One worker per spare core (at least one, at most four), started on first use and stopped after `idleMs` without uploads. */
  constructor(workers = Math.min(4, Math.max(1, availableParallelism() - 1)), { idleMs = IDLE_MS }: { idleMs?: number } = {}) {
    this.lanes = Array.from({ length: workers }, () => new Lane(this, idleMs));
  }

  /** How many workers run (for tests and metrics). */
  get workersRunning(): number {
    return this.lanes.filter((l) => l.running).length;
  }

  /** A new session writing to `path` (which exists); sessions are spread over the workers and stay on theirs. */
  open(id: string, path: string): UploadWriter {
    const lane = this.lanes[this.next++ % this.lanes.length]!;
    return lane.open(id, path);
  }

  /** The slots, allocated when a worker starts: a page costs memory only once touched. */
  memory(): WebAssembly.Memory {
    if (!this.shared) {
      const pages = Math.ceil((SLOTS * SLOT_STRIDE) / 65536);
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
      // Popped from the end: the lowest slots are reused first, so a light load touches few pages.
      this.shared = { memory, view: new Uint8Array(memory.buffer), free: Array.from({ length: SLOTS }, (_, i) => SLOTS - 1 - i) };
    }
    return this.shared.memory;
  }

  /** No worker left: the slots go with the last one (nothing reads them any more). */
  laneStopped(): void {
    if (this.workersRunning === 0) this.shared = undefined;
  }

  takeBatch(position: number): Batch {
    const slot = this.shared?.free.pop();
    if (slot !== undefined) {
      const view = this.shared!.view.subarray(slot * SLOT_STRIDE, (slot + 1) * SLOT_STRIDE);
      return { slot, slots: this.shared, view, start: position % DIRECT_ALIGN, filled: 0, position };
    }
    const buf = this.freeBuffers.pop() ?? new ArrayBuffer(BATCH_BYTES);
    return { slot: -1, buf, view: new Uint8Array(buf), start: 0, filled: 0, position };
  }

  /** A batch never sent. */
  giveBatch(b: Batch): void {
    if (b.slot < 0 || b.slots === this.shared) this.giveBack(b.slot, b.buf);
  }

  /** A batch the worker is done with (workers all run on the current slots). */
  giveBack(slot: number, buf?: ArrayBuffer): void {
    if (slot >= 0) this.shared?.free.push(slot);
    else if (buf && this.freeBuffers.length < FREE_BUFFERS && buf.byteLength === BATCH_BYTES) this.freeBuffers.push(buf);
  }

  /**
   * Copies `src` into a batch. V8 copies into shared memory word by word only when source and target are equally
   * aligned, and byte by byte otherwise (3.4 GiB/s against 26 here); a body chunk lands at any offset. So a
   * misaligned chunk is first put into plain memory at the target's alignment, from where both copies are fast.
   */
  copy(src: Uint8Array, view: Uint8Array, at: number): void {
    const shift = (view.byteOffset + at) % 8;
    if (!(view.buffer instanceof SharedArrayBuffer) || src.byteOffset % 8 === shift) {
      view.set(src, at);
      return;
    }
    this.scratch.set(src, shift);
    view.set(this.scratch.subarray(shift, shift + src.length), at);
  }

  async close(): Promise<void> {
    await Promise.all(this.lanes.map((l) => l.close()));
  }

  private holders = 0;

  /** A store starts using these writers (see release()). */
  hold(): void {
    this.holders++;
  }

  /**
   * A store that held these writers is closed. With the last one the workers stop at once, and their message ports
   * with them: a process that closed every store (a test file, a CLI command) must not wait on an upload session
   * some client left open, nor for the idle timer.
   */
  async release(): Promise<void> {
    if (this.holders === 0) return;
    if (--this.holders === 0) await this.close();
  }
}

let processWriters: UploadWriters | undefined;

/** The process's writers: workers are per process, not per store (tests open many stores). */
export function uploadWriters(): UploadWriters {
  return (processWriters ??= new UploadWriters());
}
