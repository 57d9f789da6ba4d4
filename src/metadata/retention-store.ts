// Queries for retention: the policies set over the API, one repository's tags and manifests as retention
// sees them, and deletions that re-check, inside their transaction, what the plan assumed.
import type { Kysely, Selectable } from 'kysely';
import type { Database, RetentionPoliciesTable } from './schema.js';
import type { ManifestState, RetentionPolicy, TagState } from './records.js';

export type RetentionPolicyRow = Selectable<RetentionPoliciesTable>;

export class RetentionStore {
  constructor(private readonly db: Kysely<Database>) {}

  // --- policies --------------------------------------------------------------------------------

  async policies(): Promise<RetentionPolicyRow[]> {
    return this.db.selectFrom('retention_policies').selectAll().orderBy('id').execute();
  }

  async addPolicy(p: RetentionPolicy, actor: string | null): Promise<RetentionPolicyRow> {
    const row = await this.db
      .insertInto('retention_policies')
      .values({
        repositories: p.repositories,
        tags: p.tags,
        keep_last: p.keepLast ?? null,
        keep_within: p.keepWithin ?? null,
        untagged_older_than: p.untaggedOlderThan ?? null,
        created_by: actor,
        created_at: Date.now(),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return row;
  }

  async deletePolicy(id: number): Promise<boolean> {
    const r = await this.db.deleteFrom('retention_policies').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  // --- state -----------------------------------------------------------------------------------

  async repositories(): Promise<{ id: number; name: string }[]> {
    return (await this.db.selectFrom('repositories').select(['id', 'name']).orderBy('name').execute()).map((r) => ({ id: Number(r.id), name: r.name }));
  }

  async tags(repositoryId: number): Promise<TagState[]> {
    const rows = await this.db.selectFrom('tags').select(['name', 'digest', 'updated_at']).where('repository_id', '=', repositoryId).execute();
    return rows.map((r) => ({ name: r.name, digest: r.digest, pushedAt: Number(r.updated_at) }));
  }

  async manifests(repositoryId: number): Promise<ManifestState[]> {
    const rows = await this.db.selectFrom('manifests').select(['digest', 'subject_digest', 'created_at']).where('repository_id', '=', repositoryId).execute();
    const children = await this.db
      .selectFrom('manifest_references')
      .select(['manifest_digest', 'target_digest'])
      .where('repository_id', '=', repositoryId)
      .where('kind', '=', 'manifest')
      .execute();
    const untagged = await this.db
      .selectFrom('tag_history')
      .select(['old_digest', (eb) => eb.fn.max('at').as('at')])
      .where('repository_id', '=', repositoryId)
      .where('old_digest', 'is not', null)
      .groupBy('old_digest')
      .execute();
    const childrenOf = new Map<string, string[]>();
    for (const c of children) childrenOf.set(c.manifest_digest, [...(childrenOf.get(c.manifest_digest) ?? []), c.target_digest]);
    const untaggedAt = new Map(untagged.map((u) => [u.old_digest!, Number(u.at)]));
    return rows.map((r) => ({
      digest: r.digest,
      subject: r.subject_digest,
      children: childrenOf.get(r.digest) ?? [],
      createdAt: Number(r.created_at),
      untaggedAt: untaggedAt.get(r.digest) ?? null,
    }));
  }

  // --- deletions -------------------------------------------------------------------------------

  /** Deletes a tag (recorded in its history) only if it still points at `digest`: a tag pushed since stays. */
  async deleteTagIf(repositoryId: number, tag: string, digest: string, actor: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx.deleteFrom('tags').where('repository_id', '=', repositoryId).where('name', '=', tag).where('digest', '=', digest).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) return false;
      await trx.insertInto('tag_history').values({ repository_id: repositoryId, tag, old_digest: digest, new_digest: null, actor, at: Date.now() }).execute();
      return true;
    });
  }

  /**
   * Deletes a manifest only if, now, no tag points at it (a release also moves its environment's tag onto
   * it), no index of the repository lists it and no referrer names it as subject: whatever was pushed
   * since the plan was made wins. A push that checked for this manifest just before is refused instead,
   * by the same check repeated in its own transaction (RegistryStore.putManifest).
   */
  async deleteUnreferencedManifest(repositoryId: number, digest: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const tagged = await trx.selectFrom('tags').select('name').where('repository_id', '=', repositoryId).where('digest', '=', digest).executeTakeFirst();
      const listed = await trx
        .selectFrom('manifest_references')
        .select('manifest_digest')
        .where('repository_id', '=', repositoryId)
        .where('kind', '=', 'manifest')
        .where('target_digest', '=', digest)
        .executeTakeFirst();
      const referred = await trx.selectFrom('manifests').select('digest').where('repository_id', '=', repositoryId).where('subject_digest', '=', digest).executeTakeFirst();
      if (tagged || listed || referred) return false;
      await trx.deleteFrom('manifest_references').where('repository_id', '=', repositoryId).where('manifest_digest', '=', digest).execute();
      const r = await trx.deleteFrom('manifests').where('repository_id', '=', repositoryId).where('digest', '=', digest).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }
}
