// Read models for browsing (the web UI's lists): repositories with tag count, stored size and last push, and
// a repository's tags with their manifests, one keyset page at a time.
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface RepositorySummary {
  name: string;
  tagCount: number;
  /** bytes of the distinct blobs the repository holds */
  size: number;
  /** when a tag last moved; null for a repository without tags */
  lastPush: number | null;
}

export interface TagSummary {
  name: string;
  digest: string;
  updatedAt: number;
  mediaType: string;
  manifestSize: number;
  body: Buffer;
  /** who moved the tag here last (from the tag history) */
  pushedBy: string | null;
}

export type TagOrder = { by: 'name'; after?: string } | { by: 'pushed'; after?: { at: number; name: string } };

/** `prefix` as a range on an indexed text column (LIKE would need escaping and skip the index). */
const upperBound = (prefix: string) => prefix + '\uffff';

export class BrowseStore {
  constructor(private readonly db: Kysely<Database>) {}

  async repositories(q: { prefix?: string; after?: string; limit: number }): Promise<RepositorySummary[]> {
    let query = this.db
      .selectFrom('repositories as r')
      .select((eb) => [
        'r.name',
        eb.selectFrom('tags as t').whereRef('t.repository_id', '=', 'r.id').select((e) => e.fn.countAll<number>().as('n')).as('tag_count'),
        eb.selectFrom('tags as t').whereRef('t.repository_id', '=', 'r.id').select((e) => e.fn.max('t.updated_at').as('m')).as('last_push'),
        eb
          .selectFrom('repository_blobs as rb')
          .innerJoin('blobs as b', 'b.digest', 'rb.digest')
          .whereRef('rb.repository_id', '=', 'r.id')
          .select(sql<number>`coalesce(sum(b.size), 0)`.as('s'))
          .as('size'),
      ])
      .orderBy('r.name')
      .limit(q.limit);
    if (q.prefix) query = query.where('r.name', '>=', q.prefix).where('r.name', '<', upperBound(q.prefix));
    if (q.after !== undefined) query = query.where('r.name', '>', q.after);
    return (await query.execute()).map((r) => ({
      name: r.name,
      tagCount: Number(r.tag_count ?? 0),
      size: Number(r.size ?? 0),
      lastPush: r.last_push === null || r.last_push === undefined ? null : Number(r.last_push),
    }));
  }

  /** Null when the repository does not exist. */
  async tags(repository: string, q: { prefix?: string; order: TagOrder; limit: number }): Promise<TagSummary[] | null> {
    const repo = await this.db.selectFrom('repositories').select('id').where('name', '=', repository).executeTakeFirst();
    if (!repo) return null;
    let query = this.db
      .selectFrom('tags as t')
      .innerJoin('manifests as m', (j) => j.onRef('m.repository_id', '=', 't.repository_id').onRef('m.digest', '=', 't.digest'))
      .select((eb) => [
        't.name',
        't.digest',
        't.updated_at',
        'm.media_type',
        'm.size',
        'm.body',
        eb
          .selectFrom('tag_history as h')
          .whereRef('h.repository_id', '=', 't.repository_id')
          .whereRef('h.tag', '=', 't.name')
          .select('h.actor')
          .orderBy('h.id', 'desc')
          .limit(1)
          .as('pushed_by'),
      ])
      .where('t.repository_id', '=', repo.id)
      .limit(q.limit);
    if (q.prefix) query = query.where('t.name', '>=', q.prefix).where('t.name', '<', upperBound(q.prefix));
    const o = q.order;
    if (o.by === 'name') {
      query = query.orderBy('t.name');
      if (o.after !== undefined) query = query.where('t.name', '>', o.after);
    } else {
      query = query.orderBy('t.updated_at', 'desc').orderBy('t.name');
      const a = o.after;
      if (a !== undefined) query = query.where((eb) => eb.or([eb('t.updated_at', '<', a.at), eb.and([eb('t.updated_at', '=', a.at), eb('t.name', '>', a.name)])]));
    }
    return (await query.execute()).map((r) => ({
      name: r.name,
      digest: r.digest,
      updatedAt: Number(r.updated_at),
      mediaType: r.media_type,
      manifestSize: Number(r.size),
      body: Buffer.from(r.body),
      pushedBy: r.pushed_by ?? null,
    }));
  }

  /** The bodies of manifests of one repository (an index's children, for their sizes and platforms). */
  async manifestBodies(repository: string, digests: string[]): Promise<Map<string, { mediaType: string; body: Buffer }>> {
    const out = new Map<string, { mediaType: string; body: Buffer }>();
    if (digests.length === 0) return out;
    const rows = await this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select(['m.digest', 'm.media_type', 'm.body'])
      .where('r.name', '=', repository)
      .where('m.digest', 'in', digests)
      .execute();
    for (const r of rows) out.set(r.digest, { mediaType: r.media_type, body: Buffer.from(r.body) });
    return out;
  }
}
