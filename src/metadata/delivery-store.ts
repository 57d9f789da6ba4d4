// Queries for environments and releases (the delivery history). Releases are append-only rows; an
// environment's current release moves only by compare-and-set, so concurrent writers cannot lose an update.
import type { Kysely, Selectable } from 'kysely';
import type { Database, EnvironmentsTable, ReleasesTable } from './schema.js';
import { within } from './database.js';
import type { Tx } from './transaction.js';
import type { HistoryMatch } from './records.js';

export type EnvironmentRow = Selectable<EnvironmentsTable>;
export type ReleaseRow = Selectable<ReleasesTable> & { environment: string };

export interface NewRelease {
  repositoryId: number;
  environmentId: number;
  digest: string;
  sourceTag: string | null;
  version: string | null;
  kind: 'release' | 'promote' | 'rollback';
  actor: string | null;
  note: string | null;
  replacesId: number | null;
  promotedFromId: number | null;
  commit?: string | null;
  pipelineRun?: string | null;
}

export interface EnvironmentSettings {
  requiresPromotionFrom: string | null;
  protected: boolean;
  autoDeploy: boolean;
  /** attestation kinds every release must carry */
  requiresAttestations: string[];
  requiresApproval: boolean;
}

function requiresColumn(kinds: string[]): string | null {
  return kinds.length === 0 ? null : JSON.stringify(kinds);
}


/** What a listing of releases may be narrowed to. */
export interface ReleaseMatch extends HistoryMatch {
  digest?: string;
  kind?: ReleasesTable['kind'];
}

export class DeliveryStore {
  constructor(private readonly db: Kysely<Database>) {}

  async createEnvironment(repositoryId: number, name: string, opts: EnvironmentSettings): Promise<EnvironmentRow> {
    await this.db
      .insertInto('environments')
      .values({
        repository_id: repositoryId,
        name,
        requires_promotion_from: opts.requiresPromotionFrom,
        protected: opts.protected ? 1 : 0,
        auto_deploy: opts.autoDeploy ? 1 : 0,
        current_release_id: null,
        created_at: Date.now(),
        requires_attestations: requiresColumn(opts.requiresAttestations),
        requires_approval: opts.requiresApproval ? 1 : 0,
      })
      .execute();
    return (await this.environmentById(repositoryId, name))!;
  }

  async updateEnvironment(id: number, opts: EnvironmentSettings): Promise<void> {
    await this.db
      .updateTable('environments')
      .set({
        requires_promotion_from: opts.requiresPromotionFrom,
        protected: opts.protected ? 1 : 0,
        auto_deploy: opts.autoDeploy ? 1 : 0,
        requires_attestations: requiresColumn(opts.requiresAttestations),
        requires_approval: opts.requiresApproval ? 1 : 0,
      })
      .where('id', '=', id)
      .execute();
  }

  private async environmentById(repositoryId: number, name: string, tx?: Tx): Promise<EnvironmentRow | undefined> {
    return within(this.db, tx).selectFrom('environments').selectAll().where('repository_id', '=', repositoryId).where('name', '=', name).executeTakeFirst();
  }

  async environment(repository: string, name: string, tx?: Tx): Promise<EnvironmentRow | undefined> {
    return within(this.db, tx)
      .selectFrom('environments as e')
      .innerJoin('repositories as r', 'r.id', 'e.repository_id')
      .selectAll('e')
      .where('r.name', '=', repository)
      .where('e.name', '=', name)
      .executeTakeFirst();
  }

  async environments(repository: string, page: { after?: number; limit?: number } = {}): Promise<EnvironmentRow[]> {
    let q = this.db
      .selectFrom('environments as e')
      .innerJoin('repositories as r', 'r.id', 'e.repository_id')
      .selectAll('e')
      .where('r.name', '=', repository);
    if (page.after !== undefined) q = q.where('e.id', '>', page.after);
    if (page.limit !== undefined) q = q.limit(page.limit);
    return q.orderBy('e.id').execute();
  }

  /** Whether `tag` names an environment of the repository (and is therefore reserved). */
  async isEnvironmentTag(repositoryId: number, tag: string, tx?: Tx): Promise<boolean> {
    return (await this.environmentById(repositoryId, tag, tx)) !== undefined;
  }

  private releaseQuery(tx?: Tx) {
    return within(this.db, tx)
      .selectFrom('releases as rel')
      .innerJoin('environments as e', 'e.id', 'rel.environment_id')
      .selectAll('rel')
      .select('e.name as environment');
  }

  async release(id: number, tx?: Tx): Promise<ReleaseRow | undefined> {
    return this.releaseQuery(tx).where('rel.id', '=', id).executeTakeFirst();
  }

  /** Newest first. */
  async releases(repository: string, environment?: string, limit?: number, before?: number, match: ReleaseMatch = {}): Promise<ReleaseRow[]> {
    let q = this.releaseQuery()
      .innerJoin('repositories as r', 'r.id', 'rel.repository_id')
      .where('r.name', '=', repository)
      .orderBy('rel.id', 'desc');
    if (environment !== undefined) q = q.where('e.name', '=', environment);
    if (before !== undefined) q = q.where('rel.id', '<', before);
    if (match.digest !== undefined) q = q.where('rel.digest', '=', match.digest);
    if (match.kind !== undefined) q = q.where('rel.kind', '=', match.kind);
    if (match.actor !== undefined) q = q.where('rel.actor', '=', match.actor);
    if (match.since !== undefined) q = q.where('rel.created_at', '>=', match.since);
    if (match.until !== undefined) q = q.where('rel.created_at', '<', match.until);
    if (limit !== undefined) q = q.limit(limit);
    return q.execute();
  }

  async insertRelease(r: NewRelease, tx: Tx): Promise<number> {
    const row = await within(this.db, tx)
      .insertInto('releases')
      .values({
        repository_id: r.repositoryId,
        environment_id: r.environmentId,
        digest: r.digest,
        source_tag: r.sourceTag,
        version: r.version,
        kind: r.kind,
        actor: r.actor,
        note: r.note,
        replaces_id: r.replacesId,
        promoted_from_id: r.promotedFromId,
        created_at: Date.now(),
        current_since: null,
        commit: r.commit ?? null,
        pipeline_run: r.pipelineRun ?? null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return Number(row.id);
  }

  /**
   * Compare-and-set of the current release; false when someone else moved it first. The release is marked as
   * having been current, and stops being the pending one if it was.
   */
  async setCurrent(environmentId: number, expected: number | null, next: number, tx: Tx): Promise<boolean> {
    const db = within(this.db, tx);
    let q = db
      .updateTable('environments')
      .set((eb) => ({ current_release_id: next, pending_release_id: eb.case().when('pending_release_id', '=', next).then(null).else(eb.ref('pending_release_id')).end() }))
      .where('id', '=', environmentId);
    q = expected === null ? q.where('current_release_id', 'is', null) : q.where('current_release_id', '=', expected);
    const r = await q.executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return false;
    await db.updateTable('releases').set({ current_since: Date.now() }).where('id', '=', next).where('current_since', 'is', null).execute();
    return true;
  }

  /** Sets (or with null clears) the environment's pending release; clearing only if it is still `only`. */
  async setPending(environmentId: number, release: number | null, tx?: Tx, only?: number): Promise<void> {
    let q = within(this.db, tx).updateTable('environments').set({ pending_release_id: release }).where('id', '=', environmentId);
    if (only !== undefined) q = q.where('pending_release_id', '=', only);
    await q.execute();
  }

  /**
   * Digests that retention and GC must keep: the current and the last `keep` releases of every environment,
   * per repository.
   */
  async protectedDigests(keep: number): Promise<{ repository: string; digest: string }[]> {
    const rows = await this.db
      .selectFrom('releases as rel')
      .innerJoin('repositories as r', 'r.id', 'rel.repository_id')
      .select(['r.name as repository', 'rel.digest', 'rel.environment_id', 'rel.id'])
      .orderBy('rel.environment_id')
      .orderBy('rel.id', 'desc')
      .execute();
    const currents = await this.db
      .selectFrom('environments as e')
      .innerJoin('repositories as r', 'r.id', 'e.repository_id')
      .innerJoin('releases as rel', 'rel.id', 'e.current_release_id')
      .select(['r.name as repository', 'rel.digest'])
      .execute();
    const seen = new Map<number, number>();
    const out = new Map<string, { repository: string; digest: string }>();
    for (const row of rows) {
      const n = seen.get(row.environment_id) ?? 0;
      if (n >= keep) continue;
      seen.set(row.environment_id, n + 1);
      out.set(`${row.repository}@${row.digest}`, { repository: row.repository, digest: row.digest });
    }
    for (const c of currents) out.set(`${c.repository}@${c.digest}`, c);
    return [...out.values()];
  }
}
