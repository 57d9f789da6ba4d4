// Turns registry events into webhook events: push (and tag.moved when a tag changed digest) and delete.
import type { RegistryEvents } from '../registry/registry.js';
import type { Webhooks } from './service.js';

/** Wraps `events` (its observers keep being called, including ones not listed here) with the webhook ones. */
export function withWebhooks(events: RegistryEvents, webhooks: Webhooks): RegistryEvents {
  return {
    ...events,
    manifestPushed(e) {
      events.manifestPushed?.(e);
      const { repository, digest, tag, previous, mediaType, actor } = e;
      webhooks.notify({ type: 'push', repository, digest, ...(tag === undefined ? {} : { tag }), mediaType, actor });
      if (tag !== undefined && previous !== null && previous !== digest) {
        webhooks.notify({ type: 'tag.moved', repository, tag, from: previous, to: digest, actor });
      }
    },
    manifestDeleted(e) {
      events.manifestDeleted?.(e);
      webhooks.notify({ type: 'delete', repository: e.repository, digest: e.digest, actor: e.actor });
    },
    tagDeleted(e) {
      events.tagDeleted?.(e);
      webhooks.notify({ type: 'delete', repository: e.repository, tag: e.tag, actor: e.actor });
    },
  };
}
