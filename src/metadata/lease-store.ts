// Leases: work that one instance at a time does (garbage collection), claimed in the database every instance
// shares. A lease runs out at expires_at unless its holder renews it, so a holder that died blocks nobody for long.
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface LeaseHolder {
  holder: string;
  acquiredAt: number;
  expiresAt: number;
}

export class LeaseStore {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * Takes the lease `name` for `holder` until `now + ttlMs`, if it is free or has run out (one statement: of two
   * instances claiming at once, one wins). Returns null when taken, else who holds it.
   */
  async claim(name: string, holder: string, now: number, ttlMs: number): Promise<LeaseHolder | null> {
    const r = await this.db
      .insertInto('leases')
      .values({ name, holder, acquired_at: now, expires_at: now + ttlMs })
      .onConflict((oc) =>
        oc
          .column('name')
          .doUpdateSet({ holder, acquired_at: now, expires_at: now + ttlMs })
          .where('leases.expires_at', '<=', now),
      )
      .executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0n) > 0) return null;
    const row = await this.db.selectFrom('leases').selectAll().where('name', '=', name).executeTakeFirst();
    // Released between the two statements: report it free-but-busy once; the caller's next claim gets it.
    return { holder: row?.holder ?? 'unknown', acquiredAt: Number(row?.acquired_at ?? now), expiresAt: Number(row?.expires_at ?? now) };
  }

  /** Moves the lease's end on; false when `holder` lost it (it ran out and someone else took it). */
  async renew(name: string, holder: string, now: number, ttlMs: number): Promise<boolean> {
    const r = await this.db.updateTable('leases').set({ expires_at: now + ttlMs }).where('name', '=', name).where('holder', '=', holder).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async release(name: string, holder: string): Promise<void> {
    await this.db.deleteFrom('leases').where('name', '=', name).where('holder', '=', holder).execute();
  }
}
