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

export function encodeCursor(position: unknown): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

/** The position a cursor holds, checked against `schema`; 400 for a cursor this server did not write. */
export function decodeCursor<T extends z.ZodType>(cursor: string | undefined, schema: T): z.infer<T> | undefined {
  if (cursor === undefined) return undefined;
  try {
    const parsed = schema.safeParse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    if (parsed.success) return parsed.data;
  } catch {
    // fall through
  }
  throw new RegistryError('INVALID', 'invalid cursor: pass the `next` of the previous page');
}

/** Pages an in-memory list sorted by `key` (small lists: users, groups, grants). */
export function pageList<T>(items: T[], key: (t: T) => string, limit = DEFAULT_LIMIT, cursor?: string): { items: T[]; next: string | null } {
  const after = decodeCursor(cursor, z.string());
  const sorted = [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const start = after === undefined ? 0 : sorted.findIndex((t) => key(t) > after);
  const rest = start < 0 ? [] : sorted.slice(start);
  const page = rest.slice(0, limit);
  return { items: page, next: rest.length > limit ? encodeCursor(key(page[page.length - 1]!)) : null };
}
