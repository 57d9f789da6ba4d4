// Registry metadata: repositories, blobs and their links, manifests with their references, tags with their
// history. Over Kysely, so the same queries run on SQLite (default, embedded) and PostgreSQL; the hot reads are
// precompiled and two of them answered from the read caches.
import { PostgresAdapter, type Kysely } from 'kysely';
import { RegistryError } from '../oci/errors.js';
import type { Database } from './schema.js';
import { precompile } from './precompiled.js';
import { within, asTx, type Db } from './database.js';
import type { Tx } from './transaction.js';
import type { HistoryMatch } from './records.js';
import { BlobLinkCache, ManifestCache, TagListCache, type StoredManifest } from './read-cache.js';

export type { StoredManifest };

export interface ManifestRecord {
  digest: string;
  mediaType: string;
  artifactType: string | null;
  subjectDigest: string | null;
  body: Buffer;
  blobs: string[];
  children: string[];
}

export interface ReferrerRow {
  digest: string;
  mediaType: string;
  artifactType: string | null;
  size: number;
  body: Buffer;
}

export interface TagChange {
  /** the change's position in the history (cursor pages keep to it) */
  id: number;
  repository: string;
  tag: string;
  oldDigest: string | null;
  newDigest: string | null;
  actor: string | null;
  at: number;
}

/**
 * Decides, inside the tag-writing transaction, whether a tag may move from `current` to `digest` (null:
 * the tag is being deleted) — immutable versions, reserved environment tags; throws a RegistryError to refuse.
 * `tx` is that transaction, for the guard's own reads.
 */
export type TagGuard = (change: { repository: string; repositoryId: number; tag: string; digest: string | null; current: string | null; tx: Tx }) => Promise<void> | void;

export class RegistryStore {
  /** The queries on the registry's hot paths, compiled once. */
  private readonly hot;

  /** Full tag lists by repository id, valid while `changeStamp` is unchanged. */
  private readonly tagLists = new TagListCache();

  /** Manifests (or their absence) by repository and tag, valid while `changeStamp` is unchanged. */
  private readonly taggedManifests = new ManifestCache();

  /** Manifests by repository and digest (a pull by digest, an index's children), likewise. */
  private readonly manifestsByDigest = new ManifestCache();

  /** Blobs linked to repositories, with their size (every blob GET and HEAD), likewise. */
  private readonly blobLinks = new BlobLinkCache();

  constructor(
    private readonly db: Kysely<Database>,
    /**
     * A value that changes whenever anything in the database may have changed, through this connection or any
     * other process's (SQLite: total_changes() and data_version). Without one, nothing is cached.
     */
    private readonly changeStamp?: () => string,
  ) {
    this.hot = {
      repositoryId: precompile(db, 'repository_id', (name: string) => db.selectFrom('repositories').select('id').where('name', '=', name), 1),
      linkedBlob: precompile(
        db,
        'linked_blob',
        (repository: string, digest: string) =>
          db
            .selectFrom('repository_blobs as rb')
            .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
            .innerJoin('blobs as b', 'b.digest', 'rb.digest')
            .select('b.size')
            .where('r.name', '=', repository)
            .where('rb.digest', '=', digest),
        2,
      ),
      manifestByDigest: precompile(
        db,
        'manifest_by_digest',
        (repository: string, digest: string) =>
          db
            .selectFrom('manifests as m')
            .innerJoin('repositories as r', 'r.id', 'm.repository_id')
            .select(['m.digest', 'm.media_type', 'm.body'])
            .where('r.name', '=', repository)
            .where('m.digest', '=', digest),
        2,
      ),
      manifestByTag: precompile(
        db,
        'manifest_by_tag',
        (repository: string, tag: string) =>
          db
            .selectFrom('tags as t')
            .innerJoin('repositories as r', 'r.id', 't.repository_id')
            .innerJoin('manifests as m', (j) => j.onRef('m.repository_id', '=', 't.repository_id').onRef('m.digest', '=', 't.digest'))
            .select(['m.digest', 'm.media_type', 'm.body'])
            .where('r.name', '=', repository)
            .where('t.name', '=', tag),
        2,
      ),
      allTags: precompile(db, 'tag_list', (repoId: number) => db.selectFrom('tags').select('name').where('repository_id', '=', repoId).orderBy('name'), 1),
    };
  }

  // --- repositories ----------------------------------------------------------------------------

  async repositoryId(name: string, tx?: Tx): Promise<number | null> {
    return this.repositoryIdOn(within(this.db, tx), name);
  }

  private async repositoryIdOn(db: Db, name: string): Promise<number | null> {
    const [row] = await this.hot.repositoryId.on(db, name);
    return row ? Number(row.id) : null;
  }

  async ensureRepository(name: string, tx?: Tx): Promise<number> {
    return this.ensureRepositoryOn(within(this.db, tx), name);
  }

  private async ensureRepositoryOn(db: Db, name: string): Promise<number> {
    const existing = await this.repositoryIdOn(db, name);
    if (existing !== null) return existing;
    await db.insertInto('repositories').values({ name, created_at: Date.now() }).onConflict((oc) => oc.column('name').doNothing()).execute();
    return (await this.repositoryIdOn(db, name))!;
  }

  async listRepositories(limit: number | undefined, last: string | undefined): Promise<string[]> {
    let q = this.db.selectFrom('repositories').select('name').orderBy('name');
    if (last !== undefined) q = q.where('name', '>', last);
    if (limit !== undefined) q = q.limit(limit);
    return (await q.execute()).map((r) => r.name);
  }

  // --- blobs -----------------------------------------------------------------------------------

  /**
   * Records a blob that `reveal` makes visible (renames into place) and links it to `repository`, in one
   * transaction whose first statement writes the blob row, before the file appears. Garbage collection
   * deletes a blob's row and file inside one transaction as well, so the two are serialized: GC can never
   * delete a file between its appearance and its row (the argument is in delivery/gc.ts).
   */
  async commitBlob(repository: string, digest: string, size: number, reveal: () => Promise<void>, location?: string): Promise<string | null> {
    const now = Date.now();
    return this.db.transaction().execute(async (trx) => {
      let recorded: string | null = null;
      if (location === undefined) {
        await trx.insertInto('blobs').values({ digest, size, created_at: now }).onConflict((oc) => oc.column('digest').doUpdateSet({ created_at: now })).execute();
        await reveal();
      } else {
        // A store that names objects by upload (S3): a digest stored already keeps its object, and this upload's
        // is not revealed (the store deletes it); otherwise this row names the new object.
        const row = await trx.selectFrom('blobs').select('location').where('digest', '=', digest).executeTakeFirst();
        if (row?.location) {
          await trx.updateTable('blobs').set({ created_at: now }).where('digest', '=', digest).execute();
          recorded = row.location;
        } else {
          await trx
            .insertInto('blobs')
            .values({ digest, size, created_at: now, location })
            .onConflict((oc) => oc.column('digest').doUpdateSet({ created_at: now, location }))
            .execute();
          await reveal();
          recorded = location;
        }
      }
      await this.touchLink(trx, await this.ensureRepositoryOn(trx, repository), digest, now);
      return recorded;
    });
  }

  /** Where a blob's bytes are (see BlobsTable.location), or null when no row records the digest. */
  async blobLocation(digest: string): Promise<{ location: string | null; size: number } | null> {
    const row = await this.db.selectFrom('blobs').select(['location', 'size']).where('digest', '=', digest).executeTakeFirst();
    return row ? { location: row.location, size: Number(row.size) } : null;
  }

  /** Every blob row with its location, for listing a store that names objects by upload. */
  async blobLocations(): Promise<{ digest: string; location: string | null; size: number }[]> {
    const rows = await this.db.selectFrom('blobs').select(['digest', 'location', 'size']).execute();
    return rows.map((r) => ({ digest: r.digest, location: r.location, size: Number(r.size) }));
  }

  /** Links an already stored blob (a mount) and refreshes its row; false when it is gone (just collected). */
  async linkStoredBlob(repository: string, digest: string): Promise<boolean> {
    const now = Date.now();
    return this.db.transaction().execute(async (trx) => {
      const touched = await trx.updateTable('blobs').set({ created_at: now }).where('digest', '=', digest).executeTakeFirst();
      if (Number(touched.numUpdatedRows) === 0) return false;
      await this.touchLink(trx, await this.ensureRepositoryOn(trx, repository), digest, now);
      return true;
    });
  }

  private async touchLink(trx: Db, repoId: number, digest: string, now: number): Promise<void> {
    await trx
      .insertInto('repository_blobs')
      .values({ repository_id: repoId, digest, created_at: now })
      .onConflict((oc) => oc.columns(['repository_id', 'digest']).doUpdateSet({ created_at: now }))
      .execute();
  }

  /** Size of a blob `repository` may read, or null. */
  async linkedBlob(repository: string, digest: string): Promise<{ size: number } | null> {
    const stamp = this.changeStamp?.();
    // Neither a repository name nor a digest can contain '@'.
    const key = `${repository}@${digest}`;
    const cached = stamp === undefined ? undefined : this.blobLinks.get(key, stamp);
    if (cached !== undefined) return cached;
    const [row] = await this.hot.linkedBlob(repository, digest);
    if (!row) return null;
    const size = Number(row.size);
    if (stamp !== undefined) this.blobLinks.set(key, stamp, size);
    return { size };
  }

  async blobKnown(digest: string): Promise<{ size: number } | null> {
    const row = await this.db.selectFrom('blobs').select('size').where('digest', '=', digest).executeTakeFirst();
    return row ? { size: Number(row.size) } : null;
  }

  async unlinkBlob(repository: string, digest: string): Promise<boolean> {
    const repoId = await this.repositoryId(repository);
    if (repoId === null) return false;
    const r = await this.db.deleteFrom('repository_blobs').where('repository_id', '=', repoId).where('digest', '=', digest).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  // --- manifests and tags ----------------------------------------------------------------------

  /** Which of `digests` are linked to `repository` as blobs. */
  async linkedBlobsOf(repository: string, digests: string[]): Promise<Set<string>> {
    if (digests.length === 0) return new Set();
    const rows = await this.db
      .selectFrom('repository_blobs as rb')
      .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
      .select('rb.digest')
      .where('r.name', '=', repository)
      .where('rb.digest', 'in', digests)
      .execute();
    return new Set(rows.map((r) => r.digest));
  }

  async manifestsOf(repository: string, digests: string[]): Promise<Set<string>> {
    if (digests.length === 0) return new Set();
    const rows = await this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select('m.digest')
      .where('r.name', '=', repository)
      .where('m.digest', 'in', digests)
      .execute();
    return new Set(rows.map((r) => r.digest));
  }

  /**
   * Stores a manifest and, when `tag` is given, points the tag at it — in one transaction, so a crash
   * never leaves a tag pointing at a missing manifest. Returns the digest the tag pointed to before.
   */
  async putManifest(
    repository: string,
    m: ManifestRecord,
    tag?: string,
    actor: string | null = null,
    guard?: TagGuard,
  ): Promise<{ previous: string | null }> {
    const now = Date.now();
    return this.db.transaction().execute(async (trx) => {
      const repoId = await this.ensureRepositoryOn(trx, repository);
      await this.recheckReferences(trx, repository, repoId, m, now);
      await trx
        .insertInto('manifests')
        .values({
          repository_id: repoId,
          digest: m.digest,
          media_type: m.mediaType,
          artifact_type: m.artifactType,
          subject_digest: m.subjectDigest,
          size: m.body.length,
          body: m.body,
          created_at: now,
        })
        .onConflict((oc) => oc.columns(['repository_id', 'digest']).doNothing())
        .execute();
      const refs = [
        ...new Set(m.blobs.map((d) => `blob ${d}`)),
        ...new Set(m.children.map((d) => `manifest ${d}`)),
      ].map((k) => {
        const [kind, target] = k.split(' ') as ['blob' | 'manifest', string];
        return { repository_id: repoId, manifest_digest: m.digest, kind, target_digest: target };
      });
      if (refs.length > 0) {
        await trx
          .insertInto('manifest_references')
          .values(refs)
          .onConflict((oc) => oc.columns(['repository_id', 'manifest_digest', 'kind', 'target_digest']).doNothing())
          .execute();
      }
      if (tag === undefined) return { previous: null };
      return this.setTag(trx, repository, repoId, tag, m.digest, actor, now, guard);
    });
  }

  /**
   * Registry.putManifest checked the blobs and children before this transaction; online garbage collection
   * or retention may have taken one since. Checked again here, and the blob links are touched: a concurrent
   * GC then sees either this manifest's references or a link younger than its grace period (delivery/gc.ts).
   */
  private async recheckReferences(trx: Db, repository: string, repoId: number, m: ManifestRecord, now: number): Promise<void> {
    const blobs = [...new Set(m.blobs)];
    if (blobs.length > 0) {
      const touched = await trx.updateTable('repository_blobs').set({ created_at: now }).where('repository_id', '=', repoId).where('digest', 'in', blobs).executeTakeFirst();
      if (Number(touched.numUpdatedRows) !== blobs.length) {
        const linked = new Set((await trx.selectFrom('repository_blobs').select('digest').where('repository_id', '=', repoId).where('digest', 'in', blobs).execute()).map((r) => r.digest));
        const missing = blobs.filter((d) => !linked.has(d));
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `blob ${missing[0]} is unknown to repository ${repository}`, { digests: missing });
      }
    }
    const children = [...new Set(m.children)];
    if (children.length > 0) {
      const present = new Set((await trx.selectFrom('manifests').select('digest').where('repository_id', '=', repoId).where('digest', 'in', children).execute()).map((r) => r.digest));
      const missing = children.filter((d) => !present.has(d));
      if (missing.length > 0) throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest ${missing[0]} is unknown to repository ${repository}`, { digests: missing });
    }
  }

  /**
   * Points an existing tag name at a manifest the repository has (restore, admin override, release tags).
   * The guard runs inside the transaction with the tag's current digest, so its decision cannot go stale.
   */
  async moveTag(repository: string, tag: string, digest: string, actor: string | null, guard?: TagGuard, tx?: Tx): Promise<{ previous: string | null }> {
    const run = async (trx: Db) => {
      const repoId = await this.repositoryIdOn(trx, repository);
      const present = repoId === null ? undefined : await trx.selectFrom('manifests').select('digest').where('repository_id', '=', repoId).where('digest', '=', digest).executeTakeFirst();
      if (repoId === null || !present) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${digest} unknown to repository ${repository}`);
      return this.setTag(trx, repository, repoId, tag, digest, actor, Date.now(), guard);
    };
    return tx === undefined ? this.db.transaction().execute(run) : run(within(this.db, tx));
  }

  /** The digest a tag points at now, or null. */
  async tagDigest(repository: string, tag: string): Promise<string | null> {
    const row = await this.db
      .selectFrom('tags as t')
      .innerJoin('repositories as r', 'r.id', 't.repository_id')
      .select('t.digest')
      .where('r.name', '=', repository)
      .where('t.name', '=', tag)
      .executeTakeFirst();
    return row?.digest ?? null;
  }

  /** Tags pointing at a digest. */
  async tagsOf(repository: string, digest: string): Promise<string[]> {
    const rows = await this.db
      .selectFrom('tags as t')
      .innerJoin('repositories as r', 'r.id', 't.repository_id')
      .select('t.name')
      .where('r.name', '=', repository)
      .where('t.digest', '=', digest)
      .orderBy('t.name')
      .execute();
    return rows.map((r) => r.name);
  }

  /**
   * Tag writes read the tag, decide (guard) and write: SQLite serialises them with BEGIN IMMEDIATE; on PostgreSQL
   * (READ COMMITTED) two pushes of one new tag would both insert, and history would record a wrong old digest. They
   * lock their repository's row first, which serialises tag changes per repository, as on SQLite. NO KEY UPDATE:
   * the manifest and tag rows written before hold KEY SHARE on that row (their foreign keys), which FOR UPDATE
   * would wait on, deadlocking two pushes.
   */
  private async lockTags(trx: Db, repoId: number): Promise<void> {
    if (trx.getExecutor().adapter instanceof PostgresAdapter) await trx.selectFrom('repositories').select('id').where('id', '=', repoId).forNoKeyUpdate().execute();
  }

  private async setTag(trx: Db, repository: string, repoId: number, tag: string, digest: string, actor: string | null, now: number, guard?: TagGuard): Promise<{ previous: string | null }> {
    await this.lockTags(trx, repoId);
    const current = await trx.selectFrom('tags').select('digest').where('repository_id', '=', repoId).where('name', '=', tag).executeTakeFirst();
    if (current?.digest === digest) return { previous: digest };
    if (guard) await guard({ repository, repositoryId: repoId, tag, digest, current: current?.digest ?? null, tx: asTx(trx) });
    if (current) {
      await trx.updateTable('tags').set({ digest, updated_at: now }).where('repository_id', '=', repoId).where('name', '=', tag).execute();
    } else {
      await trx.insertInto('tags').values({ repository_id: repoId, name: tag, digest, updated_at: now }).execute();
    }
    await trx
      .insertInto('tag_history')
      .values({ repository_id: repoId, tag, old_digest: current?.digest ?? null, new_digest: digest, actor, at: now })
      .execute();
    return { previous: current?.digest ?? null };
  }

  /** As manifestByTag, answered from memory until any write; a manifest unknown is asked again each time. */
  async manifestByDigest(repository: string, digest: string): Promise<StoredManifest | null> {
    const stamp = this.changeStamp?.();
    const key = `${repository}@${digest}`;
    const cached = stamp === undefined ? undefined : this.manifestsByDigest.get(key, stamp);
    if (cached) return cached;
    const [row] = await this.hot.manifestByDigest(repository, digest);
    if (!row) return null;
    const manifest = { digest: row.digest, mediaType: row.media_type, body: asBuffer(row.body) };
    if (stamp !== undefined) this.manifestsByDigest.set(key, stamp, manifest);
    return manifest;
  }

  /**
   * Every pull starts with this lookup, thousands of times a second under load, and tags move rarely: it is
   * answered from memory until any write. Under a manifest GET load the query and its rows took about a third of
   * the main thread; checking the stamp is one statement. The body is shared with the cache: callers must not
   * modify it.
   */
  async manifestByTag(repository: string, tag: string): Promise<StoredManifest | null> {
    const stamp = this.changeStamp?.();
    // Neither a repository name nor a tag can contain ':'.
    const key = `${repository}:${tag}`;
    const cached = stamp === undefined ? undefined : this.taggedManifests.get(key, stamp);
    if (cached !== undefined) return cached;
    const [row] = await this.hot.manifestByTag(repository, tag);
    const manifest = row ? { digest: row.digest, mediaType: row.media_type, body: asBuffer(row.body) } : null;
    if (stamp !== undefined) this.taggedManifests.set(key, stamp, manifest);
    return manifest;
  }

  /** Deletes a manifest and every tag pointing at it (each tag deletion recorded). False when absent. */
  async deleteManifest(repository: string, digest: string, actor: string | null = null, guard?: TagGuard): Promise<boolean> {
    const now = Date.now();
    return this.db.transaction().execute(async (trx) => {
      const repoId = await this.repositoryIdOn(trx, repository);
      if (repoId === null) return false;
      await this.lockTags(trx, repoId);
      const tags = await trx.selectFrom('tags').select('name').where('repository_id', '=', repoId).where('digest', '=', digest).execute();
      for (const t of tags) if (guard) await guard({ repository, repositoryId: repoId, tag: t.name, digest: null, current: digest, tx: asTx(trx) });
      for (const t of tags) {
        await trx.insertInto('tag_history').values({ repository_id: repoId, tag: t.name, old_digest: digest, new_digest: null, actor, at: now }).execute();
      }
      await trx.deleteFrom('tags').where('repository_id', '=', repoId).where('digest', '=', digest).execute();
      await trx.deleteFrom('manifest_references').where('repository_id', '=', repoId).where('manifest_digest', '=', digest).execute();
      const r = await trx.deleteFrom('manifests').where('repository_id', '=', repoId).where('digest', '=', digest).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  async deleteTag(repository: string, tag: string, actor: string | null = null, guard?: TagGuard): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const repoId = await this.repositoryIdOn(trx, repository);
      if (repoId === null) return false;
      await this.lockTags(trx, repoId);
      const current = await trx.selectFrom('tags').select('digest').where('repository_id', '=', repoId).where('name', '=', tag).executeTakeFirst();
      if (!current) return false;
      if (guard) await guard({ repository, repositoryId: repoId, tag, digest: null, current: current.digest, tx: asTx(trx) });
      await trx.deleteFrom('tags').where('repository_id', '=', repoId).where('name', '=', tag).execute();
      await trx.insertInto('tag_history').values({ repository_id: repoId, tag, old_digest: current.digest, new_digest: null, actor, at: Date.now() }).execute();
      return true;
    });
  }

  async listTags(repository: string, limit: number | undefined, last: string | undefined): Promise<string[] | null> {
    // tags/list of a large repository is a hot read that changes rarely: answer from memory until any write.
    const whole = limit === undefined && last === undefined;
    const stamp = whole ? this.changeStamp?.() : undefined;
    const cached = stamp === undefined ? undefined : this.tagLists.get(repository, stamp);
    if (cached !== undefined) return cached;
    const repoId = await this.repositoryId(repository);
    if (repoId === null) return null;
    if (whole) {
      const names = (await this.hot.allTags(repoId)).map((r) => r.name);
      if (stamp !== undefined) this.tagLists.set(repository, stamp, names);
      return names;
    }
    let q = this.db.selectFrom('tags').select('name').where('repository_id', '=', repoId).orderBy('name');
    if (last !== undefined) q = q.where('name', '>', last);
    if (limit !== undefined) q = q.limit(limit);
    return (await q.execute()).map((r) => r.name);
  }

  async tagHistory(repository: string, tag?: string, page: { before?: number; limit?: number } & HistoryMatch = {}): Promise<TagChange[]> {
    let q = this.db
      .selectFrom('tag_history as h')
      .innerJoin('repositories as r', 'r.id', 'h.repository_id')
      .select(['h.id', 'r.name', 'h.tag', 'h.old_digest', 'h.new_digest', 'h.actor', 'h.at'])
      .where('r.name', '=', repository)
      .orderBy('h.id', 'desc');
    if (tag !== undefined) q = q.where('h.tag', '=', tag);
    if (page.before !== undefined) q = q.where('h.id', '<', page.before);
    if (page.actor !== undefined) q = q.where('h.actor', '=', page.actor);
    if (page.since !== undefined) q = q.where('h.at', '>=', page.since);
    if (page.until !== undefined) q = q.where('h.at', '<', page.until);
    if (page.limit !== undefined) q = q.limit(page.limit);
    return (await q.execute()).map((r) => ({
      id: Number(r.id),
      repository: r.name,
      tag: r.tag,
      oldDigest: r.old_digest,
      newDigest: r.new_digest,
      actor: r.actor,
      at: Number(r.at),
    }));
  }

  async referrers(repository: string, subject: string): Promise<ReferrerRow[]> {
    const rows = await this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select(['m.digest', 'm.media_type', 'm.artifact_type', 'm.size', 'm.body'])
      .where('r.name', '=', repository)
      .where('m.subject_digest', '=', subject)
      .orderBy('m.digest')
      .execute();
    return rows.map((r) => ({ digest: r.digest, mediaType: r.media_type, artifactType: r.artifact_type, size: Number(r.size), body: Buffer.from(r.body) }));
  }
}

/** SQLite hands back Buffers already; PostgreSQL's driver too, but the type says Uint8Array. */
export function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}
