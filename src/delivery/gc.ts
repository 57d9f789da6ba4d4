// Online garbage collection: runs retention, then deletes the blob links, blob rows and blob files nothing
// needs any more — while pushes go on, with no read-only window.
//
// What is collected (cutoff = start of the run - grace):
//   1. Retention deletes the tags and untagged manifests its policies let go (retention.ts). GC itself never
//      deletes a manifest.
//   2. A link (repository, blob) goes when no manifest of that repository references the blob, the link is
//      older than the cutoff, and the repository has no open upload session (a push in progress uploads
//      its blobs first and its manifest last; the grace period covers the gap).
//   3. A blob row and its file go when no repository links the blob and the row is older than the cutoff;
//      a file without a row goes when it is older than the cutoff.
//
// Why it is safe beside pushes. On SQLite every transaction takes the database's write lock when it
// begins (metadata/sqlite.ts), so the transactions below are serialized, also across processes (a
// `wharf gc` beside a running server); each deletion re-checks its conditions in the statement that deletes.
//   - A manifest keeps its blobs. Registry.putManifest checks that every blob is linked, then
//     RegistryMetadata.putManifest, in one transaction, updates those links (refreshing created_at), refuses
//     if any is gone, and inserts the manifest's references. Step 2 is one DELETE whose NOT EXISTS sees
//     those references. Either the DELETE runs first — the push's transaction then finds a link missing and
//     the push is refused with MANIFEST_BLOB_UNKNOWN, nothing dangling is written — or the push runs first,
//     and the DELETE sees the references (and a link younger than the cutoff) and keeps the link.
//   - A linked blob keeps its row and file: step 3 deletes a row only while no link exists, in a statement,
//     and deletes the file inside that same transaction.
//   - A blob being pushed keeps its file. A commit (RegistryMetadata.commitBlob) writes the blob row (fresh
//     created_at), renames the file into place and writes the link, all in one transaction; a mount
//     (linkStoredBlob) refreshes the row and writes the link, or falls back to an upload when the row is
//     gone. Step 3's transaction (delete row, delete file) therefore runs wholly before such a commit — the
//     commit then writes a new row and a new file — or wholly after it, when the row is fresh and linked.
//     A file found without a row is claimed by inserting its row first (GcMetadata.deleteOrphans), which
//     waits for a commit in flight and then conflicts with its row; only an unclaimed-by-anyone file goes.
//   - An open upload session's bytes live under uploads/ and are no blob until that commit; sessions
//     expire on their own schedule (uploads.ttl), not here.
// On PostgreSQL (READ COMMITTED) the same statements conflict on the same rows — the link a push updates,
// the blob row a commit or mount writes, the key an orphan claim inserts — and the refreshed created_at
// makes a re-evaluated DELETE skip the row; the grace period must still exceed the longest push transaction.
import type { Actor, AuditEntry, AuditLog } from '../audit/audit-log.js';
import type { BlobStore } from '../storage/blob-store.js';
import { RegistryError } from '../oci/errors.js';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { GcRunRow, GcMetadata, LeaseMetadata, LinkRow } from '../metadata/metadata.js';
import { referenceKey } from '../metadata/records.js';
import type { PlannedManifest, PlannedTag } from './retention-policy.js';
import type { Retention } from './retention.js';

export type GcTrigger = 'schedule' | 'cli' | 'api';

export interface GcOptions {
  /** ms: links, blob rows and files younger than this are left alone */
  grace: number;
}

/** Who runs a scheduled collection: the server itself. */
export const SERVER_ACTOR: Actor = { name: 'wharf', kind: 'local', address: null };

export interface GcRequest {
  dryRun?: boolean;
  trigger: GcTrigger;
  /** who asked, from where (the audit rows of what retention deletes); the server itself by default */
  actor?: Actor;
  /** the time retention and the grace period are measured at (tests move it) */
  now?: number;
}

export interface GcReport {
  dryRun: boolean;
  trigger: GcTrigger;
  startedAt: string;
  durationMs: number;
  /** tags retention deleted (or would delete) */
  tags: PlannedTag[];
  /** manifests retention deleted (or would delete) */
  manifests: PlannedManifest[];
  linksDropped: number;
  /** blobs whose row and file were deleted (or would be), orphan files included */
  blobs: { digest: string; size: number }[];
  bytes: number;
}

export interface GcRun {
  id: number;
  trigger: GcTrigger;
  actor: string | null;
  startedAt: string;
  finishedAt: string;
  tags: number;
  manifests: number;
  linksDropped: number;
  blobs: number;
  bytes: number;
  error: string | null;
}

/** The counts of a report, for logs and one-line summaries. */
export function summarize(r: GcReport) {
  return { dryRun: r.dryRun, tags: r.tags.length, manifests: r.manifests.length, linksDropped: r.linksDropped, blobs: r.blobs.length, bytes: r.bytes, durationMs: r.durationMs };
}

/** The lease one collection at a time holds, across every instance and `wharf gc` over the database. */
const GC_LEASE = 'gc';
/**
 * How long the lease lasts unless renewed (every third of it while the run goes on): an instance killed in the middle
 * of a collection blocks the others' for at most this long.
 */
export const GC_LEASE_TTL_MS = 30_000;

export class GarbageCollector {
  private running = false;

  constructor(
    private readonly blobs: BlobStore,
    private readonly store: GcMetadata,
    private readonly retention: Retention,
    private readonly options: GcOptions,
    /** where each deletion retention makes, and each run, is recorded */
    private readonly audit: AuditLog,
    /** where the one-at-a-time lease is taken (the database every instance shares) */
    private readonly leases: LeaseMetadata,
  ) {}

  /**
   * Retention, then the sweep. One run at a time across every process over the database: a second is refused
   * (CONFLICT) while the first holds the lease. Not for correctness — two runs side by side would be safe (see above)
   * — but so that retention's deletions and the reclaimed totals are one run's, and instances do not repeat the work.
   * A dry run changes nothing and takes no lease.
   */
  async collect(req: GcRequest): Promise<GcReport> {
    if (this.running) throw new RegistryError('CONFLICT', 'a garbage collection is already running on this instance');
    this.running = true;
    const dryRun = req.dryRun ?? false;
    let renewal: NodeJS.Timeout | undefined;
    const holder = `${hostname()} pid ${process.pid} ${randomBytes(4).toString('hex')}`;
    if (!dryRun) {
      let taken;
      try {
        taken = await this.leases.claim(GC_LEASE, holder, Date.now(), GC_LEASE_TTL_MS);
      } catch (e) {
        this.running = false;
        throw e;
      }
      if (taken) {
        this.running = false;
        throw new RegistryError(
          'CONFLICT',
          `a garbage collection is already running (${taken.holder}, since ${new Date(taken.acquiredAt).toISOString()}); ` +
            `if that process died, its lease runs out at ${new Date(taken.expiresAt).toISOString()}`,
        );
      }
      // A renewal that fails (the database unreachable a moment) is tried again at the next tick; the lease is long
      // enough for two to fail.
      renewal = setInterval(() => void this.leases.renew(GC_LEASE, holder, Date.now(), GC_LEASE_TTL_MS).catch(() => undefined), GC_LEASE_TTL_MS / 3);
      renewal.unref();
    }
    const started = Date.now();
    const now = req.now ?? started;
    const report: GcReport = { dryRun, trigger: req.trigger, startedAt: new Date(started).toISOString(), durationMs: 0, tags: [], manifests: [], linksDropped: 0, blobs: [], bytes: 0 };
    let error: string | null = null;
    try {
      const plan = await this.retention.plan(now);
      const done = dryRun ? plan : await this.retention.apply(plan);
      report.tags = done.tags;
      report.manifests = done.manifests;
      const swept = await this.sweep(now, dryRun, dryRun ? plan.manifests : []);
      report.linksDropped = swept.linksDropped;
      report.blobs = swept.blobs;
      report.bytes = swept.blobs.reduce((n, b) => n + b.size, 0);
      return report;
    } catch (e) {
      error = (e as Error).message;
      throw e;
    } finally {
      report.durationMs = Date.now() - started;
      clearInterval(renewal);
      if (!dryRun) {
        try {
          await this.store.recordRun({
            trigger: req.trigger,
            actor: req.actor?.name ?? null,
            started_at: started,
            finished_at: Date.now(),
            tags_deleted: report.tags.length,
            manifests_deleted: report.manifests.length,
            links_dropped: report.linksDropped,
            blobs_deleted: report.blobs.length,
            bytes_reclaimed: report.bytes,
            error,
          });
          await this.record(req.actor ?? SERVER_ACTOR, req.trigger, report, error);
        } finally {
          // Released after the run is recorded, so the next one (any instance's schedule) counts from it.
          await this.leases.release(GC_LEASE, holder).catch(() => undefined);
          this.running = false;
        }
      } else this.running = false;
    }
  }

  /** The audit rows of a run: each tag and manifest retention deleted, and the run with what it reclaimed. */
  private async record(actor: Actor, trigger: GcTrigger, report: GcReport, error: string | null): Promise<void> {
    const rows: Omit<AuditEntry, 'actor'>[] = [
      ...report.tags.map((t) => ({ action: 'tag.delete', repository: t.repository, target: t.tag, result: 'ok' as const, detail: { digest: t.digest, via: 'retention', reason: t.reason } })),
      ...report.manifests.map((m) => ({ action: 'manifest.delete', repository: m.repository, target: m.digest, result: 'ok' as const, detail: { via: 'retention', reason: m.reason } })),
      {
        action: 'gc.run',
        result: error === null ? 'ok' : 'failed',
        detail: { trigger, tags: report.tags.length, manifests: report.manifests.length, linksDropped: report.linksDropped, blobs: report.blobs.length, bytes: report.bytes, ...(error === null ? {} : { error }) },
      },
    ];
    for (const row of rows) await this.audit.record({ ...row, actor });
  }

  /** Finished runs, newest first. */
  async runs(limit = 50, before?: number): Promise<GcRun[]> {
    return (await this.store.runs(limit, before)).map(toRun);
  }

  async lastRunFinishedAt(): Promise<number | null> {
    return this.store.lastRunFinishedAt();
  }

  /** Steps 2 and 3. `doomed`: manifests a dry run pretends retention deleted. */
  private async sweep(now: number, dryRun: boolean, doomed: PlannedManifest[]): Promise<{ linksDropped: number; blobs: { digest: string; size: number }[] }> {
    const cutoff = now - this.options.grace;
    const uploading = new Set((await this.blobs.listUploads()).map((u) => u.repository));
    const references = await this.store.blobReferenceCounts();
    for (const [repository, digests] of groupBy(doomed, (m) => m.repository, (m) => m.digest)) {
      for (const r of await this.store.blobReferencesOf(repository, digests)) {
        const key = referenceKey(r.repositoryId, r.digest);
        references.set(key, (references.get(key) ?? 0) - 1);
      }
    }
    const links = await this.store.links();
    const droppable = new Set<LinkRow>(
      links.filter((l) => l.createdAt < cutoff && !uploading.has(l.repository) && !((references.get(referenceKey(l.repositoryId, l.digest)) ?? 0) > 0)),
    );
    const linked = new Set(links.filter((l) => !droppable.has(l)).map((l) => l.digest));
    const rows = await this.store.blobRows();
    const unlinked = [...rows].filter(([digest, row]) => !linked.has(digest) && row.createdAt < cutoff).map(([digest, row]) => ({ digest, size: row.size }));
    const orphans: { digest: string; size: number }[] = [];
    for await (const file of this.blobs.list()) if (!rows.has(file.digest) && file.mtimeMs < cutoff) orphans.push({ digest: file.digest, size: file.size });
    // Objects of a store that names them by upload, which no row names: a crash between an upload's last write and
    // its row, or a blob whose row was deleted but not its object. Listed with their location for a name.
    const strays: { location: string; size: number }[] = [];
    if (this.blobs.strays) for await (const s of this.blobs.strays(cutoff)) strays.push(s);

    if (dryRun) return { linksDropped: droppable.size, blobs: [...unlinked, ...orphans, ...strays.map((s) => ({ digest: s.location, size: s.size }))] };

    let linksDropped = 0;
    for (const [repositoryId, digests] of groupBy([...droppable], (l) => l.repositoryId, (l) => l.digest)) {
      linksDropped += await this.store.dropLinks(repositoryId, digests, cutoff);
    }
    // A file that cannot be deleted now is an orphan next time; its row goes either way.
    const remove = (digest: string, location: string | null) => this.blobs.delete(digest, location).then(() => true, () => false);
    const deleted = await this.store.deleteBlobs(unlinked.map((b) => b.digest), cutoff, remove);
    // An orphan has no row, hence no recorded location (a store naming objects by upload lists those as strays).
    const deletedOrphans = await this.store.deleteOrphans(orphans, (digest) => remove(digest, null));
    const deletedStrays = await this.deleteStrays(strays);
    return { linksDropped, blobs: [...deleted, ...deletedOrphans, ...deletedStrays] };
  }

  private async deleteStrays(strays: { location: string; size: number }[]): Promise<{ digest: string; size: number }[]> {
    const out: { digest: string; size: number }[] = [];
    for (const s of strays) {
      if (await this.blobs.deleteStray!(s.location).then(() => true, () => false)) out.push({ digest: s.location, size: s.size });
    }
    return out;
  }
}

function groupBy<T, K, V>(items: T[], key: (t: T) => K, value: (t: T) => V): Map<K, V[]> {
  const out = new Map<K, V[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(value(item));
    else out.set(k, [value(item)]);
  }
  return out;
}

function toRun(r: GcRunRow): GcRun {
  return {
    id: Number(r.id),
    trigger: r.trigger,
    actor: r.actor,
    startedAt: new Date(Number(r.started_at)).toISOString(),
    finishedAt: new Date(Number(r.finished_at)).toISOString(),
    tags: Number(r.tags_deleted),
    manifests: Number(r.manifests_deleted),
    linksDropped: Number(r.links_dropped),
    blobs: Number(r.blobs_deleted),
    bytes: Number(r.bytes_reclaimed),
    error: r.error,
  };
}
