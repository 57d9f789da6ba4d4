// Opens the embedded SQLite metadata database (the default backend).
import BetterSqlite3 from 'better-sqlite3';
import { statSync } from 'node:fs';
import { CompiledQuery, Kysely, SqliteDialect, SqliteDriver, type DatabaseConnection, type QueryResult, type SqliteDialectConfig } from 'kysely';
import type { Database } from './schema.js';
import { MetadataStore } from './store.js';
import { RoundTrips, statementName } from './round-trips.js';

/**
 * SQLite applies its missing migrations at every open: the file belongs to one installation, `npm start` on a fresh
 * machine must just work, and an upgrade is a restart. A database from a newer Wharf is refused (SchemaTooNewError).
 */
export async function openSqlite(path: string): Promise<MetadataStore> {
  const conn = new BetterSqlite3(path);
  // WAL lets readers run beside the writer; FULL makes every committed transaction survive a crash.
  conn.pragma('journal_mode = WAL');
  conn.pragma('synchronous = FULL');
  conn.pragma('foreign_keys = ON');
  conn.pragma('busy_timeout = 5000');
  // Kysely's SQLite driver prepares every statement anew; prepared statements are reusable, so keep them.
  // A statement that may write is handed out wrapped, so this connection's writes are counted (changeStamp).
  let writes = 0;
  const statements = new Map<string, BetterSqlite3.Statement | WritingStatement>();
  const database = {
    close: () => conn.close(),
    prepare(sql: string) {
      let stmt = statements.get(sql);
      if (!stmt) {
        const prepared = conn.prepare(sql);
        stmt = prepared.readonly ? prepared : counted(prepared, () => writes++);
        if (statements.size >= 500) statements.clear();
        statements.set(sql, stmt);
      }
      return stmt;
    },
  };
  // A stamp that moves on any write: this connection's counted above (a superset of its changes: a statement that
  // may write counts even when it changed nothing), another process's through data_version. One statement per
  // call: the cached reads (manifest by tag, tags/list) ask for it on every request.
  // Counted as a statement (it is one, if in-process and about a microsecond): the one a cached read costs here.
  const roundTrips = new RoundTrips('sqlite');
  const dataVersion = conn.prepare('pragma data_version').pluck();
  const changeStamp = () => {
    roundTrips.count('data_version');
    return `${writes}:${dataVersion.get() as number}`;
  };
  const dialect = new ImmediateSqliteDialect({ database }, () => conn.inTransaction, roundTrips);
  const store = new MetadataStore(new Kysely<Database>({ dialect }), 'sqlite', changeStamp, roundTrips);
  try {
    await store.ensureSchema(path, true);
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
}

/**
 * Whether the database at `path` records no blob at all: new, or emptied — e.g. its -wal file deleted after a
 * crash, which takes every change since the last checkpoint with it. Read without writing a byte, so a database
 * that is refused stays exactly as it was for its -wal to be restored beside it.
 */
export function sqliteRecordsNoBlobs(path: string): boolean {
  try {
    statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw e;
  }
  // Even an empty file goes through SQLite: what it holds may all be in its -wal.
  let conn: BetterSqlite3.Database;
  try {
    conn = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  } catch {
    // Unreadable this way: the normal open says why, or finds it fine.
    return false;
  }
  try {
    if (!conn.prepare(`select 1 from sqlite_master where type = 'table' and name = 'blobs'`).get()) return true;
    return conn.prepare('select 1 from blobs limit 1').get() === undefined;
  } finally {
    conn.close();
  }
}

/**
 * Transactions take the write lock when they begin (BEGIN IMMEDIATE), waiting for it under busy_timeout.
 * A deferred transaction that read first fails at its first write, without waiting, when another process
 * (`wharf gc`, `wharf fsck --repair`) committed in between. Within one process nothing changes: Kysely
 * runs everything over the one connection, one transaction at a time.
 */
class ImmediateSqliteDialect extends SqliteDialect {
  constructor(
    private readonly settings: SqliteDialectConfig,
    private readonly inTransaction: () => boolean,
    private readonly roundTrips: RoundTrips,
  ) {
    super(settings);
  }

  override createDriver(): SqliteDriver {
    const inTransaction = this.inTransaction;
    const roundTrips = this.roundTrips;
    const wrapped = new WeakSet<DatabaseConnection>();
    return new (class extends SqliteDriver {
      /** Every statement through the one connection is counted (round-trips.ts), BEGIN and COMMIT included. */
      override async acquireConnection(): Promise<DatabaseConnection> {
        const connection = await super.acquireConnection();
        if (!wrapped.has(connection)) {
          wrapped.add(connection);
          const execute = connection.executeQuery.bind(connection);
          connection.executeQuery = <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
            roundTrips.count(statementName(query.sql));
            return execute<R>(query);
          };
        }
        return connection;
      }

      override async beginTransaction(connection: DatabaseConnection): Promise<void> {
        await connection.executeQuery(CompiledQuery.raw('begin immediate'));
      }

      /**
       * SQLite rolls back by itself after some errors (SQLITE_FULL, SQLITE_IOERR): a ROLLBACK then fails with "no
       * transaction is active", and that error would replace the one that says what happened (a full disk).
       */
      override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
        if (inTransaction()) await super.rollbackTransaction(connection);
      }
    })(this.settings);
  }
}

/** What Kysely's SQLite driver uses of a statement: `reader`, and `all`, `run` or `iterate` to execute it. */
interface WritingStatement {
  readonly reader: boolean;
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): BetterSqlite3.RunResult;
  iterate(...params: unknown[]): IterableIterator<unknown>;
}

/** `stmt` with `wrote` called after each execution (INSERT … RETURNING is a reader that writes, hence `all` too). */
function counted(stmt: BetterSqlite3.Statement, wrote: () => void): WritingStatement {
  return {
    reader: stmt.reader,
    all(...params) {
      try {
        return stmt.all(...params);
      } finally {
        wrote();
      }
    },
    run(...params) {
      try {
        return stmt.run(...params);
      } finally {
        wrote();
      }
    },
    *iterate(...params) {
      try {
        yield* stmt.iterate(...params);
      } finally {
        wrote();
      }
    },
  };
}
