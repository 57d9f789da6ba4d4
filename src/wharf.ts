// Opens a Wharf data directory: the blob store, the metadata database and the domain services over them.
// Both the server and the CLI's local commands (fsck) start here.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from './config.js';
import { FsBlobStore } from './storage/fs-blob-store.js';
import { openSqlite } from './metadata/sqlite.js';
import type { MetadataStore } from './metadata/store.js';
import { Registry, type RegistryEvents } from './registry/registry.js';
import { DeliveryStore } from './metadata/delivery-store.js';
import { TagRules } from './delivery/tag-rules.js';
import { Delivery } from './delivery/releases.js';
import { TagHistory } from './delivery/tags.js';
import { Webhooks } from './webhooks/service.js';
import { withWebhooks } from './webhooks/registry-events.js';

export interface Wharf {
  config: Config;
  blobs: FsBlobStore;
  meta: MetadataStore;
  registry: Registry;
  webhooks: Webhooks;
  delivery: Delivery;
  tagHistory: TagHistory;
  close(): Promise<void>;
}

export async function openWharf(config: Config, events: RegistryEvents = {}): Promise<Wharf> {
  await mkdir(config.data, { recursive: true, mode: 0o700 });
  const blobs = new FsBlobStore(config.data);
  await blobs.init();
  const meta = await openSqlite(join(config.data, 'wharf.db'));
  const webhooks = new Webhooks(meta.db, config.webhooks);
  const deliveryStore = new DeliveryStore(meta);
  const tagRules = new TagRules(deliveryStore, config.delivery.immutableTags);
  const registry = new Registry(
    blobs,
    meta,
    { maxManifestBytes: config.registry.maxManifestBytes, tagGuard: tagRules.guard },
    withWebhooks(events, webhooks),
  );
  const delivery = new Delivery(meta, deliveryStore, {
    released: (r) =>
      webhooks.notify({
        type: 'release.created',
        repository: r.app,
        kind: r.kind,
        environment: r.environment,
        digest: r.digest,
        release: r.id,
        version: r.version,
        tag: r.tag,
        actor: r.actor,
        replaces: r.replaces,
      }),
  });
  return {
    config,
    blobs,
    meta,
    registry,
    webhooks,
    delivery,
    tagHistory: new TagHistory(meta, tagRules),
    close: async () => {
      await webhooks.stop();
      await meta.close();
    },
  };
}
