// Which metadata backend an installation names: PostgreSQL at a URL, else SQLite in the data directory. Apart from
// the composition root (wharf.ts) so that the CLI's account verbs open the database without loading every service:
// building the whole hub was most of the CPU of `wharf user add --data DIR`.
import { join } from 'node:path';
import { openSqlite } from './sqlite.js';
import type { MetadataStore } from './store.js';

export interface MetadataLocation {
  /** a postgres:// URL; unset, SQLite in `data` */
  db?: string;
  dbPoolSize: number;
  /** the data directory (SQLite's wharf.db lives there) */
  data: string;
}

export interface MetadataOpenOptions {
  /** apply missing migrations to a PostgreSQL database (`serve --migrate`); SQLite applies them at every open */
  migrate?: boolean;
  /** errors of the database connections outside any request (PostgreSQL), for the log */
  onError?: (e: Error) => void;
}

// PostgreSQL's driver is loaded only when a URL names it: on an install that does not use it, it was a good part of
// what a start or a local CLI command spent loading modules.
export async function openMetadataStore(where: MetadataLocation, options: MetadataOpenOptions = {}): Promise<MetadataStore> {
  if (where.db) {
    const { openPostgres } = await import('./postgres.js');
    return openPostgres(where.db, { poolSize: where.dbPoolSize, migrate: options.migrate ?? false, onError: options.onError });
  }
  return openSqlite(join(where.data, 'wharf.db'));
}
