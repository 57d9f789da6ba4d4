// The webhook event catalogue, and the filters a subscription uses to choose its events.

export const EVENT_TYPES = [
  'push',
  'delete',
  'tag.moved',
  'release.created',
  'deploy.started',
  'deploy.succeeded',
  'deploy.failed',
  'deploy.rolled_back',
  'deploy.needs_operator',
  'deployment.drift',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];
export type ReleaseKind = 'release' | 'promote' | 'rollback';

/**
 * What a domain service reports. Beyond `type` and `repository` (the application for release and deploy
 * events) the fields are the event's payload, sent as they are:
 * - push: digest, tag?, mediaType;  tag.moved: tag, from, to;  delete: digest? | tag?
 * - release.created: kind, environment, digest, release id, version …
 * - deploy.*: environment, deployment id, release id, digest, reason …
 */
export type WebhookEvent =
  | ({ type: Exclude<EventType, 'release.created'>; repository: string } & Record<string, unknown>)
  | ({ type: 'release.created'; repository: string; kind: ReleaseKind } & Record<string, unknown>);

/** `push`, `deploy.*` (every event under a prefix) or `*` (everything); null when it names no known event. */
export function parseEventFilter(filter: string): string | null {
  if (filter === '*') return filter;
  if ((EVENT_TYPES as readonly string[]).includes(filter)) return filter;
  if (filter.endsWith('.*')) {
    const prefix = filter.slice(0, -1);
    if (EVENT_TYPES.some((t) => t.startsWith(prefix))) return filter;
  }
  return null;
}

export function eventMatches(filters: readonly string[], type: EventType): boolean {
  return filters.some((f) => f === '*' || f === type || (f.endsWith('.*') && type.startsWith(f.slice(0, -1))));
}
