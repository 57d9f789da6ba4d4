// Opens the embedded SQLite metadata database (the default backend).
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import type { Database } from './schema.js';
import { MetadataStore } from './store.js';

export async function openSqlite(path: string): Promise<MetadataStore> {
  const conn = new BetterSqlite3(path);
  // WAL lets readers run beside the writer; FULL makes every committed transaction survive a crash.
  conn.pragma('journal_mode = WAL');
  conn.pragma('synchronous = FULL');
  conn.pragma('foreign_keys = ON');
  conn.pragma('busy_timeout = 5000');
  // Kysely's SQLite driver prepares every statement anew; prepared statements are reusable, so keep them.
  const statements = new Map<string, BetterSqlite3.Statement>();
  const database = {
    close: () => conn.close(),
    prepare(sql: string) {
      let stmt = statements.get(sql);
      if (!stmt) {
        stmt = conn.prepare(sql);
        if (statements.size >= 500) statements.clear();
        statements.set(sql, stmt);
      }
      return stmt;
    },
  };
  const store = new MetadataStore(new Kysely<Database>({ dialect: new SqliteDialect({ database }) }), 'sqlite');
  await store.migrate();
  return store;
}
