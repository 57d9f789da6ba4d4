// Applies the pending schema migrations (migrations.ts) to a database.
import { Migrator, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import { migrationProvider, type Dialect } from './migrations.js';

export async function migrateToLatest(db: Kysely<Database>, dialect: Dialect): Promise<void> {
  // Migration names are reserved per feature ('0005_deploy' landed after '0007_…'): apply any that are missing.
  const { error, results } = await new Migrator({ db, provider: migrationProvider(dialect), allowUnorderedMigrations: true }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`database migration ${failed?.migrationName ?? ''} failed: ${String(error)}`);
  }
}
