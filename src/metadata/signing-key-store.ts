// The token signing keys in the database, where every instance over it reads the same ones: the first key made
// once (of several instances starting at once, one insert wins), rotation in one transaction.
import type { Kysely, Selectable } from 'kysely';
import { RegistryError } from '../oci/errors.js';
import { inTransaction, within } from './database.js';
import type { Database, SigningKeysTable } from './schema.js';

export type SigningKeyRow = Selectable<SigningKeysTable>;

export interface NewSigningKey {
  kid: string;
  algorithm: string;
  publicJwk: string;
  privateJwk: string;
  createdAt: number;
}

export class SigningKeyStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Every key, oldest first. */
  async keys(): Promise<SigningKeyRow[]> {
    const rows = await this.db.selectFrom('signing_keys').selectAll().orderBy('seq').execute();
    return rows.map((r) => ({
      ...r,
      seq: Number(r.seq),
      created_at: Number(r.created_at),
      superseded_at: r.superseded_at === null ? null : Number(r.superseded_at),
      retired_at: r.retired_at === null ? null : Number(r.retired_at),
    }));
  }

  /** Stores `key` as the first key unless there is one already (then the caller reads the winner's). */
  async createFirst(key: NewSigningKey): Promise<void> {
    await this.db
      .insertInto('signing_keys')
      .values({ kid: key.kid, seq: 1, algorithm: key.algorithm, public_jwk: key.publicJwk, private_jwk: key.privateJwk, created_at: key.createdAt })
      .onConflict((oc) => oc.doNothing())
      .execute();
  }

  /**
   * Makes `key` the signing key: the keys before it are superseded now (their private halves wiped: they only verify
   * from now on) and, with `retire`, no longer trusted at all. Two rotations at once: one wins, the other is a conflict.
   */
  async rotate(key: NewSigningKey, retire: boolean): Promise<void> {
    try {
      await inTransaction(this.db, async (tx) => {
        const db = within(this.db, tx);
        const last = await db.selectFrom('signing_keys').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
        const now = key.createdAt;
        await db
          .updateTable('signing_keys')
          .set({ private_jwk: null, superseded_at: now })
          .where('superseded_at', 'is', null)
          .execute();
        if (retire) await db.updateTable('signing_keys').set({ retired_at: now }).where('retired_at', 'is', null).execute();
        await db
          .insertInto('signing_keys')
          .values({ kid: key.kid, seq: Number(last?.seq ?? 0) + 1, algorithm: key.algorithm, public_jwk: key.publicJwk, private_jwk: key.privateJwk, created_at: now })
          .execute();
      });
    } catch (e) {
      // The unique seq (or, on PostgreSQL, the row lock) of a rotation committed meanwhile.
      if (/unique|duplicate|could not serialize/i.test((e as Error).message)) throw new RegistryError('CONFLICT', 'another key rotation ran at the same time: list the keys and try again if needed');
      throw e;
    }
  }
}
