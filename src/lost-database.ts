// A database that was lost or emptied while the blob store still holds blobs (a deleted -wal after a crash): opening
// it would start a new registry over orphaned blobs, and writing to it (a migration, a new user) would spoil the -wal
// an operator can still put back. Both openWharf and the CLI's local account verbs refuse it before they write.
import { join } from 'node:path';
import { sqliteRecordsNoBlobs } from './metadata/sqlite.js';
import { FsBlobStore } from './storage/fs-blob-store.js';

/** What the refusal says: which database, and how to restore it or knowingly start over. */
export class EmptyDatabaseError extends Error {
  constructor(
    readonly database: string,
    postgres = false,
  ) {
    super(
      `the database ${database} records no blob, but the blob store holds blobs: the database was lost or emptied ` +
        (postgres
          ? `(or this is not the database these blobs belong to). Stop here and point --db at the right database, or restore it from a backup. `
          : `(for example its -wal file deleted after a crash). Stop here and restore it: put back ${database}-wal (and ` +
            `${database}-shm) from where they went, or restore ${database} from a backup. `) +
        `Only to start over with an empty database (every stored blob then an orphan that 'wharf fsck --repair' removes), run 'wharf serve --init'.`,
    );
  }
}

export async function holdsBlobs(blobs: FsBlobStore): Promise<boolean> {
  for await (const _ of blobs.list()) return true;
  return false;
}

/** SQLite in `dataDir` records no blob while the filesystem blob store there holds some: refused before any open. */
export async function refuseLostSqlite(dataDir: string): Promise<void> {
  const dbPath = join(dataDir, 'wharf.db');
  if (sqliteRecordsNoBlobs(dbPath) && (await holdsBlobs(new FsBlobStore(dataDir)))) throw new EmptyDatabaseError(dbPath);
}
