// GET /readyz: whether this server can take traffic — the database answers with the schema this version knows,
// the blob store answers, and the data directory has room for writes. /healthz only says the process is up.
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
  checks: { database: Check; schema: Check & { pending?: string[]; unknown?: string[] }; storage: Check; freeSpace: Check & { freeBytes?: number; minFreeBytes: number } };
}

/** What readiness looks at: the metadata database and its schema, the blob store, and the data directory with its threshold. */
export interface ReadinessProbes {
  meta: { ping(): Promise<void>; schemaState(): Promise<{ pending: string[]; unknown: string[] }> };
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
  const [database, schema, storage, freeSpace] = await Promise.all([
    attempt(() => meta.ping()),
    // Another instance ran `wharf migrate` for a newer version (unknown migrations: this one may misread rows), or
    // the schema was rolled back under it (pending ones): either way this instance should take no traffic.
    meta.schemaState().then(
      ({ pending, unknown }) => {
        const problems = [
          ...(pending.length > 0 ? [`${pending.length} migration(s) pending (${pending.join(', ')}): run 'wharf migrate'`] : []),
          ...(unknown.length > 0 ? [`the schema is newer than this version knows (${unknown.join(', ')}): upgrade this instance`] : []),
        ];
        return { ok: problems.length === 0, pending, unknown, ...(problems.length > 0 ? { error: problems.join('; ') } : {}) };
      },
      (e: Error) => ({ ok: false, error: e.message }),
    ),
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
  return { ready: database.ok && schema.ok && storage.ok && freeSpace.ok, checks: { database, schema, storage, freeSpace } };
}

export function sendReadiness(res: ServerResponse, r: Readiness): void {
  const json = JSON.stringify({ status: r.ready ? 'ready' : 'not ready', checks: r.checks });
  res.writeHead(r.ready ? 200 : 503, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json), 'Cache-Control': 'no-store' });
  res.end(json);
}
