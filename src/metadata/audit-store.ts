// The audit log's rows: only ever inserted and read, newest first by page or in the order things happened.
import type { Kysely, Selectable } from 'kysely';
import type { AuditLogTable, Database } from './schema.js';

export type ActorKind = AuditLogTable['actor_kind'];
export type AuditResult = AuditLogTable['result'];

export interface AuditRecord {
  id: number;
  at: number;
  actor: string;
  actorKind: ActorKind;
  address: string | null;
  action: string;
  repository: string | null;
  target: string | null;
  result: AuditResult;
  detail: Record<string, unknown> | null;
}

export interface AuditQuery {
  repository?: string;
  since?: number;
  action?: string;
  limit?: number;
}

export interface AuditPageQuery {
  /** an id, the cursor: only rows older than it */
  before?: number;
  limit: number;
  actor?: string;
  actionPrefix?: string;
  repository?: string;
  since?: number;
  until?: number;
}

export class AuditStore {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(r: Omit<AuditRecord, 'id'>): Promise<void> {
    await this.db
      .insertInto('audit_log')
      .values({
        at: r.at,
        actor: r.actor,
        actor_kind: r.actorKind,
        address: r.address,
        action: r.action,
        repository: r.repository,
        target: r.target,
        result: r.result,
        detail: r.detail === null ? null : JSON.stringify(r.detail),
      })
      .execute();
  }

  async page(q: AuditPageQuery): Promise<AuditRecord[]> {
    let query = this.db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(q.limit);
    if (q.before !== undefined) query = query.where('id', '<', q.before);
    if (q.actor !== undefined) query = query.where('actor', '=', q.actor);
    if (q.actionPrefix !== undefined) query = query.where('action', '>=', q.actionPrefix).where('action', '<', q.actionPrefix + '\uffff');
    if (q.repository !== undefined) query = query.where('repository', '=', q.repository);
    if (q.since !== undefined) query = query.where('at', '>=', q.since);
    if (q.until !== undefined) query = query.where('at', '<', q.until);
    return (await query.execute()).map(auditRecord);
  }

  async list(q: AuditQuery = {}): Promise<AuditRecord[]> {
    let query = this.db.selectFrom('audit_log').selectAll().orderBy('id', 'desc');
    if (q.repository !== undefined) query = query.where('repository', '=', q.repository);
    if (q.since !== undefined) query = query.where('at', '>=', q.since);
    if (q.action !== undefined) query = query.where('action', '=', q.action);
    if (q.limit !== undefined) query = query.limit(q.limit);
    const rows = await query.execute();
    return rows.reverse().map(auditRecord);
  }
}

function auditRecord(r: Selectable<AuditLogTable>): AuditRecord {
  return {
    id: Number(r.id),
    at: Number(r.at),
    actor: r.actor,
    actorKind: r.actor_kind,
    address: r.address,
    action: r.action,
    repository: r.repository,
    target: r.target,
    result: r.result,
    detail: r.detail === null ? null : (JSON.parse(r.detail) as Record<string, unknown>),
  };
}
