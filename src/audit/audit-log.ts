// The audit log: append-only rows of who (user, token, anonymous or the local CLI), from where, did what,
// to which repository, when, and how it ended. Rows are only ever inserted and read.
import type { Kysely, Selectable } from 'kysely';
import type { AuditLogTable, Database } from '../metadata/schema.js';

export type ActorKind = AuditLogTable['actor_kind'];
export type AuditResult = AuditLogTable['result'];

/** Who acts: a user, a robot token, nobody in particular, or the operator at the local CLI. */
export interface Actor {
  name: string;
  kind: ActorKind;
  /** client address; null for the local CLI */
  address: string | null;
}

export interface AuditEntry {
  actor: Actor;
  /** e.g. manifest.push, tag.move, tag.delete, login.failure, grant.add, token.create */
  action: string;
  repository?: string | null;
  /** the tag, digest, user, token or grant acted on */
  target?: string | null;
  result: AuditResult;
  detail?: Record<string, unknown>;
}

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

export class AuditLog {
  private readonly observers: ((e: AuditEntry, at: number) => void)[] = [];

  constructor(private readonly db: Kysely<Database>) {}

  /** `fn` hears of each row once it is written (the server's log: one line per push, release, deploy, failed login). */
  observe(fn: (e: AuditEntry, at: number) => void): void {
    this.observers.push(fn);
  }

  async record(e: AuditEntry, at = Date.now()): Promise<void> {
    await this.db
      .insertInto('audit_log')
      .values({
        at,
        actor: e.actor.name,
        actor_kind: e.actor.kind,
        address: e.actor.address,
        action: e.action,
        repository: e.repository ?? null,
        target: e.target ?? null,
        result: e.result,
        detail: e.detail === undefined ? null : JSON.stringify(e.detail),
      })
      .execute();
    for (const fn of this.observers) fn(e, at);
  }

  /**
   * One page of the log, newest first, for the API and the UI: rows older than `before` (an id, the cursor),
   * filtered by actor, action prefix, repository and time range.
   */
  async page(q: { before?: number; limit: number; actor?: string; actionPrefix?: string; repository?: string; since?: number; until?: number }): Promise<AuditRecord[]> {
    let query = this.db.selectFrom('audit_log').selectAll().orderBy('id', 'desc').limit(q.limit);
    if (q.before !== undefined) query = query.where('id', '<', q.before);
    if (q.actor !== undefined) query = query.where('actor', '=', q.actor);
    if (q.actionPrefix !== undefined) query = query.where('action', '>=', q.actionPrefix).where('action', '<', q.actionPrefix + '\uffff');
    if (q.repository !== undefined) query = query.where('repository', '=', q.repository);
    if (q.since !== undefined) query = query.where('at', '>=', q.since);
    if (q.until !== undefined) query = query.where('at', '<', q.until);
    return (await query.execute()).map(auditRecord);
  }

  /** Oldest first (the order things happened), the newest `limit` rows when limited. */
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
