// Failed-login counters in the database, so a delay started by failures on one instance holds on every instance
// (auth/login-limiter.ts does the arithmetic; here only counting that two instances cannot lose).
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { Database } from './schema.js';
import { precompile, type Precompiled } from './precompiled.js';

export interface LoginFailureRow {
  key: string;
  failures: number;
  last: number;
  until: number;
}

export class LoginFailureStore {
  /**
   * Named (`login_delays` in wharf_db_queries_total): every instance sends it at most once a second while logins
   * come (auth/login-limiter.ts), a cost per instance, not per request, that the round-trip counts tell apart.
   */
  private readonly delays: Precompiled<[number], { key: string; failures: number; last_at: number; until_at: number }>;

  constructor(private readonly db: Kysely<Database>) {
    this.delays = precompile(db, 'login_delays', (now: number) => db.selectFrom('login_failures').selectAll().where('until_at', '>', now), 1);
  }

  async get(keys: string[]): Promise<LoginFailureRow[]> {
    if (keys.length === 0) return [];
    const rows = await this.db.selectFrom('login_failures').selectAll().where('key', 'in', keys).execute();
    return rows.map(toRow);
  }

  /**
   * Counts one failure of `key` at `now` in one statement (an increment, so failures on two instances at once are both
   * counted), starting again from one when the earlier ones are forgotten (older than `windowMs` and no delay running).
   */
  async count(key: string, now: number, windowMs: number): Promise<LoginFailureRow> {
    const forgotten = sql<boolean>`login_failures.last_at <= ${now - windowMs} and login_failures.until_at <= ${now}`;
    const row = await this.db
      .insertInto('login_failures')
      .values({ key, failures: 1, last_at: now, until_at: 0 })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet({
          failures: sql<number>`case when ${forgotten} then 1 else login_failures.failures + 1 end`,
          until_at: sql<number>`case when ${forgotten} then 0 else login_failures.until_at end`,
          last_at: now,
        }),
      )
      .returningAll()
      .executeTakeFirstOrThrow();
    return toRow(row);
  }

  /** Starts a delay until `until`, unless a longer one runs already. */
  async delay(key: string, until: number): Promise<void> {
    await this.db.updateTable('login_failures').set({ until_at: until }).where('key', '=', key).where('until_at', '<', until).execute();
  }

  async clear(key: string): Promise<void> {
    await this.db.deleteFrom('login_failures').where('key', '=', key).execute();
  }

  /** The counters whose delay runs at `now` (what every instance must refuse meanwhile). */
  async delayed(now: number): Promise<LoginFailureRow[]> {
    return (await this.delays(now)).map(toRow);
  }

  /** Removes counters forgotten by `now` (nothing in them counts any more). */
  async prune(now: number, windowMs: number): Promise<void> {
    await this.db.deleteFrom('login_failures').where('last_at', '<=', now - windowMs).where('until_at', '<=', now).execute();
  }
}

function toRow(r: { key: string; failures: number; last_at: number; until_at: number }): LoginFailureRow {
  return { key: r.key, failures: Number(r.failures), last: Number(r.last_at), until: Number(r.until_at) };
}
