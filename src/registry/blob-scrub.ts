// The background scrub: re-hashes every stored blob at a bounded rate, so bytes that rot on disk are found and
// quarantined before a client pulls them, and blobs it verified are served without hashing (hashOnServe: unverified).
import type { Logger } from 'pino';
import { newHasher, parseDigest } from '../oci/digest.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { BlobIntegrity } from './blob-integrity.js';

const CHUNK = 1 << 20;

export interface ScrubReport {
  blobs: number;
  bytes: number;
  quarantined: string[];
}

export interface ScrubOptions {
  /** bytes per second, over the whole pass */
  rate: number;
  /** stops the pass between two reads */
  signal?: AbortSignal;
}

/** One pass over the store. A blob removed meanwhile (gc) is skipped. */
export async function scrubBlobs(blobs: BlobStore, integrity: BlobIntegrity, { rate, signal }: ScrubOptions): Promise<ScrubReport> {
  const report: ScrubReport = { blobs: 0, bytes: 0, quarantined: [] };
  const began = Date.now();
  const buf = Buffer.allocUnsafe(CHUNK);
  for await (const { digest } of blobs.list()) {
    if (signal?.aborted) break;
    const d = parseDigest(digest);
    if (!d) continue;
    const file = await blobs.open(digest);
    if (!file) continue;
    const hash = newHasher(d.algorithm);
    let position = 0;
    try {
      while (position < file.size && !signal?.aborted) {
        const n = await file.read(buf, Math.min(CHUNK, file.size - position), position);
        if (n === 0) break;
        hash.update(buf.subarray(0, n));
        position += n;
        report.bytes += n;
        // Ahead of the rate: wait until the bytes read so far are due.
        const due = began + (report.bytes / rate) * 1000 - Date.now();
        if (due > 0) await sleep(due, signal);
      }
    } finally {
      await file.close().catch(() => undefined);
    }
    if (signal?.aborted) break;
    report.blobs++;
    const hex = position === file.size ? hash.digest('hex') : null;
    if (hex === d.hex) {
      integrity.markVerified(digest, file.modifiedMs);
      continue;
    }
    const detail = hex === null ? `the file ended at byte ${position} of ${file.size}` : `bytes hash to ${d.algorithm}:${hex}`;
    await integrity.quarantine({ digest, reason: 'digest', foundBy: 'scrub', detail });
    report.quarantined.push(digest);
  }
  return report;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Runs a scrub pass `interval` after the previous one ended (the first one `firstDelay` after start). */
export class ScrubSchedule {
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private readonly abort = new AbortController();

  constructor(
    private readonly blobs: BlobStore,
    private readonly integrity: BlobIntegrity,
    private readonly options: { interval: number; rate: number; firstDelay: number },
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.options.interval <= 0) return;
    this.arm(Math.min(this.options.firstDelay, this.options.interval));
  }

  private arm(delay: number): void {
    if (this.abort.signal.aborted) return;
    this.timer = setTimeout(() => {
      const began = Date.now();
      this.current = scrubBlobs(this.blobs, this.integrity, { rate: this.options.rate, signal: this.abort.signal })
        .then((r) => {
          const fields = { blobs: r.blobs, bytes: r.bytes, quarantined: r.quarantined, ms: Date.now() - began };
          if (r.quarantined.length > 0) this.log.error(fields, 'scrub quarantined blobs that do not match their digest');
          else this.log.info(fields, 'scrub finished');
        })
        .catch((err) => this.log.error({ err }, 'scrub failed'))
        .finally(() => {
          this.current = undefined;
          this.arm(this.options.interval);
        });
    }, delay);
    this.timer.unref();
  }

  /** Stops the schedule; a pass in progress stops at its next read. */
  async stop(): Promise<void> {
    this.abort.abort();
    clearTimeout(this.timer);
    await this.current;
  }
}
