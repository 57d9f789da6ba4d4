// Queries for online garbage collection: blob links and blob rows as GC sees them, and deletions whose
// conditions the database re-checks in the statement that deletes (delivery/gc.ts has the argument).
import { PostgresAdapter, type Kysely, type Selectable, type Transaction } from 'kysely';
import type { Database, GcRunsTable } from './schema.js';
import { referenceKey } from './records.js';

export interface LinkRow {
  repositoryId: number;
  repository: string;
  digest: string;
  createdAt: number;
}

export type GcRunRow = Selectable<GcRunsTable>;
export type NewGcRun = Omit<GcRunRow, 'id'>;

/** Rows per statement: well under SQLite's bound-parameter limit, and short write locks. */
const BATCH = 500;

function batches<T>(items: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += BATCH) out.push(items.slice(i, i + BATCH));
  return out;
}

export class GcStore {
  constructor(private readonly db: Kysely<Database>) {}

  async links(): Promise<LinkRow[]> {
    const rows = await this.db
      .selectFrom('repository_blobs as rb')
      .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
      .select(['rb.repository_id', 'r.name', 'rb.digest', 'rb.created_at'])
      .execute();
    return rows.map((r) => ({ repositoryId: Number(r.repository_id), repository: r.name, digest: r.digest, createdAt: Number(r.created_at) }));
  }

  /** How many manifests of each repository reference each blob, keyed by `referenceKey`. */
  async blobReferenceCounts(): Promise<Map<string, number>> {
    const rows = await this.db
      .selectFrom('manifest_references')
      .select(['repository_id', 'target_digest', (eb) => eb.fn.countAll().as('n')])
      .where('kind', '=', 'blob')
      .groupBy(['repository_id', 'target_digest'])
      .execute();
    return new Map(rows.map((r) => [referenceKey(Number(r.repository_id), r.target_digest), Number(r.n)]));
  }

  /** The blob references of some manifests of a repository (a dry run discounts those retention would delete). */
  async blobReferencesOf(repository: string, manifests: string[]): Promise<{ repositoryId: number; digest: string }[]> {
    const out: { repositoryId: number; digest: string }[] = [];
    for (const batch of batches(manifests)) {
      const rows = await this.db
        .selectFrom('manifest_references as mr')
        .innerJoin('repositories as r', 'r.id', 'mr.repository_id')
        .select(['mr.repository_id', 'mr.target_digest'])
        .where('r.name', '=', repository)
        .where('mr.kind', '=', 'blob')
        .where('mr.manifest_digest', 'in', batch)
        .execute();
      out.push(...rows.map((r) => ({ repositoryId: Number(r.repository_id), digest: r.target_digest })));
    }
    return out;
  }

  async blobRows(): Promise<Map<string, { size: number; createdAt: number }>> {
    const rows = await this.db.selectFrom('blobs').select(['digest', 'size', 'created_at']).execute();
    return new Map(rows.map((r) => [r.digest, { size: Number(r.size), createdAt: Number(r.created_at) }]));
  }

  /**
   * PostgreSQL (READ COMMITTED): a DELETE that waited for a push's row lock re-checks only the row, with its
   * NOT EXISTS still reading the snapshot from before the push committed (its new references or link unseen).
   * Locking the rows first, in a statement of its own, waits for such a push; the DELETE after it takes a new
   * snapshot and sees what the push wrote. SQLite's single writer (BEGIN IMMEDIATE) needs none of this.
   */
  private async lockFirst(trx: Transaction<Database>, table: 'blobs' | 'repository_blobs', digests: string[], repositoryId?: number): Promise<void> {
    if (!(trx.getExecutor().adapter instanceof PostgresAdapter)) return;
    if (table === 'blobs') await trx.selectFrom('blobs').select('digest').where('digest', 'in', digests).forUpdate().execute();
    else await trx.selectFrom('repository_blobs').select('digest').where('repository_id', '=', repositoryId!).where('digest', 'in', digests).forUpdate().execute();
  }

  /** Drops links that are, at the moment of the statement, older than `cutoff` and referenced by no manifest of their repository. */
  async dropLinks(repositoryId: number, digests: string[], cutoff: number): Promise<number> {
    let dropped = 0;
    for (const batch of batches(digests)) {
      const r = await this.db.transaction().execute(async (trx) => {
        await this.lockFirst(trx, 'repository_blobs', batch, repositoryId);
        return trx
        .deleteFrom('repository_blobs')
        .where('repository_id', '=', repositoryId)
        .where('digest', 'in', batch)
        .where('created_at', '<', cutoff)
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('manifest_references as mr')
                .select('mr.target_digest')
                .where('mr.repository_id', '=', repositoryId)
                .where('mr.kind', '=', 'blob')
                .whereRef('mr.target_digest', '=', 'repository_blobs.digest'),
            ),
          ),
        )
        .executeTakeFirst();
      });
      dropped += Number(r.numDeletedRows);
    }
    return dropped;
  }

  /**
   * Deletes blob rows that are, at the moment of the statement, older than `cutoff` and linked to no
   * repository — and, in the same transaction, their files (`remove`). A commit or mount of the digest
   * writes the same row in its own transaction, so it runs wholly before or wholly after this one. A file
   * `remove` could not delete stays behind as an orphan, for the next run.
   */
  async deleteBlobs(digests: string[], cutoff: number, remove: (digest: string, location: string | null) => Promise<boolean>): Promise<{ digest: string; size: number }[]> {
    const out: { digest: string; size: number }[] = [];
    for (const batch of batches(digests)) {
      await this.db.transaction().execute(async (trx) => {
        await this.lockFirst(trx, 'blobs', batch);
        const gone = await trx
          .deleteFrom('blobs')
          .where('digest', 'in', batch)
          .where('created_at', '<', cutoff)
          .where(({ not, exists, selectFrom }) => not(exists(selectFrom('repository_blobs as rb').select('rb.digest').whereRef('rb.digest', '=', 'blobs.digest'))))
          .returning(['digest', 'size', 'location'])
          .execute();
        // The location comes with the row: looking it up in remove() would wait for this transaction's connection.
        for (const g of gone) if (await remove(g.digest, g.location)) out.push({ digest: g.digest, size: Number(g.size) });
      });
    }
    return out;
  }

  /**
   * Deletes files that have no blob row. Each is claimed first by inserting its row: a commit in flight
   * holds that row (SQLite: the write lock; PostgreSQL: the key), so a claim either waits for the commit
   * and then finds the row (and leaves the file), or wins and the commit comes after the file is gone.
   */
  async deleteOrphans(files: { digest: string; size: number }[], remove: (digest: string) => Promise<boolean>): Promise<{ digest: string; size: number }[]> {
    const out: { digest: string; size: number }[] = [];
    for (const batch of batches(files)) {
      await this.db.transaction().execute(async (trx) => {
        const claimed = await trx
          .insertInto('blobs')
          .values(batch.map((f) => ({ digest: f.digest, size: f.size, created_at: 0 })))
          .onConflict((oc) => oc.column('digest').doNothing())
          .returning('digest')
          .execute();
        if (claimed.length === 0) return;
        const size = new Map(batch.map((f) => [f.digest, f.size]));
        for (const c of claimed) if (await remove(c.digest)) out.push({ digest: c.digest, size: size.get(c.digest)! });
        await trx.deleteFrom('blobs').where('digest', 'in', claimed.map((c) => c.digest)).execute();
      });
    }
    return out;
  }

  // --- history ---------------------------------------------------------------------------------

  async recordRun(run: NewGcRun): Promise<void> {
    await this.db.insertInto('gc_runs').values(run).execute();
  }

  /** Newest first. */
  async runs(limit: number, before?: number): Promise<GcRunRow[]> {
    let q = this.db.selectFrom('gc_runs').selectAll().orderBy('id', 'desc').limit(limit);
    if (before !== undefined) q = q.where('id', '<', before);
    return q.execute();
  }

  async lastRunFinishedAt(): Promise<number | null> {
    const row = await this.db.selectFrom('gc_runs').select('finished_at').orderBy('id', 'desc').limit(1).executeTakeFirst();
    return row ? Number(row.finished_at) : null;
  }
}
