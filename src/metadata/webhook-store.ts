// WebhookStore: subscriptions, the delivery outbox and the attempt log in the metadata database.
// Plain Kysely builders, so the same queries run on SQLite and PostgreSQL; only the outbox's claim differs.
import type { Kysely } from 'kysely';
import type { Dialect } from './migrations.js';
import type { Database, WebhookDeliveriesTable } from './schema.js';
import { within } from './database.js';
import type { Tx } from './transaction.js';

export type DeliveryStatus = WebhookDeliveriesTable['status'];

/** A subscription as shown to users: never with its secret. */
export interface Subscription {
  id: number;
  url: string;
  events: string[];
  repository: string | null;
  createdBy: string | null;
  createdAt: number;
}

export interface NewSubscription {
  url: string;
  secret: string;
  events: string[];
  repository: string | null;
  createdBy: string | null;
}

export interface WebhookDelivery {
  id: string;
  subscriptionId: number;
  event: string;
  repository: string | null;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: number | null;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: number;
  completedAt: number | null;
}

export interface DeliveryAttempt {
  attempt: number;
  at: number;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

export interface NewDelivery {
  id: string;
  subscriptionId: number;
  event: string;
  repository: string | null;
  body: string;
}

/** A delivery claimed by the dispatcher, with what it needs to send it. */
export interface DueDelivery {
  id: string;
  event: string;
  body: string;
  url: string;
  secret: string;
  attempts: number;
  budgetFrom: number;
}

export interface DeliveryFilter {
  subscriptionId?: number;
  status?: DeliveryStatus;
  event?: string;
  limit?: number;
  /** keyset position: deliveries after this one in the list's order (newest first, then id) */
  after?: { createdAt: number; id: string };
}

/** What an attempt leads to: done, another try at a time, or given up. */
export type AttemptResult = { status: 'succeeded' } | { status: 'failed' } | { status: 'pending'; nextAttemptAt: number };

const num = (v: number | string | bigint) => Number(v);
const numOrNull = (v: number | string | bigint | null) => (v === null ? null : Number(v));

const DELIVERY_COLUMNS = [
  'id',
  'subscription_id',
  'event',
  'repository',
  'status',
  'attempts',
  'next_attempt_at',
  'last_status_code',
  'last_error',
  'created_at',
  'completed_at',
] as const;

export class WebhookStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect = 'sqlite',
  ) {}

  // --- subscriptions ---------------------------------------------------------------------------

  async createSubscription(s: NewSubscription): Promise<Subscription> {
    const now = Date.now();
    const row = await this.db
      .insertInto('webhook_subscriptions')
      .values({ url: s.url, secret: s.secret, events: JSON.stringify(s.events), repository_pattern: s.repository, created_by: s.createdBy, created_at: now })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { id: num(row.id), url: s.url, events: s.events, repository: s.repository, createdBy: s.createdBy, createdAt: now };
  }

  async listSubscriptions(tx?: Tx): Promise<Subscription[]> {
    const rows = await within(this.db, tx)
      .selectFrom('webhook_subscriptions')
      .select(['id', 'url', 'events', 'repository_pattern', 'created_by', 'created_at'])
      .orderBy('id')
      .execute();
    return rows.map((r) => ({
      id: num(r.id),
      url: r.url,
      events: JSON.parse(r.events) as string[],
      repository: r.repository_pattern,
      createdBy: r.created_by,
      createdAt: num(r.created_at),
    }));
  }

  async deleteSubscription(id: number): Promise<boolean> {
    // Deleting the subscription also drops its queued deliveries (foreign key cascade): they must never be sent.
    const r = await this.db.deleteFrom('webhook_subscriptions').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  // --- the outbox ------------------------------------------------------------------------------

  async enqueue(deliveries: NewDelivery[], tx?: Tx): Promise<void> {
    if (deliveries.length === 0) return;
    const now = Date.now();
    await within(this.db, tx)
      .insertInto('webhook_deliveries')
      .values(
        deliveries.map((d) => ({
          id: d.id,
          subscription_id: d.subscriptionId,
          event: d.event,
          repository: d.repository,
          body: d.body,
          status: 'pending' as const,
          attempts: 0,
          budget_from: 0,
          next_attempt_at: now,
          last_status_code: null,
          last_error: null,
          created_at: now,
          completed_at: null,
        })),
      )
      .execute();
  }

  /**
   * Claims up to `limit` due deliveries by moving their next attempt to `leaseUntil`, so a crashed attempt comes
   * back after the lease and two dispatchers on one database never take the same row. PostgreSQL: the due rows
   * are locked with FOR UPDATE SKIP LOCKED, so instances claiming at once each take other rows (none waits, none
   * gets nothing while rows are due). SQLite has one writer at a time: a conditional update per row suffices.
   */
  async claimDue(now: number, limit: number, leaseUntil: number): Promise<DueDelivery[]> {
    return this.dialect === 'postgres' ? this.claimLocked(now, limit, leaseUntil) : this.claimConditional(now, limit, leaseUntil);
  }

  private async claimLocked(now: number, limit: number, leaseUntil: number): Promise<DueDelivery[]> {
    return this.db.transaction().execute(async (trx) => {
      const due = await trx
        .selectFrom('webhook_deliveries as d')
        .innerJoin('webhook_subscriptions as s', 's.id', 'd.subscription_id')
        .select(['d.id', 'd.event', 'd.body', 'd.attempts', 'd.budget_from', 's.url', 's.secret'])
        .where('d.status', '=', 'pending')
        .where('d.next_attempt_at', '<=', now)
        .orderBy('d.next_attempt_at')
        .limit(limit)
        // Only the deliveries' rows: a subscription is shared by many, and other instances claim its others.
        .forUpdate('d')
        .skipLocked()
        .execute();
      if (due.length === 0) return [];
      await trx
        .updateTable('webhook_deliveries')
        .set({ next_attempt_at: leaseUntil })
        .where(
          'id',
          'in',
          due.map((d) => d.id),
        )
        .execute();
      return due.map((d) => ({ id: d.id, event: d.event, body: d.body, url: d.url, secret: d.secret, attempts: num(d.attempts), budgetFrom: num(d.budget_from) }));
    });
  }

  private async claimConditional(now: number, limit: number, leaseUntil: number): Promise<DueDelivery[]> {
    return this.db.transaction().execute(async (trx) => {
      const due = await trx
        .selectFrom('webhook_deliveries as d')
        .innerJoin('webhook_subscriptions as s', 's.id', 'd.subscription_id')
        .select(['d.id', 'd.event', 'd.body', 'd.attempts', 'd.budget_from', 'd.next_attempt_at', 's.url', 's.secret'])
        .where('d.status', '=', 'pending')
        .where('d.next_attempt_at', '<=', now)
        .orderBy('d.next_attempt_at')
        .limit(limit)
        .execute();
      const claimed: DueDelivery[] = [];
      for (const d of due) {
        const r = await trx
          .updateTable('webhook_deliveries')
          .set({ next_attempt_at: leaseUntil })
          .where('id', '=', d.id)
          .where('status', '=', 'pending')
          .where('next_attempt_at', '=', d.next_attempt_at)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) !== 1) continue;
        claimed.push({ id: d.id, event: d.event, body: d.body, url: d.url, secret: d.secret, attempts: num(d.attempts), budgetFrom: num(d.budget_from) });
      }
      return claimed;
    });
  }

  /** Hands a claimed delivery back untried (the dispatcher is stopping): due again at once. */
  async release(id: string, now: number): Promise<void> {
    await this.db.updateTable('webhook_deliveries').set({ next_attempt_at: now }).where('id', '=', id).where('status', '=', 'pending').execute();
  }

  /** The earliest next attempt of any pending delivery, leased ones included. */
  async nextDueAt(): Promise<number | null> {
    const row = await this.db
      .selectFrom('webhook_deliveries')
      .select((eb) => eb.fn.min('next_attempt_at').as('next'))
      .where('status', '=', 'pending')
      .executeTakeFirst();
    return row?.next === null || row?.next === undefined ? null : Number(row.next);
  }

  /** Logs an attempt and moves the delivery on, in one transaction. */
  async recordAttempt(id: string, attempt: DeliveryAttempt, result: AttemptResult): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const r = await trx
        .updateTable('webhook_deliveries')
        .set({
          status: result.status,
          attempts: attempt.attempt,
          next_attempt_at: result.status === 'pending' ? result.nextAttemptAt : null,
          last_status_code: attempt.statusCode,
          last_error: attempt.error,
          completed_at: result.status === 'pending' ? null : attempt.at,
        })
        .where('id', '=', id)
        .executeTakeFirst();
      // Gone: its subscription was deleted while the attempt was in flight.
      if (Number(r.numUpdatedRows) === 0) return;
      await trx
        .insertInto('webhook_attempts')
        .values({ delivery_id: id, attempt: attempt.attempt, status_code: attempt.statusCode, error: attempt.error, duration_ms: attempt.durationMs, at: attempt.at })
        .execute();
    });
  }

  /** Queues a finished delivery again, due now, with a fresh retry budget; false when it is still pending. */
  async requeue(id: string, now: number): Promise<boolean> {
    const r = await this.db
      .updateTable('webhook_deliveries')
      .set((eb) => ({ status: 'pending', next_attempt_at: now, completed_at: null, budget_from: eb.ref('attempts') }))
      .where('id', '=', id)
      .where('status', '!=', 'pending')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  // --- the delivery log ------------------------------------------------------------------------

  async listDeliveries(filter: DeliveryFilter = {}): Promise<WebhookDelivery[]> {
    let q = this.db.selectFrom('webhook_deliveries').select(DELIVERY_COLUMNS).orderBy('created_at', 'desc').orderBy('id');
    if (filter.subscriptionId !== undefined) q = q.where('subscription_id', '=', filter.subscriptionId);
    if (filter.status !== undefined) q = q.where('status', '=', filter.status);
    if (filter.event !== undefined) q = q.where('event', '=', filter.event);
    const after = filter.after;
    if (after !== undefined) {
      q = q.where((eb) => eb.or([eb('created_at', '<', after.createdAt), eb.and([eb('created_at', '=', after.createdAt), eb('id', '>', after.id)])]));
    }
    const rows = await q.limit(filter.limit ?? 100).execute();
    return rows.map(toDelivery);
  }

  async delivery(id: string): Promise<(WebhookDelivery & { body: string; log: DeliveryAttempt[] }) | null> {
    const row = await this.db.selectFrom('webhook_deliveries').select([...DELIVERY_COLUMNS, 'body']).where('id', '=', id).executeTakeFirst();
    if (!row) return null;
    const log = await this.db
      .selectFrom('webhook_attempts')
      .select(['attempt', 'at', 'status_code', 'error', 'duration_ms'])
      .where('delivery_id', '=', id)
      .orderBy('id')
      .execute();
    return {
      ...toDelivery(row),
      body: row.body,
      log: log.map((a) => ({ attempt: num(a.attempt), at: num(a.at), statusCode: numOrNull(a.status_code), error: a.error, durationMs: num(a.duration_ms) })),
    };
  }
}

function toDelivery(r: Pick<WebhookDeliveriesTable, (typeof DELIVERY_COLUMNS)[number]>): WebhookDelivery {
  return {
    id: r.id,
    subscriptionId: num(r.subscription_id),
    event: r.event,
    repository: r.repository,
    status: r.status,
    attempts: num(r.attempts),
    nextAttemptAt: numOrNull(r.next_attempt_at),
    lastStatusCode: numOrNull(r.last_status_code),
    lastError: r.last_error,
    createdAt: num(r.created_at),
    completedAt: numOrNull(r.completed_at),
  };
}
