// `wharf migrate-db`: moves an installation's metadata from SQLite (its data directory) into an empty PostgreSQL database.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseMoveError, moveSqliteToPostgres } from '../metadata/database-move.js';
import { isPostgresUrl, redactedUrl } from '../metadata/postgres.js';
import { SchemaTooNewError } from '../metadata/schema-version.js';
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';

const HELP = `usage: wharf migrate-db --from sqlite:DATA_DIR --to postgres://USER:PASSWORD@HOST:PORT/DB

Copies every table of DATA_DIR/wharf.db (repositories, manifests, tags and their history, releases,
environments, deployments, users and tokens, audit rows, …) into an empty PostgreSQL database, applying
its migrations first, then reads every row back from both and compares them. A database holding any row is
refused; on a failure nothing is left in it. Stop the server first: rows written meanwhile would not move.
The blobs stay where they are: start the servers with --data DATA_DIR --db postgres://… afterwards.`;

export async function migrateDbCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    from: { type: 'string' },
    to: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  if (!values.from?.startsWith('sqlite:')) throw new CliError('--from sqlite:DATA_DIR is required (the data directory holding wharf.db)', 2);
  if (!values.to || !isPostgresUrl(values.to)) throw new CliError('--to postgres://USER:PASSWORD@HOST:PORT/DB is required', 2);
  const file = join(values.from.slice('sqlite:'.length), 'wharf.db');
  if (!existsSync(file)) throw new CliError(`no Wharf database at ${file}`, 2);
  const name = redactedUrl(values.to);
  try {
    const moved = await moveSqliteToPostgres(file, values.to, (t) => process.stdout.write(`${t.table}: ${t.rows} rows copied and verified\n`));
    const rows = moved.reduce((n, t) => n + t.rows, 0);
    process.stdout.write(`moved ${rows} rows in ${moved.length} tables from ${file} to ${name}\n`);
    return 0;
  } catch (e) {
    if (e instanceof DatabaseMoveError || e instanceof SchemaTooNewError) throw new CliError(e.message, 1);
    throw new CliError(`cannot move to ${name}: ${(e as Error).message}`, 1);
  }
}
