// One full garbage collection once the server falls idle after a burst of requests.
//
// Why: V8 grows the old generation 2-4x between full collections, and a busy registry promotes a steady trickle of
// short-lived request objects into it. After 10,000 manifest GETs/s the process stayed at 177 MiB resident, all but
// ~90 MiB of it garbage that V8 would only collect once enough new garbage arrived — so the next burst (a pull storm,
// a 1 GiB push) started from there. Shrinking the heap up front with V8 flags (--max-semi-space-size,
// --heap-growing-percent) did bound it, but cost pushes a third of their throughput: uploads churn through 64 KiB
// socket buffers, and tighter limits turned that into frequent full collections. Collecting once when the burst is
// over costs a few milliseconds while nothing is waiting; a collection that comes and finds no garbage is as cheap.
import { Session } from 'node:inspector';

/** How long without a request (and with none in flight) before the collection. */
const IDLE_MS = 1_000;

export class IdleCollector {
  private inFlight = 0;
  private lastActivity = 0;
  /** requests since the last collection */
  private dirty = false;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly collect: (() => void) | undefined = inspectorGc(),
    private readonly idleMs = IDLE_MS,
  ) {}

  /** A request began; `done` when its response is finished or its connection gone. */
  begin(): () => void {
    this.inFlight++;
    this.lastActivity = Date.now();
    this.dirty = true;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.inFlight--;
      this.lastActivity = Date.now();
      this.arm();
    };
  }

  /** Polls while there is something to collect: one interval, cleared once the collection is done. */
  private arm(): void {
    if (this.timer || !this.collect) return;
    this.timer = setInterval(() => this.check(), Math.max(10, this.idleMs / 4));
    this.timer.unref();
  }

  private check(): void {
    if (this.inFlight > 0 || Date.now() - this.lastActivity < this.idleMs) return;
    this.stop();
    if (!this.dirty) return;
    this.dirty = false;
    this.collect!();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

/**
 * A memory-reducing full collection through an in-process inspector session (no port is opened): V8 collects until
 * nothing more goes and hands the pages back — 264 → 56 MiB resident in a test, where a gc() exposed at run time
 * freed some garbage but kept every page. Undefined where Node was built without the inspector.
 */
function inspectorGc(): (() => void) | undefined {
  if (typeof Session !== 'function' || !forcedCollectionIsSafe()) return undefined;
  return () => {
    const session = new Session();
    try {
      session.connect();
      // Disconnecting before the answer would cancel the collection.
      session.post('HeapProfiler.collectGarbage', () => setImmediate(() => session.disconnect()));
    } catch {
      session.disconnect();
    }
  };
}

/**
 * Not on Node ≥ 24 with better-sqlite3 12: Node 24 made node::ObjectWrap's destructor require an entered context,
 * and better-sqlite3 before 13 (13 does not run on Node 20) frees its statements through it; a forced collection
 * finalizes the statements a closed database left behind outside one and aborts the process (seen in our Node 24
 * test run; upstream WiseLibs/better-sqlite3#1515).
 */
export function forcedCollectionIsSafe(nodeVersion = process.versions.node): boolean {
  return Number(nodeVersion.split('.')[0]) < 24;
}
