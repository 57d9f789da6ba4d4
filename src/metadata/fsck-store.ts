// The consistency checks (`wharf fsck`): every blob row and manifest, the rows that point at nothing, and the
// repair that forgets a blob whose bytes are gone.
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export class FsckStore {
  constructor(private readonly db: Kysely<Database>) {}

  async allBlobRows(): Promise<{ digest: string; size: number }[]> {
    return (await this.db.selectFrom('blobs').select(['digest', 'size']).execute()).map((r) => ({ digest: r.digest, size: Number(r.size) }));
  }

  /** Links to blobs that have no blob row. */
  async danglingLinks(): Promise<{ repository: string; digest: string }[]> {
    return this.db
      .selectFrom('repository_blobs as rb')
      .innerJoin('repositories as r', 'r.id', 'rb.repository_id')
      .leftJoin('blobs as b', 'b.digest', 'rb.digest')
      .select(['r.name as repository', 'rb.digest'])
      .where('b.digest', 'is', null)
      .execute();
  }

  /** Tags whose manifest is missing. */
  async danglingTags(): Promise<{ repository: string; tag: string; digest: string }[]> {
    return this.db
      .selectFrom('tags as t')
      .innerJoin('repositories as r', 'r.id', 't.repository_id')
      .leftJoin('manifests as m', (j) => j.onRef('m.repository_id', '=', 't.repository_id').onRef('m.digest', '=', 't.digest'))
      .select(['r.name as repository', 't.name as tag', 't.digest'])
      .where('m.digest', 'is', null)
      .execute();
  }

  /** Manifest references to blobs the repository cannot read, or to child manifests it lacks. */
  async danglingReferences(): Promise<{ repository: string; manifest: string; kind: string; target: string }[]> {
    const blobRefs = await this.db
      .selectFrom('manifest_references as mr')
      .innerJoin('repositories as r', 'r.id', 'mr.repository_id')
      .leftJoin('repository_blobs as rb', (j) => j.onRef('rb.repository_id', '=', 'mr.repository_id').onRef('rb.digest', '=', 'mr.target_digest'))
      .select(['r.name as repository', 'mr.manifest_digest as manifest', 'mr.kind', 'mr.target_digest as target'])
      .where('mr.kind', '=', 'blob')
      .where('rb.digest', 'is', null)
      .execute();
    const childRefs = await this.db
      .selectFrom('manifest_references as mr')
      .innerJoin('repositories as r', 'r.id', 'mr.repository_id')
      .leftJoin('manifests as m', (j) => j.onRef('m.repository_id', '=', 'mr.repository_id').onRef('m.digest', '=', 'mr.target_digest'))
      .select(['r.name as repository', 'mr.manifest_digest as manifest', 'mr.kind', 'mr.target_digest as target'])
      .where('mr.kind', '=', 'manifest')
      .where('m.digest', 'is', null)
      .execute();
    return [...blobRefs, ...childRefs];
  }

  async allManifests(): Promise<{ repository: string; digest: string; body: Buffer }[]> {
    const rows = await this.db
      .selectFrom('manifests as m')
      .innerJoin('repositories as r', 'r.id', 'm.repository_id')
      .select(['r.name as repository', 'm.digest', 'm.body'])
      .execute();
    return rows.map((r) => ({ repository: r.repository, digest: r.digest, body: Buffer.from(r.body) }));
  }

  async deleteBlobRow(digest: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('repository_blobs').where('digest', '=', digest).execute();
      await trx.deleteFrom('blobs').where('digest', '=', digest).execute();
    });
  }
}
