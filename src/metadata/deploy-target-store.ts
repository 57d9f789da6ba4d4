// Queries for deploy targets (engines a global admin registered) and the sealed secrets of app environments.
// Secret rows hold only what secret-box.ts sealed; this file never sees a value.
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { Privilege, ProxyRegistration, TargetRegistration } from './records.js';

export interface StoredTarget extends TargetRegistration {
  source: 'api' | 'config';
  createdBy: string | null;
  updatedAt: number;
}

export interface StoredSecret {
  app: string;
  environment: string;
  name: string;
  updatedBy: string | null;
  updatedAt: number;
}

export class DeployTargetStore {
  constructor(private readonly db: Kysely<Database>) {}

  // --- targets ---------------------------------------------------------------------------------

  async targets(): Promise<StoredTarget[]> {
    const rows = await this.db.selectFrom('deploy_targets').selectAll().orderBy('name').execute();
    return rows.map((r) => ({
      name: r.name,
      endpoint: r.endpoint,
      ...(r.tls ? { tls: JSON.parse(r.tls) as { ca: string; cert: string; key: string } } : {}),
      ...(r.identity_file ? { identityFile: r.identity_file } : {}),
      apps: JSON.parse(r.apps) as string[],
      allow: JSON.parse(r.allow) as Privilege[],
      ...(r.proxy ? { proxy: JSON.parse(r.proxy) as ProxyRegistration } : {}),
      source: r.source,
      createdBy: r.created_by,
      updatedAt: Number(r.updated_at),
    }));
  }

  /** Adds or replaces the target of that name. */
  async putTarget(t: TargetRegistration, source: 'api' | 'config', actor: string | null): Promise<void> {
    const row = {
      endpoint: t.endpoint,
      tls: t.tls ? JSON.stringify(t.tls) : null,
      identity_file: t.identityFile ?? null,
      apps: JSON.stringify(t.apps),
      allow: JSON.stringify(t.allow),
      proxy: t.proxy ? JSON.stringify(t.proxy) : null,
      source,
      created_by: actor,
      updated_at: Date.now(),
    };
    await this.db
      .insertInto('deploy_targets')
      .values({ name: t.name, ...row })
      .onConflict((oc) => oc.column('name').doUpdateSet(row))
      .execute();
  }

  async removeTarget(name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('deploy_targets').where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Targets the config file registered before but names no more: the file is their only source. */
  async removeConfigTargetsExcept(names: string[]): Promise<void> {
    let q = this.db.deleteFrom('deploy_targets').where('source', '=', 'config');
    if (names.length > 0) q = q.where('name', 'not in', names);
    await q.execute();
  }

  // --- secrets ---------------------------------------------------------------------------------

  async putSecret(s: { app: string; environment: string; name: string; sealed: string }, actor: string | null): Promise<void> {
    const row = { sealed: s.sealed, updated_by: actor, updated_at: Date.now() };
    await this.db
      .insertInto('app_secrets')
      .values({ app: s.app, environment: s.environment, name: s.name, ...row })
      .onConflict((oc) => oc.columns(['app', 'environment', 'name']).doUpdateSet(row))
      .execute();
  }

  async sealedSecret(app: string, environment: string, name: string): Promise<string | undefined> {
    const r = await this.db
      .selectFrom('app_secrets')
      .select('sealed')
      .where('app', '=', app)
      .where('environment', '=', environment)
      .where('name', '=', name)
      .executeTakeFirst();
    return r?.sealed;
  }

  /** Names and times only. */
  async secrets(app: string, environment?: string): Promise<StoredSecret[]> {
    let q = this.db.selectFrom('app_secrets').select(['app', 'environment', 'name', 'updated_by', 'updated_at']).where('app', '=', app);
    if (environment !== undefined) q = q.where('environment', '=', environment);
    const rows = await q.orderBy('environment').orderBy('name').execute();
    return rows.map((r) => ({ app: r.app, environment: r.environment, name: r.name, updatedBy: r.updated_by, updatedAt: Number(r.updated_at) }));
  }

  async removeSecret(app: string, environment: string, name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('app_secrets').where('app', '=', app).where('environment', '=', environment).where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}
