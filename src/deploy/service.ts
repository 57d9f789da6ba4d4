// Deployments as the server runs them: the applied app file of each application, the rollout of an environment's
// release through the Deployer (recorded, progress streamed to the caller, deploy.* webhooks), and `status` — what
// the live engines run against what Wharf intends. The release workflow (release-workflow.ts) drives rollouts.
import { RegistryError } from '../oci/errors.js';
import type { AppFileMetadata, DeliveryMetadata, DeploymentMetadata, DeploymentRecord, EnvironmentRow, RegistryMetadata, ReleaseRow } from '../metadata/metadata.js';
import type { HistoryMatch } from '../metadata/records.js';
import type { Delivery, EnvironmentOptions, Release } from '../delivery/releases.js';
import { AppFileError, parseAppFile } from '../app-file/parse.js';
import { type EnvironmentPlan, registeredTargets, resolveEnvironment } from '../app-file/plan.js';
import { stringifyAppFile } from '../app-file/document.js';
import type { AppFile } from '../app-file/schema.js';
import { diffAppFiles, type AppFileChange } from '../app-file/diff.js';
import type { Deployer } from './deployer.js';
import { AppliedAppFiles } from './applied-app-files.js';
import { needsOperator, type DeployEvent, type DeploymentResult } from './deployment.js';
import type { RegistryAuth } from '../engine/docker-host.js';
import type { EnvironmentStatus } from './status.js';
import type { DeployTargets } from './targets.js';
import { checkPlan, connectionOf, type PolicyRefusal, type TargetConnection, type TargetRegistration } from './target-policy.js';

export interface DeployNotifier {
  (event: { type: DeployEventType | 'deployment.drift'; repository: string } & Record<string, unknown>): void;
}

export type DeployEventType = 'deploy.started' | 'deploy.succeeded' | 'deploy.failed' | 'deploy.rolled_back' | 'deploy.needs_operator';

/** The webhook event a finished deployment sends. */
export function finishedEvent(status: DeploymentResult['status']): DeployEventType {
  if (status === 'succeeded') return 'deploy.succeeded';
  if (status === 'rolled_back') return 'deploy.rolled_back';
  return needsOperator(status) ? 'deploy.needs_operator' : 'deploy.failed';
}

export interface DeployOutcome {
  deployment: number;
  environment: string;
  digest: string;
  release: number | null;
  result: DeploymentResult;
  /** after a rollback on the hosts: the release recorded so that the environment names what runs again, or why none was */
  revert?: { release: Release } | { skipped: string };
  /** a pending release whose deployment succeeded: now the environment's current release */
  current?: Release;
}

/** One finished deployment, with what the release workflow settles the environment's releases by. */
export interface Rollout {
  app: string;
  outcome: DeployOutcome;
  environment: EnvironmentRow;
  /** the release it shipped */
  release: ReleaseRow;
  /** whether that release was already the environment's current one (a redeploy), not a pending one */
  wasCurrent: boolean;
}

/** An environment that deploys to registered targets, as the reconcile loop watches it. */
export interface WatchedEnvironment {
  app: string;
  environment: string;
  /** its registered targets, checked to be for the app: the Docker hosts, or the Swarm manager */
  targets: TargetConnection[];
  /** the Swarm service, when it runs on Swarm (on its only target) */
  service?: string;
}

/** Where the service tells what it decided by itself (the server's logger). */
export interface DeployLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface ApplyResult {
  app: string;
  changes: AppFileChange[];
  applied: boolean;
}

/** What deployments need from the hub around them, handed in by the composition root. */
export interface DeployServiceOptions {
  /** host[:port] the deploy targets pull from: the address clients use (the external URL's, else the listening one) */
  registryHost: string;
  /**
   * A short-lived token that may only pull the app, for the engines (X-Registry-Auth); absent when authentication
   * is off, and then the engines pull anonymously.
   */
  pullToken?: (repository: string, actor: string | null) => Promise<string>;
  log?: DeployLog;
}

export class DeployService {
  /** host[:port] the deploy targets pull from */
  readonly registryHost: string;
  private readonly pullToken: DeployServiceOptions['pullToken'];
  private readonly log: DeployLog;
  private readonly applied: AppliedAppFiles;
  /** finished deployments since the start, by status (for the metrics) */
  readonly outcomes = new Map<string, number>();
  /** `app/env` of environments the reconcile loop last found drifted (for the metrics) */
  readonly drifted = new Set<string>();
  /** registered target → whether the reconcile loop's event stream from its engine is open now (for the metrics) */
  readonly eventStreams = new Map<string, boolean>();

  constructor(
    private readonly meta: RegistryMetadata,
    private readonly deliveryStore: DeliveryMetadata,
    private readonly delivery: Delivery,
    private readonly deployments: DeploymentMetadata,
    private readonly appFiles: AppFileMetadata,
    private readonly deployer: Deployer,
    private readonly targets: DeployTargets,
    private readonly notify: DeployNotifier,
    options: DeployServiceOptions,
  ) {
    this.registryHost = options.registryHost;
    this.pullToken = options.pullToken;
    this.log = options.log ?? { info: () => {}, warn: () => {} };
    this.applied = new AppliedAppFiles(appFiles);
  }

  /** The credentials handed to the engines for the pull: a pull token when authentication is on. */
  private async pullAuth(app: string, actor: string | null): Promise<RegistryAuth | undefined> {
    if (!this.pullToken) return undefined;
    return { serveraddress: this.registryHost, registrytoken: await this.pullToken(app, actor) };
  }

  /** At server start: a deployment cut off by a crash or restart is recorded as interrupted, freeing its environment. */
  interruptRunning(): Promise<number> {
    return this.deployments.interruptRunning();
  }

  // --- app files -------------------------------------------------------------------------------

  appFile(app: string): Promise<{ text: string; file: AppFile } | null> {
    return this.applied.get(app);
  }

  /** Validates and stores an app file, and creates or updates its environments with their rules. */
  async apply(text: string, opts: { app?: string; dryRun: boolean; actor: string | null }): Promise<ApplyResult> {
    let file: AppFile;
    try {
      file = parseAppFile(text);
    } catch (e) {
      if (e instanceof AppFileError) throw new RegistryError('INVALID', e.message);
      throw e;
    }
    if (opts.app !== undefined && file.app !== opts.app) {
      throw new RegistryError('INVALID', `the file is for app ${file.app}, not ${opts.app}`);
    }
    // The targets' registrations decide what this app may run where; checked again at every deploy.
    const lookup = await this.targets.lookup();
    const refusals = Object.keys(file.environments).flatMap((name) => checkPlan(resolveEnvironment(file, name), lookup));
    if (refusals.length > 0) throw new RegistryError('DENIED', `refused: ${formatRefusals(refusals)}`);
    // A stored file that today's rules refuse is replaced as if there were none.
    const before = await this.appFile(file.app).catch((e: unknown) => {
      if (e instanceof RegistryError && e.code === 'CONFLICT') return null;
      throw e;
    });
    const changes = diffAppFiles(before?.file, file);
    if (opts.dryRun) return { app: file.app, changes, applied: false };
    const repoId = await this.meta.ensureRepository(file.app);
    // Environments that others must be promoted from come first, so the rule can name them.
    const pending = Object.keys(file.environments);
    const done = new Set((await this.deliveryStore.environments(file.app)).map((e) => e.name));
    while (pending.length > 0) {
      const i = pending.findIndex((n) => {
        const from = file.environments[n]!.requiresPromotionFrom;
        return !from || done.has(from) || !pending.includes(from);
      });
      const name = pending.splice(i < 0 ? 0 : i, 1)[0]!;
      const rules = resolveEnvironment(file, name).rules;
      const options: EnvironmentOptions = { ...rules };
      await this.delivery.ensureEnvironment(file.app, name, options);
      done.add(name);
    }
    await this.appFiles.put(repoId, text, opts.actor);
    return { app: file.app, changes, applied: true };
  }

  /** The protected environments this app file would leave unprotected. */
  async unprotects(text: string): Promise<string[]> {
    const file = parseAppFile(text);
    const envs = await this.deliveryStore.environments(file.app);
    return envs.filter((e) => e.protected === 1 && file.environments[e.name] !== undefined && file.environments[e.name]!.protected !== true).map((e) => e.name);
  }

  async render(app: string): Promise<string> {
    const f = await this.requireAppFile(app);
    return stringifyAppFile(f.file);
  }

  private async requireAppFile(app: string): Promise<{ text: string; file: AppFile }> {
    const f = await this.appFile(app);
    if (!f) throw new RegistryError('NOT_FOUND', `app ${app} has no app file: run 'wharf apply -f wharf.yaml'`);
    return f;
  }

  /** Every application with an applied app file. */
  async apps(): Promise<string[]> {
    return this.appFiles.apps();
  }

  /**
   * Every environment that deploys to registered targets the app may use, with their connections: what the
   * reconcile loop listens to. A file today's rules refuse, or a target not registered for the app, is left out.
   */
  async watchedEnvironments(): Promise<WatchedEnvironment[]> {
    const lookup = await this.targets.lookup();
    const out: WatchedEnvironment[] = [];
    for (const app of await this.apps()) {
      const f = await this.appFile(app).catch(() => null);
      if (!f) continue;
      for (const name of Object.keys(f.file.environments)) {
        const plan = resolveEnvironment(f.file, name);
        if (registeredTargets(plan).length === 0 || checkPlan(plan, lookup, { targetsOnly: true }).length > 0) continue;
        out.push({ app, environment: name, targets: [...connectionsOf(plan, lookup).values()], ...(plan.swarm ? { service: plan.swarm.service } : {}) });
      }
    }
    return out;
  }

  /** When the environment's newest deployment finished (ms since the epoch), and how, if it has one. */
  async lastFinished(app: string, environment: string): Promise<{ at: number; status: string } | undefined> {
    const env = await this.deliveryStore.environment(app, environment);
    const last = env && (await this.deployments.newestFinished(Number(env.id)));
    return last ? { at: Number(last.finished_at), status: last.status } : undefined;
  }

  /** Whether a deployment of the environment is running now. */
  async deploying(app: string, environment: string): Promise<boolean> {
    const env = await this.deliveryStore.environment(app, environment);
    return env !== undefined && (await this.deployments.running(Number(env.id))) !== undefined;
  }

  /** Whether the environment deploys somewhere (Docker hosts or a Swarm service) per the applied app file. */
  hasTargets(app: string, environment: string): Promise<boolean> {
    return this.applied.hasTargets(app, environment);
  }

  isProtected(app: string, environment: string): Promise<boolean> {
    return this.delivery.isProtected(app, environment);
  }

  /** Whether releasing to this environment should also deploy (its autoDeploy rule, with targets to deploy to). */
  async autoDeploys(app: string, environment: string): Promise<boolean> {
    const f = await this.appFile(app).catch((e: unknown) => {
      // a stored file today's rules refuse: the deployment says why, rather than the release passing silently
      if (e instanceof RegistryError && e.code === 'CONFLICT') return 'refused' as const;
      throw e;
    });
    if (f === 'refused') return true;
    const env = f?.file.environments[environment];
    return env !== undefined && (env.autoDeploy ?? false);
  }

  // --- deploying -------------------------------------------------------------------------------

  /**
   * Rolls out the environment's pending release, else its current one (a redeploy); `currentOnly`: the current one
   * even when another is pending (healing never ships something newer). Resolves when the deployment has finished,
   * whatever its outcome, recorded; what the outcome means for the environment's releases (current, abandoned,
   * reverted) is the release workflow's to settle (release-workflow.ts).
   */
  async rollout(app: string, environment: string, opts: { actor: string | null; trigger: string; force?: boolean; currentOnly?: boolean; onEvent?: (e: DeployEvent) => void }): Promise<Rollout> {
    const { file } = await this.requireAppFile(app);
    if (!file.environments[environment]) throw new RegistryError('NOT_FOUND', `the app file of ${app} has no environment ${environment}`);
    const plan = resolveEnvironment(file, environment);
    const env = await this.deliveryStore.environment(app, environment);
    if (!env) throw new RegistryError('NOT_FOUND', `environment ${app}/${environment} does not exist`);
    // The release waiting for its deployment, else the current one (a redeploy).
    const releaseId = opts.currentOnly ? env.current_release_id : (env.pending_release_id ?? env.current_release_id);
    if (releaseId === null) throw new RegistryError('NOT_FOUND', `${app}/${environment} has no release to deploy`);
    const release = (await this.deliveryStore.release(Number(releaseId)))!;
    const wasCurrent = Number(releaseId) === Number(env.current_release_id);
    const image = `${this.registryHost}/${app}`;
    // The registrations may have changed since the file was applied (or the stored file may not be what apply
    // checked): what deploys is what they allow now.
    const lookup = await this.targets.lookup();
    const refusals = checkPlan(plan, lookup);
    const id = await this.deployments.begin({
      environmentId: Number(env.id),
      releaseId: Number(release.id),
      digest: release.digest,
      image,
      kind: plan.swarm ? 'swarm' : 'docker',
      trigger: opts.trigger,
      actor: opts.actor,
    });
    const base = { repository: app, environment, deployment: id, release: Number(release.id), digest: release.digest, version: release.version, actor: opts.actor };
    this.notify({ type: 'deploy.started', ...base });
    let result: DeploymentResult;
    try {
      if (refusals.length > 0) throw new Error(`refused: ${formatRefusals(refusals)}`);
      result = await this.deployer.deploy({
        id: String(id),
        plan,
        image,
        release: { id: Number(release.id), digest: release.digest },
        auth: await this.pullAuth(app, opts.actor),
        force: opts.force,
        onEvent: opts.onEvent,
      }, connectionsOf(plan, lookup));
    } catch (e) {
      const now = Date.now();
      result = { status: 'failed', reason: (e as Error).message, steps: [], startedAt: now, finishedAt: now };
    }
    await this.deployments.finish(id, result);
    this.outcomes.set(result.status, (this.outcomes.get(result.status) ?? 0) + 1);
    this.notify({ type: finishedEvent(result.status), ...base, status: result.status, reason: result.reason });
    if (needsOperator(result.status)) this.log.warn({ app, environment, deployment: id, status: result.status, reason: result.reason }, 'a deployment needs an operator');
    return { app, outcome: { deployment: id, environment, digest: release.digest, release: Number(release.id), result }, environment: env, release, wasCurrent };
  }

  /** The newest deployment of each release, for release listings. */
  async latestDeployments(releaseIds: number[]): Promise<Map<number, { id: number; status: string; reason: string | null }>> {
    const rows = await this.deployments.latestOfReleases(releaseIds);
    return new Map([...rows].map(([release, d]) => [release, { id: Number(d.id), status: d.status, reason: d.reason }]));
  }

  async status(app: string, environment?: string): Promise<EnvironmentStatus[]> {
    const { file } = await this.requireAppFile(app);
    const names = environment === undefined ? Object.keys(file.environments) : [environment];
    const out: EnvironmentStatus[] = [];
    const lookup = await this.targets.lookup();
    for (const name of names) {
      if (!file.environments[name]) throw new RegistryError('NOT_FOUND', `the app file of ${app} has no environment ${name}`);
      const plan = resolveEnvironment(file, name);
      // Status reads the engines too: only those registered for this app.
      const unusable = checkPlan(plan, lookup, { targetsOnly: true });
      if (unusable.length > 0) throw new RegistryError('DENIED', `refused: ${formatRefusals(unusable)}`);
      const env = await this.deliveryStore.environment(app, name);
      const current = env?.current_release_id == null ? undefined : await this.deliveryStore.release(Number(env.current_release_id));
      const live = await this.deployer.status(
        { plan, image: `${this.registryHost}/${app}`, intended: current ? { releaseId: Number(current.id), digest: current.digest } : null },
        connectionsOf(plan, lookup),
      );
      // A deployment that ended needing an operator stays in the status until a later one finishes.
      const last = env ? await this.deployments.newestFinished(Number(env.id)) : undefined;
      if (last && needsOperator(last.status)) {
        live.attention = { deployment: Number(last.id), status: last.status, reason: last.reason };
        live.inSync = false;
      }
      out.push(live);
    }
    return out;
  }

  /** Environments whose newest finished deployment needs an operator (for the metrics). */
  needingOperator(): Promise<number> {
    return this.deployments.countNeedingOperator();
  }

  async history(app: string, environment: string, limit?: number, before?: number, match?: HistoryMatch): Promise<DeploymentRecord[]> {
    const env = await this.deliveryStore.environment(app, environment);
    if (!env) throw new RegistryError('NOT_FOUND', `environment ${app}/${environment} does not exist`);
    return this.deployments.list(Number(env.id), limit, before, match);
  }
}

function formatRefusals(refusals: PolicyRefusal[]): string {
  return refusals.map((r) => `${r.path}: ${r.message}`).join('; ');
}

/** The connections of the plan's targets, after checkPlan found every one registered for the app. */
function connectionsOf(plan: EnvironmentPlan, lookup: (name: string) => TargetRegistration | undefined): Map<string, TargetConnection> {
  const out = new Map<string, TargetConnection>();
  for (const name of registeredTargets(plan)) {
    const t = lookup(name);
    if (t) out.set(name, connectionOf(t));
  }
  return out;
}
