// The release workflow, the one way a release reaches the hosts: a release, promotion or rollback (or an approved
// request for one) is recorded, then deployed when asked or by the environment's autoDeploy rule, and the
// deployment's outcome settles the environment's releases: a pending release becomes current when it runs, is
// abandoned when it ran and did not hold, and after a rollback on the hosts the current release goes back too.
// The API's release, approval and deployment routes, and through them the CLI and the pipeline, all come here.
import type { Delivery, Release, ReleaseOrigin } from '../delivery/releases.js';
import type { ApprovalRequest, Approvals, Operation } from '../delivery/approvals.js';
import type { DeploymentMetadata, EnvironmentRow, ReleaseRow } from '../metadata/metadata.js';
import type { DeployEvent, DeploymentResult } from './deployment.js';
import type { DeployLog, DeployOutcome, DeployService, Rollout } from './service.js';

/** A release, promotion or rollback as a caller asks for it; `ref` of a rollback is the release to go back to. */
export type ReleaseOperation = Operation & ReleaseOrigin;

/** The deployment that follows a recorded release, to be run by the caller (who streams its progress). */
export type ReleaseDeployment = (onEvent?: (e: DeployEvent) => void) => Promise<DeployOutcome>;

export interface ReleaseStep {
  release: Release;
  /** present when the release is to be deployed (asked for, or the environment's autoDeploy) */
  deployment?: ReleaseDeployment;
}

export interface DeployOptions {
  actor: string | null;
  trigger: string;
  force?: boolean;
  /** deploy the current release even when another is pending (healing never ships something newer) */
  currentOnly?: boolean;
  onEvent?: (e: DeployEvent) => void;
}

export class ReleaseWorkflow {
  /** `app/env` → deployments of it running here, from their start until their releases are settled */
  private readonly inFlight = new Map<string, number>();

  constructor(
    private readonly delivery: Delivery,
    private readonly approvals: Approvals,
    private readonly deploys: DeployService,
    private readonly deployments: DeploymentMetadata,
    private readonly log: DeployLog,
  ) {}

  /**
   * Carries out `op` as `actor`. In an environment that requires approval it waits: the answer is the request.
   * `recorded` hears of the release as soon as it is recorded, before anything else is decided.
   */
  async carryOut(app: string, op: ReleaseOperation, actor: string | null, recorded?: (release: Release) => void): Promise<ReleaseStep | { approval: ApprovalRequest }> {
    if (await this.delivery.requiresApproval(app, op.environment)) {
      return { approval: await this.approvals.request(app, { kind: op.kind, environment: op.environment, ref: op.ref, from: op.from, note: op.note, deploy: op.deploy }, actor) };
    }
    const opts = { actor, note: op.note };
    let release: Release;
    if (op.kind === 'release') release = await this.delivery.release(app, op.environment, op.ref!, { ...opts, commit: op.commit, pipelineRun: op.pipelineRun });
    else if (op.kind === 'promote') release = await this.delivery.promote(app, op.from!, op.environment, opts);
    else release = await this.delivery.rollback(app, op.environment, { ...opts, to: op.ref });
    recorded?.(release);
    return this.next(release, op.deploy, actor);
  }

  /** Carries out pending approval request `id` as `approver`; `deploy` overrides the request's own wish. */
  async approve(app: string, id: number, approver: string | null, deploy: boolean | undefined, recorded?: (release: Release) => void): Promise<ReleaseStep> {
    const { request, release } = await this.approvals.approve(app, id, approver);
    recorded?.(release);
    return this.next(release, deploy ?? request.deploy ?? undefined, approver);
  }

  /** Deploys the environment's pending release, else its current one, and settles its releases by the outcome. */
  async deploy(app: string, environment: string, opts: DeployOptions): Promise<DeployOutcome> {
    const key = `${app}/${environment}`;
    this.inFlight.set(key, (this.inFlight.get(key) ?? 0) + 1);
    try {
      return await this.settle(await this.deploys.rollout(app, environment, opts), opts.actor);
    } finally {
      const n = this.inFlight.get(key)! - 1;
      if (n === 0) this.inFlight.delete(key);
      else this.inFlight.set(key, n);
    }
  }

  /**
   * Whether this server is deploying the environment or settling its releases after a deployment: the deployment's
   * record is finished before the environment names what now runs, and in between what runs is no drift.
   */
  busy(app: string, environment: string): boolean {
    return this.inFlight.has(`${app}/${environment}`);
  }

  /** What follows a recorded release: its deployment when asked for, or when the environment deploys automatically. */
  private async next(release: Release, requested: boolean | undefined, actor: string | null): Promise<ReleaseStep> {
    const wanted = requested ?? (await this.deploys.autoDeploys(release.app, release.environment));
    if (!wanted) return { release };
    return { release, deployment: (onEvent) => this.deploy(release.app, release.environment, { actor, trigger: release.kind, onEvent }) };
  }

  private async settle({ app, outcome, environment: env, release, wasCurrent }: Rollout, actor: string | null): Promise<DeployOutcome> {
    const { result } = outcome;
    if (result.status === 'succeeded') {
      // Only now does the environment name it, and APP:ENV follow: what runs is what the environment says.
      if (!wasCurrent) outcome.current = await this.delivery.deployed(app, env.name, Number(release.id), actor);
    } else if (!wasCurrent && triedOnTargets(result)) {
      // It ran somewhere and did not hold: the next plain deploy must not ship it again. A deployment refused
      // or cut short before any container started (a pull failure, a policy refusal) leaves it pending.
      await this.delivery.abandonPending(app, env.name, Number(release.id));
    } else if (result.status === 'rolled_back') {
      outcome.revert = await this.revertCurrent(app, env, outcome.deployment, release, result.reason, result.restoredDigest);
    }
    return outcome;
  }

  /**
   * After deployment `deployment` of release `failed` was rolled back: the hosts run again what the environment's
   * newest earlier successful deployment put there, so its release becomes current again (a rollback by the system,
   * through Delivery: its lock, its compare-and-set, its tag move and webhooks).
   */
  private async revertCurrent(
    app: string,
    env: EnvironmentRow,
    deployment: number,
    failed: ReleaseRow,
    reason: string | null,
    restoredDigest?: string,
  ): Promise<NonNullable<DeployOutcome['revert']>> {
    const fields = { app, environment: env.name, deployment, release: Number(failed.id) };
    const skip = (why: string) => {
      this.log.warn({ ...fields, why }, 'the current release stays after a rolled-back deployment');
      return { skipped: why };
    };
    // What the hosts ran until this deployment: the newest earlier one that succeeded — of the digest the rollout saw
    // running again, when it says (the service may have been changed by hand since).
    const good = await this.deployments.newest(Number(env.id), { status: 'succeeded', before: deployment, ...(restoredDigest ? { digest: restoredDigest } : {}) });
    if (!good || good.release_id === null) {
      return skip(`no earlier successful deployment of ${app}/${env.name} is recorded, so the release the hosts went back to is unknown`);
    }
    if (good.digest === failed.digest) return { skipped: `the hosts went back to ${failed.digest}, the digest of the current release` };
    const note = `deployment #${deployment} of release #${failed.id} failed: ${reason ?? 'no reason given'}; rolled back`;
    try {
      const r = await this.delivery.revertFailedDeployment(app, env.name, { failed: Number(failed.id), to: Number(good.release_id), note });
      if ('skipped' in r) return skip(r.skipped);
      this.log.info({ ...fields, current: r.release.id, digest: r.release.digest }, 'the current release went back with the hosts');
      return r;
    } catch (e) {
      return skip((e as Error).message);
    }
  }
}

/** Whether the deployment started the release anywhere (the rollout got past pulling and checks). */
function triedOnTargets(result: DeploymentResult): boolean {
  return result.status !== 'failed' || result.steps.some((s) => s.containers.length > 0);
}
