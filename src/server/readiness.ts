// GET /readyz: whether this server can take traffic — the database answers, the blob store answers, and the data
// directory has room for writes. /healthz only says the process is up.
import { statfs } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import type { BlobStore } from '../storage/blob-store.js';

/** The digest of zero bytes: a blob store lookup that proves the store answers, whatever it holds. */
const PROBE_DIGEST = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

interface Check {
  ok: boolean;
  error?: string;
}

export interface Readiness {
  ready: boolean;
  checks: { database: Check; storage: Check; freeSpace: Check & { freeBytes?: number; minFreeBytes: number } };
}

/** What readiness looks at: the metadata database, the blob store, and the data directory with its threshold. */
export interface ReadinessProbes {
  meta: { ping(): Promise<void> };
  blobs: Pick<BlobStore, 'stat' | 'ready'>;
  dataDir: string;
  minFreeBytes: number;
}

export async function readiness({ meta, blobs, dataDir, minFreeBytes }: ReadinessProbes): Promise<Readiness> {
  const attempt = async (fn: () => Promise<unknown>): Promise<Check> => {
    try {
      await fn();
      return { ok: true };
    } catch (e) {
      return { ok: false, error: (e as Error).message };
    }
  };
  const [database, storage, freeSpace] = await Promise.all([
    attempt(() => meta.ping()),
    // A store with a probe of its own (S3: HeadBucket) uses it; the lookup alone would only ask the database there.
    attempt(() => (blobs.ready ? blobs.ready() : blobs.stat(PROBE_DIGEST))),
    statfs(dataDir).then(
      (s) => {
        const freeBytes = s.bavail * s.bsize;
        const ok = freeBytes >= minFreeBytes;
        return { ok, freeBytes, minFreeBytes, ...(ok ? {} : { error: `${freeBytes} bytes free in the data directory, below ${minFreeBytes}` }) };
      },
      (e: Error) => ({ ok: false, minFreeBytes, error: e.message }),
    ),
  ]);
  return { ready: database.ok && storage.ok && freeSpace.ok, checks: { database, storage, freeSpace } };
}

export function sendReadiness(res: ServerResponse, r: Readiness): void {
  const json = JSON.stringify({ status: r.ready ? 'ready' : 'not ready', checks: r.checks });
  res.writeHead(r.ready ? 200 : 503, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json), 'Cache-Control': 'no-store' });
  res.end(json);
}
