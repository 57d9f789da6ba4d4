// `wharf migrate`: applies the metadata database's missing migrations (the step before starting a new version).
import { loadConfig } from '../config.js';
import { openPostgres, redactedUrl } from '../metadata/postgres.js';
import { openSqlite } from '../metadata/sqlite.js';
import { SchemaTooNewError } from '../metadata/schema-version.js';
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';
import { join } from 'node:path';

const HELP = `usage: wharf migrate [--db URL] [--data DIR] [--config FILE] [--status]

Applies the migrations this version has and the database lacks, once (instances running at the same time
apply them once: the first takes a lock). PostgreSQL is only migrated this way or by 'wharf serve --migrate';
SQLite (the default, <data>/wharf.db) also migrates by itself at every start.
  --db      postgres://USER:PASSWORD@HOST:PORT/DB (env WHARF_DB; default: SQLite in the data directory)
  --status  list the missing migrations and change nothing (exit 1 when some are missing)`;

export async function migrateCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    db: { type: 'string' },
    data: { type: 'string' },
    config: { type: 'string' },
    status: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  let config;
  try {
    config = loadConfig({ flags: { db: values.db, data: values.data, config: values.config } });
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
  if (!config.db) {
    // Opening SQLite applies what is missing (and refuses a newer schema).
    try {
      const store = await openSqlite(join(config.data, 'wharf.db'));
      await store.close();
    } catch (e) {
      if (e instanceof SchemaTooNewError) throw new CliError(e.message, 1);
      throw e;
    }
    process.stdout.write(`${join(config.data, 'wharf.db')} is up to date\n`);
    return 0;
  }
  const name = redactedUrl(config.db);
  // A checked open would refuse the very state this command is for: it looks and applies here.
  let store;
  try {
    store = await openPostgres(config.db, { poolSize: 2, migrate: false, unchecked: true });
  } catch (e) {
    throw new CliError(`cannot reach ${name}: ${(e as Error).message}`, 1);
  }
  try {
    const state = await store.schemaState();
    if (state.unknown.length > 0) throw new CliError(new SchemaTooNewError(name, state.unknown).message, 1);
    if (values.status) {
      process.stdout.write(state.pending.length === 0 ? `${name} is up to date\n` : `${name} lacks: ${state.pending.join(', ')}\n`);
      return state.pending.length === 0 ? 0 : 1;
    }
    const applied = await store.applyMigrations(name);
    process.stdout.write(applied.length === 0 ? `${name} is up to date\n` : `applied to ${name}: ${applied.join(', ')}\n`);
    return 0;
  } finally {
    await store.close();
  }
}
