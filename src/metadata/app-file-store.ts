// Applied app files (wharf.yaml), one per application, stored as the text the user applied.
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

export class AppFileStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** The text of the app's applied file, or null. */
  async get(app: string): Promise<string | null> {
    const row = await this.db
      .selectFrom('app_files as f')
      .innerJoin('repositories as r', 'r.id', 'f.repository_id')
      .select('f.body')
      .where('r.name', '=', app)
      .executeTakeFirst();
    return row ? row.body : null;
  }

  /** Stores (or replaces) the file of the repository. */
  async put(repositoryId: number, text: string, actor: string | null): Promise<void> {
    const now = Date.now();
    await this.db
      .insertInto('app_files')
      .values({ repository_id: repositoryId, body: text, actor, updated_at: now })
      .onConflict((oc) => oc.column('repository_id').doUpdateSet({ body: text, actor, updated_at: now }))
      .execute();
  }

  /** Every application with an applied file, by name. */
  async apps(): Promise<string[]> {
    const rows = await this.db.selectFrom('app_files as f').innerJoin('repositories as r', 'r.id', 'f.repository_id').select('r.name').orderBy('r.name').execute();
    return rows.map((r) => r.name);
  }
}
