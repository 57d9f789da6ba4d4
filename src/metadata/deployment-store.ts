// The record of deployments: one row per deployment (started, then finished once with its outcome) and its steps
// per target — what ran where, when, and why it failed. The database also holds the per-environment lock.
import type { Kysely, Selectable } from 'kysely';
import { RegistryError } from '../oci/errors.js';
import type { Database, DeploymentsTable } from './schema.js';
import type { DeploymentOutcome, DeploymentStep, HistoryMatch } from './records.js';

export type DeploymentRow = Selectable<DeploymentsTable>;

export interface DeploymentRecord extends DeploymentRow {
  steps: DeploymentStep[];
}

export interface NewDeployment {
  environmentId: number;
  releaseId: number | null;
  digest: string;
  image: string;
  kind: 'docker' | 'swarm';
  trigger?: string;
  actor?: string | null;
}

export class DeploymentStore {
  constructor(private readonly db: Kysely<Database>) {}

  /** Records a running deployment; refused (409) while another one of the environment is unfinished. */
  async begin(d: NewDeployment, now = Date.now()): Promise<number> {
    try {
      const row = await this.db
        .insertInto('deployments')
        .values({
          environment_id: d.environmentId,
          release_id: d.releaseId,
          digest: d.digest,
          image: d.image,
          kind: d.kind,
          trigger: d.trigger ?? null,
          status: 'running',
          reason: null,
          actor: d.actor ?? null,
          started_at: now,
          finished_at: null,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      return Number(row.id);
    } catch (e) {
      const running = await this.running(d.environmentId);
      if (running) throw new RegistryError('CONFLICT', `deployment #${running.id} of this environment is still running (started ${new Date(running.started_at).toISOString()})`);
      throw e;
    }
  }

  /** Writes the outcome and the steps, and releases the environment's lock. */
  async finish(id: number, result: DeploymentOutcome): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      if (result.steps.length > 0) {
        await tx
          .insertInto('deployment_steps')
          .values(
            result.steps.map((s, seq) => ({
              deployment_id: id,
              seq,
              target: s.target,
              action: s.action,
              containers: JSON.stringify(s.containers),
              digest: s.digest,
              started_at: s.startedAt,
              finished_at: s.finishedAt,
              result: s.result,
              reason: s.reason,
            })),
          )
          .execute();
      }
      await tx.updateTable('deployments').set({ status: result.status, reason: result.reason, finished_at: result.finishedAt }).where('id', '=', id).execute();
    });
  }

  /** At server start: deployments cut off by a crash or restart are finished as interrupted (and unlocked). */
  async interruptRunning(now = Date.now()): Promise<number> {
    const r = await this.db
      .updateTable('deployments')
      .set({ status: 'interrupted', reason: 'the server stopped during the deployment', finished_at: now })
      .where('finished_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  async running(environmentId: number): Promise<DeploymentRow | undefined> {
    return this.db.selectFrom('deployments').selectAll().where('environment_id', '=', environmentId).where('finished_at', 'is', null).executeTakeFirst();
  }

  async get(id: number): Promise<DeploymentRecord | undefined> {
    const row = await this.db.selectFrom('deployments').selectAll().where('id', '=', id).executeTakeFirst();
    return row && { ...row, steps: await this.steps(id) };
  }

  /** The environment's newest deployment that matches: of a digest, with a status, before another deployment. */
  async newest(environmentId: number, match: { digest?: string; status?: DeploymentRow['status']; before?: number }): Promise<DeploymentRow | undefined> {
    let q = this.db.selectFrom('deployments').selectAll().where('environment_id', '=', environmentId);
    if (match.digest !== undefined) q = q.where('digest', '=', match.digest);
    if (match.status !== undefined) q = q.where('status', '=', match.status);
    if (match.before !== undefined) q = q.where('id', '<', match.before);
    return q.orderBy('id', 'desc').limit(1).executeTakeFirst();
  }

  /** The environment's newest deployment that has finished. */
  async newestFinished(environmentId: number): Promise<DeploymentRow | undefined> {
    return this.db.selectFrom('deployments').selectAll().where('environment_id', '=', environmentId).where('finished_at', 'is not', null).orderBy('id', 'desc').limit(1).executeTakeFirst();
  }

  /** How many environments' newest finished deployment was paused or needs an operator. */
  async countNeedingOperator(): Promise<number> {
    const newest = this.db.selectFrom('deployments').select((eb) => eb.fn.max('id').as('id')).where('finished_at', 'is not', null).groupBy('environment_id');
    const row = await this.db
      .selectFrom('deployments')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('id', 'in', newest)
      .where('status', 'in', ['paused', 'needs_operator'])
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** The newest deployment of each of these releases (releases never deployed are absent). */
  async latestOfReleases(releaseIds: number[]): Promise<Map<number, DeploymentRow>> {
    const out = new Map<number, DeploymentRow>();
    // In slices, well below the databases' limits on bound parameters.
    for (let i = 0; i < releaseIds.length; i += 500) {
      const slice = releaseIds.slice(i, i + 500);
      const rows = await this.db.selectFrom('deployments').selectAll().where('release_id', 'in', slice).orderBy('id', 'desc').execute();
      for (const r of rows) if (!out.has(Number(r.release_id))) out.set(Number(r.release_id), r);
    }
    return out;
  }

  /** Newest first. */
  async list(environmentId: number, limit = 50, before?: number, match: HistoryMatch = {}): Promise<DeploymentRecord[]> {
    let q = this.db.selectFrom('deployments').selectAll().where('environment_id', '=', environmentId).orderBy('id', 'desc').limit(limit);
    if (before !== undefined) q = q.where('id', '<', before);
    if (match.actor !== undefined) q = q.where('actor', '=', match.actor);
    if (match.since !== undefined) q = q.where('started_at', '>=', match.since);
    if (match.until !== undefined) q = q.where('started_at', '<', match.until);
    const rows = await q.execute();
    return Promise.all(rows.map(async (r) => ({ ...r, steps: await this.steps(Number(r.id)) })));
  }

  private async steps(deploymentId: number): Promise<DeploymentStep[]> {
    const rows = await this.db.selectFrom('deployment_steps').selectAll().where('deployment_id', '=', deploymentId).orderBy('seq').execute();
    return rows.map((s) => ({
      target: s.target,
      action: s.action,
      containers: JSON.parse(s.containers) as string[],
      digest: s.digest,
      startedAt: Number(s.started_at),
      finishedAt: Number(s.finished_at),
      result: s.result,
      reason: s.reason,
    }));
  }
}
