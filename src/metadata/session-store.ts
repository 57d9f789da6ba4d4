// Browser sessions in the metadata database: rows keyed by the SHA-256 of the cookie's id, with their expiry.
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface SessionRow {
  idHash: string;
  user: string;
  binding: string;
  address: string | null;
  createdAt: number;
  expiresAt: number;
}

export class SessionStore {
  constructor(private readonly db: Kysely<Database>) {}

  async add(row: SessionRow): Promise<void> {
    await this.db
      .insertInto('browser_sessions')
      .values({ id_hash: row.idHash, user_name: row.user, binding: row.binding, address: row.address, created_at: row.createdAt, expires_at: row.expiresAt })
      .execute();
  }

  async find(idHash: string): Promise<SessionRow | undefined> {
    const r = await this.db.selectFrom('browser_sessions').selectAll().where('id_hash', '=', idHash).executeTakeFirst();
    return (
      r && {
        idHash: r.id_hash,
        user: r.user_name,
        binding: r.binding,
        address: r.address,
        createdAt: Number(r.created_at),
        expiresAt: Number(r.expires_at),
      }
    );
  }

  async remove(idHash: string): Promise<boolean> {
    const r = await this.db.deleteFrom('browser_sessions').where('id_hash', '=', idHash).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Ends every session of a user (signed out everywhere). */
  async removeUser(user: string): Promise<number> {
    const r = await this.db.deleteFrom('browser_sessions').where('user_name', '=', user).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async removeExpired(now: number): Promise<number> {
    const r = await this.db.deleteFrom('browser_sessions').where('expires_at', '<=', now).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
