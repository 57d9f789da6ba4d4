// Opens a Wharf data directory: the blob store, the metadata database and the domain services over them.
// Both the server and the CLI's local commands (fsck) start here.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from './config.js';
import { FsBlobStore } from './storage/fs-blob-store.js';
import { openSqlite } from './metadata/sqlite.js';
import type { MetadataStore } from './metadata/store.js';
import { Registry, type RegistryEvents } from './registry/registry.js';

export interface Wharf {
  config: Config;
  blobs: FsBlobStore;
  meta: MetadataStore;
  registry: Registry;
  close(): Promise<void>;
}

export async function openWharf(config: Config, events: RegistryEvents = {}): Promise<Wharf> {
  await mkdir(config.data, { recursive: true, mode: 0o700 });
  const blobs = new FsBlobStore(config.data);
  await blobs.init();
  const meta = await openSqlite(join(config.data, 'wharf.db'));
  const registry = new Registry(blobs, meta, { maxManifestBytes: config.registry.maxManifestBytes }, events);
  return {
    config,
    blobs,
    meta,
    registry,
    close: () => meta.close(),
  };
}
