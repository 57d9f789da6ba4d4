// Queries for approval requests: a release, promotion or rollback waiting for a second person, and its approval.
// A request is approved once: the status moves from pending by compare-and-set.
import type { Insertable, Kysely, Selectable } from 'kysely';
import type { ApprovalRequestsTable, Database } from './schema.js';

export type ApprovalRow = Selectable<ApprovalRequestsTable> & { environment: string };

export interface ApprovalListQuery {
  /** decided requests (approved, denied) too, not only pending ones */
  all?: boolean;
  environment?: string;
  /** a request id: only older ones */
  before?: number;
  limit?: number;
}

export class ApprovalStore {
  constructor(private readonly db: Kysely<Database>) {}

  async create(r: Omit<Insertable<ApprovalRequestsTable>, 'id' | 'status' | 'approved_by' | 'approved_at' | 'release_id'>): Promise<number> {
    const row = await this.db
      .insertInto('approval_requests')
      .values({ ...r, status: 'pending', approved_by: null, approved_at: null, release_id: null })
      .returning('id')
      .executeTakeFirstOrThrow();
    return Number(row.id);
  }

  private select() {
    return this.db
      .selectFrom('approval_requests as a')
      .innerJoin('environments as e', 'e.id', 'a.environment_id')
      .innerJoin('repositories as r', 'r.id', 'e.repository_id')
      .selectAll('a')
      .select('e.name as environment');
  }

  /** The request `id` of the app, if it is one of its environments'. */
  async get(app: string, id: number): Promise<ApprovalRow | undefined> {
    return this.select().where('r.name', '=', app).where('a.id', '=', id).executeTakeFirst();
  }

  /** Newest first; only pending ones unless `all`; `before` (a request id) and `limit` page it by keyset. */
  async list(app: string, { all = false, environment, before, limit = 100 }: ApprovalListQuery = {}): Promise<ApprovalRow[]> {
    let q = this.select().where('r.name', '=', app);
    if (!all) q = q.where('a.status', '=', 'pending');
    if (environment !== undefined) q = q.where('e.name', '=', environment);
    if (before !== undefined) q = q.where('a.id', '<', before);
    return q.orderBy('a.id', 'desc').limit(limit).execute();
  }

  /** pending → approved, once: false if someone else decided it first. */
  async claim(id: number, by: string | null): Promise<boolean> {
    return this.decide(id, 'approved', by);
  }

  /** pending → denied, once: false if it was decided meanwhile. The decider is kept where an approver would be. */
  async deny(id: number, by: string | null): Promise<boolean> {
    return this.decide(id, 'denied', by);
  }

  private async decide(id: number, status: 'approved' | 'denied', by: string | null): Promise<boolean> {
    const r = await this.db
      .updateTable('approval_requests')
      .set({ status, approved_by: by, approved_at: Date.now() })
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** The approved operation was refused (a gate, a conflict): the request waits again. */
  async unclaim(id: number): Promise<void> {
    await this.db.updateTable('approval_requests').set({ status: 'pending', approved_by: null, approved_at: null }).where('id', '=', id).execute();
  }

  async recordRelease(id: number, releaseId: number): Promise<void> {
    await this.db.updateTable('approval_requests').set({ release_id: releaseId }).where('id', '=', id).execute();
  }
}
