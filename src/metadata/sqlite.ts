// Opens the embedded SQLite metadata database (the default backend).
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, Kysely, SqliteDialect, SqliteDriver, type DatabaseConnection, type SqliteDialectConfig } from 'kysely';
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
  // total_changes() counts this connection's writes; data_version moves when another process commits.
  const totalChanges = conn.prepare('select total_changes()').pluck();
  const dataVersion = conn.prepare('pragma data_version').pluck();
  const changeStamp = () => `${totalChanges.get() as number}:${dataVersion.get() as number}`;
  const store = new MetadataStore(new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database }) }), 'sqlite', changeStamp);
  await store.migrate();
  return store;
}

/**
 * Transactions take the write lock when they begin (BEGIN IMMEDIATE), waiting for it under busy_timeout.
 * A deferred transaction that read first fails at its first write, without waiting, when another process
 * (`wharf gc`, `wharf fsck --repair`) committed in between. Within one process nothing changes: Kysely
 * runs everything over the one connection, one transaction at a time.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly settings: SqliteDialectConfig) {
    super(settings);
  }

  override createDriver(): SqliteDriver {
    return new (class extends SqliteDriver {
      override async beginTransaction(connection: DatabaseConnection): Promise<void> {
        await connection.executeQuery(CompiledQuery.raw('begin immediate'));
      }
    })(this.settings);
  }
}
