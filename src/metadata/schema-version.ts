// Which migrations a database has and lacks, and applying the missing ones: the check every start makes.
import { DEFAULT_MIGRATION_TABLE, Migrator, sql, type Kysely } from 'kysely';
import { migrationProvider, type Dialect } from './migrations.js';

/** The database was migrated by a newer Wharf: this one would misread (or damage) what it does not know. */
export class SchemaTooNewError extends Error {
  constructor(
    readonly database: string,
    readonly unknown: string[],
  ) {
    super(
      `the database ${database} has a newer schema than this Wharf knows (migration${unknown.length > 1 ? 's' : ''} ` +
        `${unknown.join(', ')}): it was upgraded by a newer version. Run that version (or newer), or restore a backup ` +
        `taken before the upgrade; this version refuses to start rather than misread it.`,
    );
  }
}

/** The database lacks migrations, and applying them was not asked for (PostgreSQL: `--migrate` or `wharf migrate`). */
export class MigrationsPendingError extends Error {
  constructor(
    readonly database: string,
    readonly pending: string[],
  ) {
    super(
      `the database ${database} lacks ${pending.length} migration${pending.length > 1 ? 's' : ''} (${pending.join(', ')}). ` +
        `Apply ${pending.length > 1 ? 'them' : 'it'} once, with every instance of the old version stopped or able to ` +
        `run on the new schema: 'wharf migrate --db URL', or start one instance with 'wharf serve --migrate'.`,
    );
  }
}

export interface SchemaState {
  /** migrations this Wharf knows and the database has not had */
  pending: string[];
  /** migrations the database has had that this Wharf does not know (a newer version's) */
  unknown: string[];
}

export async function schemaState(db: Kysely<any>, dialect: Dialect): Promise<SchemaState> {
  const known = Object.keys(await migrationProvider(dialect).getMigrations());
  const applied = await appliedMigrations(db, dialect);
  return { pending: known.filter((n) => !applied.has(n)), unknown: [...applied].filter((n) => !known.includes(n)).sort() };
}

/**
 * Refuses a schema newer than this Wharf knows; applies the missing migrations when `apply`, else refuses them
 * too. `database` names the database in the messages (a path, or a URL without its password).
 */
export async function ensureSchema(db: Kysely<any>, dialect: Dialect, database: string, apply: boolean): Promise<void> {
  const state = await schemaState(db, dialect);
  if (state.unknown.length > 0) throw new SchemaTooNewError(database, state.unknown);
  if (state.pending.length === 0) return;
  if (!apply) throw new MigrationsPendingError(database, state.pending);
  await applyMigrations(db, dialect, database);
}

/** Applies every missing migration (Kysely's migrator takes a lock: instances starting together apply them once). */
export async function applyMigrations(db: Kysely<any>, dialect: Dialect, database: string): Promise<string[]> {
  // Migration names are reserved per feature ('0005_deploy' landed after '0007_…'): apply any that are missing.
  const { error, results } = await new Migrator({ db, provider: migrationProvider(dialect), allowUnorderedMigrations: true }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    if (/previously executed migration .* is missing/.test(String(error))) throw new SchemaTooNewError(database, (await schemaState(db, dialect)).unknown);
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${String(error)}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

async function appliedMigrations(db: Kysely<any>, dialect: Dialect): Promise<Set<string>> {
  const exists =
    dialect === 'postgres'
      ? await sql<{ t: string | null }>`select to_regclass(${DEFAULT_MIGRATION_TABLE}) as t`.execute(db).then((r) => r.rows[0]?.t != null)
      : await sql`select 1 from sqlite_master where type = 'table' and name = ${DEFAULT_MIGRATION_TABLE}`.execute(db).then((r) => r.rows.length > 0);
  if (!exists) return new Set();
  const rows = await db.selectFrom(DEFAULT_MIGRATION_TABLE).select('name').execute();
  return new Set(rows.map((r: { name: string }) => r.name));
}
