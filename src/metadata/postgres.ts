// Opens the metadata store on PostgreSQL (`--db postgres://…`): a pool of connections shared by every instance.
import { createHash } from 'node:crypto';
import pg from 'pg';
import { CompiledQuery, Kysely, PostgresDialect, PostgresDriver, type DatabaseConnection, type QueryResult } from 'kysely';
import { RegistryError } from '../oci/errors.js';
import type { Database } from './schema.js';
import { MetadataStore } from './store.js';
import { ensureSchema } from './schema-version.js';
import { ChangeFeed } from './postgres-changes.js';
import { RoundTrips, statementName, statementTag } from './round-trips.js';

export interface PostgresOptions {
  /** connections in the pool (requests beyond wait for one) */
  poolSize: number;
  /** apply missing migrations (`serve --migrate`, `wharf migrate`); otherwise a database that lacks some is refused */
  migrate: boolean;
  /** open without looking at the schema at all (`wharf migrate`, which decides itself) */
  unchecked?: boolean;
  /** a connection error outside any request (an idle connection dropped, the listener lost) */
  onError?: (e: Error) => void;
}

/** INT8 (bigint columns, count(*)) and NUMERIC (sum of bigints): numbers, as SQLite gives; every value stays below 2^53. */
const INT8 = 20;
const NUMERIC = 1700;
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 || oid === NUMERIC ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

export function isPostgresUrl(db: string): boolean {
  return /^postgres(ql)?:\/\//i.test(db);
}

/** The URL without its password, for messages and logs. */
export function redactedUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}

export async function openPostgres(url: string, options: PostgresOptions): Promise<MetadataStore> {
  const onError = options.onError ?? (() => {});
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize, types, connectionTimeoutMillis: 30_000, Client: PreparingClient });
  // An idle connection that breaks is dropped by the pool; without a listener the error would end the process.
  pool.on('error', onError);
  const feed = new ChangeFeed(() => new pg.Client({ connectionString: url, types, keepAlive: true, application_name: 'wharf-changes' }), onError);
  const roundTrips = new RoundTrips('postgres');
  const db = new Kysely<Database>({ dialect: new CountingPostgresDialect(pool, feed, roundTrips) });
  try {
    if (!options.unchecked) await ensureSchema(db, 'postgres', redactedUrl(url), options.migrate);
    await feed.start();
  } catch (e) {
    await db.destroy();
    throw e;
  }
  return new MetadataStore(db, 'postgres', () => feed.stamp(), roundTrips);
}

/**
 * A pool connection that runs the hot queries (tagged `/* wharf:NAME *\/` by precompiled.ts) as named prepared
 * statements: parsed and planned once per connection, then only bound and executed (pg keeps track of which
 * connection has which). The name carries a hash of the text, so two texts can never share one; every other
 * statement goes as before (unnamed), so the number of statements a connection keeps is bounded by the code.
 */
class PreparingClient extends pg.Client {
  private readonly names = new Map<string, string>();

  override query(config: unknown, values?: unknown, callback?: unknown): any {
    const tag = typeof config === 'string' && Array.isArray(values) ? statementTag(config) : undefined;
    if (tag === undefined) return (super.query as (...a: unknown[]) => unknown)(config, values, callback);
    const text = config as string;
    let name = this.names.get(text);
    if (name === undefined) {
      name = `wharf_${tag}_${createHash('sha256').update(text).digest('hex').slice(0, 8)}`;
      this.names.set(text, name);
    }
    return (super.query as (...a: unknown[]) => unknown)({ name, text, values }, callback);
  }
}

/**
 * Kysely's PostgreSQL dialect, with every completed write and commit reported to the change feed (an instance
 * reads its own writes at once), every statement counted (one round trip each), and the feed stopped when the
 * store closes.
 */
class CountingPostgresDialect extends PostgresDialect {
  constructor(
    private readonly pool: pg.Pool,
    private readonly feed: ChangeFeed,
    private readonly roundTrips: RoundTrips,
  ) {
    super({ pool });
  }

  override createDriver(): PostgresDriver {
    const feed = this.feed;
    const roundTrips = this.roundTrips;
    const counted = new WeakSet<DatabaseConnection>();
    /** connections whose statements wrote since their last COMMIT */
    const dirty = new WeakSet<DatabaseConnection>();
    return new (class extends PostgresDriver {
      override async acquireConnection(): Promise<DatabaseConnection> {
        const connection = await super.acquireConnection();
        if (!counted.has(connection)) {
          counted.add(connection);
          const execute = connection.executeQuery.bind(connection);
          connection.executeQuery = async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
            const name = statementName(query.sql);
            roundTrips.count(name);
            const result = await execute<R>(query).catch((e: unknown) => {
              throw refusedValue(e) ?? e;
            });
            // A write moves the stamp when it completes and again at its COMMIT: a read between the two, on another
            // connection, saw the data before it and may have cached it under the moved stamp. A transaction that
            // wrote nothing (the webhook outbox's poll, every few seconds) leaves the caches alone.
            if (name === 'commit') {
              if (dirty.has(connection)) feed.wrote();
              dirty.delete(connection);
            } else if (wrote(name, query.sql, result)) {
              feed.wrote();
              dirty.add(connection);
            }
            return result;
          };
        }
        return connection;
      }

      override async destroy(): Promise<void> {
        await feed.stop();
        await super.destroy();
      }
    })({ pool: this.pool });
  }
}

/** Statements that change no row: reads and transaction control (a ROLLBACK changes nothing that was visible). */
const CHANGING_NOTHING = new Set(['select', 'begin', 'start', 'rollback', 'savepoint', 'release', 'show', 'listen']);

/**
 * Whether a statement may have changed a row: INSERT, UPDATE, DELETE and MERGE report the rows they touched;
 * anything else but a read or transaction control (DDL, a raw statement, a CTE) counts as a write.
 */
function wrote(name: string, sql: string, result: QueryResult<unknown>): boolean {
  if (result.numAffectedRows !== undefined) return result.numAffectedRows > 0n;
  return !CHANGING_NOTHING.has(name) && statementTag(sql) === undefined;
}

/**
 * Values PostgreSQL refuses where SQLite just finds no row (an id beyond bigint, a NUL character in a name: a
 * fuzzer's or a typo's input that got past the boundary's checks): bad input, answered as such, never a 500.
 */
const REFUSED_VALUES: Record<string, string> = {
  '22003': 'a number is out of range',
  '22021': 'a value holds a character that cannot be stored (NUL)',
  '22P02': 'a value is not of the type expected',
  '22P05': 'a value holds a character that cannot be stored',
};

function refusedValue(e: unknown): RegistryError | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  const why = typeof code === 'string' ? REFUSED_VALUES[code] : undefined;
  return why === undefined ? undefined : new RegistryError('INVALID', why);
}
