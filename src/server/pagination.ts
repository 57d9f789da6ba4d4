// Cursor pagination shared by every list of the management API: `?limit=&cursor=` in, `{items, next}` out,
// where `next` is an opaque cursor (null on the last page). Cursors are keyset positions, not offsets, so a
// page stays right while rows are added.
import { z } from 'zod';
import { RegistryError } from '../oci/errors.js';

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;

/** The query parameters every paginated list takes (for validation and the OpenAPI document). */
export const pageQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_LIMIT).optional().describe(`page size, 1–${MAX_LIMIT} (default ${DEFAULT_LIMIT})`),
  cursor: z.string().max(1024).optional().describe('the `next` of the previous page'),
});

/** The page query of the lists that answered up to 1,000 rows before they were paged: that bound stays. */
export const arrayPageQuery = pageQuery.extend({
  limit: z.coerce.number().int().min(1).max(1000).optional().describe(`page size, 1–1000 (default ${DEFAULT_LIMIT})`),
});

/** A point in time as a query gives it: epoch milliseconds or an ISO 8601 time with its offset. */
const time = z.union([z.coerce.number().int().nonnegative(), z.iso.datetime({ offset: true }).transform((s) => Date.parse(s))]);

/**
 * The who-and-when filters of the append-only histories (audit log, releases, deployments, tag changes), one
 * shape for all so the UI and scripts ask each the same way.
 */
export const historyFilters = {
  actor: z.string().max(256).optional().describe('only the rows of this actor (a user or token name)'),
  since: time.optional().describe('epoch milliseconds or ISO time, inclusive'),
  until: time.optional().describe('epoch milliseconds or ISO time, exclusive'),
};

export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), next: z.string().nullable().describe('cursor of the next page; null on the last') });
}

/** Parses the query string against `schema` (which should extend pageQuery): 400 with the offending parameter. */
export function parseQuery<T extends z.ZodType>(url: URL, schema: T): z.infer<T> {
  const raw: Record<string, string> = {};
  for (const [k, v] of url.searchParams) raw[k] = v;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RegistryError('INVALID', `query parameter ${issue.path.join('.') || '?'}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * A cursor names the list it pages (`list`) beside the keyset position, so a cursor of another list is refused
 * rather than read as a position that merely looks right there.
 */
export function encodeCursor(list: string, position: unknown): string {
  return Buffer.from(JSON.stringify({ l: list, p: position })).toString('base64url');
}

/** The position a cursor of `list` holds, checked against `schema`; 400 for a cursor this list did not write. */
export function decodeCursor<T extends z.ZodType>(list: string, cursor: string | undefined, schema: T): z.infer<T> | undefined {
  if (cursor === undefined) return undefined;
  let position: unknown;
  try {
    const raw = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { l?: unknown; p?: unknown } | null;
    if (raw && typeof raw === 'object' && raw.l !== list && typeof raw.l === 'string') {
      throw new RegistryError('INVALID', `invalid cursor: it pages ${raw.l}, not ${list}; pass the \`next\` of the previous page`);
    }
    if (raw && typeof raw === 'object' && raw.l === list) position = raw.p;
  } catch (e) {
    if (e instanceof RegistryError) throw e;
  }
  const parsed = position === undefined ? undefined : schema.safeParse(position);
  if (parsed?.success) return parsed.data;
  throw new RegistryError('INVALID', 'invalid cursor: pass the `next` of the previous page');
}

/**
 * Lists whose answer was a bare JSON array before they were paged keep that body (the CLI and scripts read it)
 * and carry the next page in an RFC 8288 `Link: <…?cursor=…>; rel="next"` header, as /v2's catalog does.
 */
export function linkNext(url: URL, next: string | null): Record<string, string> {
  if (next === null) return {};
  const to = new URL(url.pathname + url.search, 'http://hub.invalid');
  to.searchParams.set('cursor', next);
  return { Link: `<${to.pathname}${to.search}>; rel="next"` };
}

/**
 * Answers one page of a list whose body stays a bare array: reads `limit + 1` rows through `read`, sets the
 * `Link` header when more remain, and returns the page.
 */
export async function arrayPage<T>(
  r: { url: URL; res: { setHeader(name: string, value: string): unknown } },
  list: string,
  limit: number,
  rows: T[],
  position: (t: T) => unknown,
): Promise<T[]> {
  const page = keysetPage(list, rows, limit, position);
  for (const [k, v] of Object.entries(linkNext(r.url, page.next))) r.res.setHeader(k, v);
  return page.items;
}

/** The first `limit` rows of `rows` (read with limit + 1) and the cursor after the last, if more remain. */
export function keysetPage<T>(list: string, rows: T[], limit: number, position: (t: T) => unknown): { items: T[]; next: string | null } {
  const items = rows.slice(0, limit);
  return { items, next: rows.length > limit && items.length > 0 ? encodeCursor(list, position(items[items.length - 1]!)) : null };
}

/** Pages an in-memory list sorted by `key` (small lists: users, groups, grants). */
export function pageList<T>(list: string, items: T[], key: (t: T) => string, limit = DEFAULT_LIMIT, cursor?: string): { items: T[]; next: string | null } {
  const after = decodeCursor(list, cursor, z.string());
  const sorted = [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const start = after === undefined ? 0 : sorted.findIndex((t) => key(t) > after);
  const rest = start < 0 ? [] : sorted.slice(start);
  const page = rest.slice(0, limit);
  return { items: page, next: rest.length > limit ? encodeCursor(list, key(page[page.length - 1]!)) : null };
}

/**
 * One page of a small list read whole (targets, secrets, environments, webhook subscriptions, signers: the
 * configuration of a hub, tens of rows), answered as a bare array with a `Link` header like the lists paged
 * in SQL: sorted by `key`, the cursor holds the last key shown, so a row added or removed between two pages
 * moves no other row across the page boundary. `position` checks a cursor's key (a string or a number list).
 */
export async function keyedArrayPage<T, K extends string | number>(
  r: { url: URL; res: { setHeader(name: string, value: string): unknown } },
  list: string,
  q: { limit?: number; cursor?: string },
  rows: T[],
  key: (t: T) => K,
  position: z.ZodType<K>,
): Promise<T[]> {
  const after = decodeCursor(list, q.cursor, position);
  const order = (a: K, b: K) => (a < b ? -1 : a > b ? 1 : 0);
  const keyed = rows.map((t) => ({ t, k: key(t) })).sort((x, y) => order(x.k, y.k));
  const rest = after === undefined ? keyed : keyed.filter((x) => order(x.k, after) > 0);
  const limit = q.limit ?? DEFAULT_LIMIT;
  return (await arrayPage(r, list, limit, rest.slice(0, limit + 1), (x) => x.k)).map((x) => x.t);
}
