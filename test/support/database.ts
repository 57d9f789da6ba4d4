// Direct SQL on a hub's metadata database, for the tests that set up what no API makes (backdated rows, a lost
// manifest) or look at rows themselves: a connection of its own, the way an operator's sqlite3 shell would be.
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { join } from 'node:path';
import type { Database } from '../../src/metadata/schema.js';

/** Runs `fn` over the metadata database of the data directory `dataDir`, then closes the connection. */
export async function onDatabase<T>(dataDir: string, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  const conn = new BetterSqlite3(join(dataDir, 'wharf.db'));
  // As the hub's own connection (metadata/sqlite.ts): the same cascades, and waiting for its write lock.
  conn.pragma('foreign_keys = ON');
  conn.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: conn }) });
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}
