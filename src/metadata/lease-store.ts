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
    for (let attempt = 1; ; attempt++) {
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
      if (row) return { holder: row.holder, acquiredAt: Number(row.acquired_at), expiresAt: Number(row.expires_at) };
      // Released between the two statements: the lease is free now, so claim it again. Each further miss means
      // another holder came and went in between; after three, report it busy rather than loop.
      if (attempt === 3) return { holder: 'another instance, just released', acquiredAt: now, expiresAt: now };
    }
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
