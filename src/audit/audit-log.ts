// The audit log: append-only rows of who (user, token, anonymous or the local CLI), from where, did what,
// to which repository, when, and how it ended. Rows are only ever inserted and read.
import type { ActorKind, AuditMetadata, AuditPageQuery, AuditQuery, AuditRecord, AuditResult } from '../metadata/metadata.js';

export type { ActorKind, AuditQuery, AuditRecord, AuditResult };

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

export class AuditLog {
  private readonly observers: ((e: AuditEntry, at: number) => void)[] = [];

  constructor(private readonly store: AuditMetadata) {}

  /** `fn` hears of each row once it is written (the server's log: one line per push, release, deploy, failed login). */
  observe(fn: (e: AuditEntry, at: number) => void): void {
    this.observers.push(fn);
  }

  async record(e: AuditEntry, at = Date.now()): Promise<void> {
    await this.store.insert({
      at,
      actor: e.actor.name,
      actorKind: e.actor.kind,
      address: e.actor.address,
      action: e.action,
      repository: e.repository ?? null,
      target: e.target ?? null,
      result: e.result,
      detail: e.detail ?? null,
    });
    for (const fn of this.observers) fn(e, at);
  }

  /**
   * One page of the log, newest first, for the API and the UI: rows older than `before` (an id, the cursor),
   * filtered by actor, action prefix, repository and time range.
   */
  page(q: AuditPageQuery): Promise<AuditRecord[]> {
    return this.store.page(q);
  }

  /** Oldest first (the order things happened), the newest `limit` rows when limited. */
  list(q: AuditQuery = {}): Promise<AuditRecord[]> {
    return this.store.list(q);
  }
}
