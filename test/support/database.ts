// The metadata database of a test Wharf: SQLite in its data directory (default), or, with WHARF_TEST_DB=postgres,
// a fresh PostgreSQL database of its own on the cluster WHARF_TEST_POSTGRES names (scripts/postgres.sh starts one).
// So the same test files run on either backend.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Kysely } from 'kysely';
import type { Database } from '../../src/metadata/schema.js';
import type { MetadataStore } from '../../src/metadata/store.js';

// The drivers and the stores are imported where they are used: every end-to-end file imports this module (through
// server.ts), and loading kysely, pg, better-sqlite3 and the metadata modules up front cost each of them ~0.4 CPU s
// on Node 20 for what most never call.
const pgDriver = async () => (await import('pg')).default;

/** Whether this run's test Wharfs keep their metadata on PostgreSQL. */
export const onPostgres = process.env.WHARF_TEST_DB === 'postgres';

/** The admin URL of the test cluster (may CREATE DATABASE); fails loudly when a PostgreSQL run has none. */
export function postgresAdminUrl(): string {
  const url = process.env.WHARF_TEST_POSTGRES;
  if (!url) throw new Error('WHARF_TEST_DB=postgres needs WHARF_TEST_POSTGRES (start a cluster: scripts/postgres.sh start DIR PORT)');
  return url;
}

/**
 * Whether tests that need PostgreSQL itself can run: false, or the reason they are skipped (pass it to `skip`).
 * Under CI=true a missing cluster fails instead.
 */
export function postgresMissing(): string | false {
  if (process.env.WHARF_TEST_POSTGRES) return false;
  const reason = 'no PostgreSQL: set WHARF_TEST_POSTGRES (scripts/postgres.sh start DIR PORT prints it)';
  if (process.env.CI === 'true') throw new Error(`CI=true but ${reason}`);
  return reason;
}

/** Databases made for data directories, by directory: a restart over the same directory finds its metadata again. */
const made = new Map<string, Promise<string>>();

/** A new, empty database on the test cluster (or a copy of `template`); its URL. */
export async function createTestDatabase(template?: string): Promise<string> {
  const admin = postgresAdminUrl();
  const name = `wharf_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const pg = await pgDriver();
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`create database ${name}${template ? ` template ${template}` : ''}`);
  } finally {
    await client.end();
  }
  return databaseUrl(name);
}

function databaseUrl(name: string): string {
  const url = new URL(postgresAdminUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * A database on the test cluster that the real migrations (metadata/migrations.ts, through openPostgres) brought to
 * the current schema, made once per cluster and migrations file: each test Wharf's database is a copy of it, which
 * takes PostgreSQL a fraction of the second or more that running every migration again takes (hundreds of test
 * Wharfs in a CI run). Tests of the migrations themselves start from createTestDatabase() instead.
 */
let migratedTemplate: Promise<string> | undefined;
function migratedTemplateName(): Promise<string> {
  migratedTemplate ??= (async () => {
    const migrations = readFileSync(fileURLToPath(new URL('../../src/metadata/migrations.js', import.meta.url)));
    const key = createHash('sha256').update(migrations).digest('hex').slice(0, 16);
    const name = `wharf_template_${key}`;
    const [pg, { openPostgres }] = await Promise.all([pgDriver(), import('../../src/metadata/postgres.js')]);
    const client = new pg.Client({ connectionString: postgresAdminUrl() });
    await client.connect();
    try {
      // Both CI suites (and any file running beside) may ask at once: one makes it, under a lock the others wait on.
      await client.query('select pg_advisory_lock(hashtext($1))', [name]);
      const exists = await client.query('select 1 from pg_database where datname = $1', [name]);
      if (exists.rowCount === 0) {
        // Made under another name and renamed when complete: a run killed midway leaves no half-migrated template.
        const building = `wharf_test_template_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
        await client.query(`create database ${building}`);
        try {
          await (await openPostgres(databaseUrl(building), { poolSize: 1, migrate: true })).close();
          await client.query(`alter database ${building} rename to ${name}`);
        } catch (e) {
          await client.query(`drop database if exists ${building} with (force)`);
          throw e;
        }
      }
      await client.query('select pg_advisory_unlock(hashtext($1))', [name]);
    } finally {
      await client.end();
    }
    return name;
  })();
  return migratedTemplate;
}

/** A new database on the test cluster already at the current schema (a copy of the migrated template); its URL. */
export async function createMigratedTestDatabase(): Promise<string> {
  return createTestDatabase(await migratedTemplateName());
}

export async function dropTestDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  if (!/^wharf_test_\w+$/.test(name)) throw new Error(`refusing to drop ${name}: not a test database`);
  const pg = await pgDriver();
  const client = new pg.Client({ connectionString: postgresAdminUrl() });
  await client.connect();
  try {
    await client.query(`drop database if exists ${name} with (force)`);
  } finally {
    await client.end();
  }
}

/**
 * The WHARF_* environment that points a Wharf over `dataDir` at its metadata database: nothing on SQLite (the
 * file lives in the directory), WHARF_DB on PostgreSQL (the same database every time for one directory).
 */
export async function databaseEnv(dataDir: string): Promise<Record<string, string>> {
  if (!onPostgres) return {};
  let url = made.get(dataDir);
  if (!url) {
    // Migrated at once, as an operator's `wharf migrate` would: CLI commands (fsck, user) refuse a bare database.
    url = migratedTemplateName().then((template) => createTestDatabase(template));
    made.set(dataDir, url);
  }
  return { WHARF_DB: await url };
}

/** Drops the database made for `dataDir` (when its directory is removed). */
export async function forgetDatabase(dataDir: string): Promise<void> {
  const url = made.get(dataDir);
  if (!url) return;
  made.delete(dataDir);
  await dropTestDatabase(await url);
}

/**
 * The metadata store a test opens directly where it would open `<dir>/wharf.db`: that file on SQLite, the
 * directory's own database on PostgreSQL (migrated). Closing the store does not drop it: forgetDatabase does.
 */
export async function openTestStore(sqliteFile: string): Promise<MetadataStore> {
  if (!onPostgres) return (await import('../../src/metadata/sqlite.js')).openSqlite(sqliteFile);
  const { WHARF_DB } = await databaseEnv(dirname(sqliteFile));
  return (await import('../../src/metadata/postgres.js')).openPostgres(WHARF_DB!, { poolSize: 5, migrate: false });
}

// A test that forgot (or failed before) its clean-up leaves no database behind in a long-lived cluster.
process.on('beforeExit', () => {
  if (made.size === 0) return;
  const dirs = [...made.keys()];
  void Promise.all(dirs.map((d) => forgetDatabase(d).catch(() => {})));
});

/**
 * Runs `fn` over the metadata database of the data directory `dataDir` through a connection of its own (the way an
 * operator's sqlite3 or psql shell would), for tests that set up what no API makes (backdated rows, a lost
 * manifest) or look at rows themselves; then closes the connection.
 */
export async function onDatabase<T>(dataDir: string, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  const { Kysely, PostgresDialect, SqliteDialect } = await import('kysely');
  let db: Kysely<Database>;
  if (onPostgres) {
    const { WHARF_DB } = await databaseEnv(dataDir);
    const pg = await pgDriver();
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: WHARF_DB, max: 1 }) }) });
  } else {
    const { default: BetterSqlite3 } = await import('better-sqlite3');
    const conn = new BetterSqlite3(join(dataDir, 'wharf.db'));
    // As the hub's own connection (metadata/sqlite.ts): the same cascades, and waiting for its write lock.
    conn.pragma('foreign_keys = ON');
    conn.pragma('busy_timeout = 5000');
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: conn }) });
  }
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}
