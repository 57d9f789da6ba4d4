// The reconcile loop of the server: it compares what runs on each environment's targets with the environment's
// current release every `interval`, and within seconds of an engine event that may have changed what runs (a
// container of the app died, stopped or was removed; a Swarm service changed). A drift is announced once per change
// (a deployment.drift webhook, the wharf_environments_drifted metric, a log line); with `autoHeal: true` the current
// release is deployed again — never a pending or newer one. Wharf's own deployments are not fought: an environment
// being deployed or settled is looked at again only once that is over.
import { resolveEnvironment, targetNames } from '../app-file/plan.js';
import type { Engines } from '../engine/engines.js';
import { EngineWatch, type EnvironmentKey } from './engine-watch.js';
import type { DeployLog, DeployNotifier, DeployService } from './service.js';
import type { ReleaseWorkflow } from './release-workflow.js';

export const HEAL_ACTOR = 'wharf';

/** Events come in bursts (kill, die, destroy; several replicas): one look after the burst is quiet. */
const QUIET_MS = 500;
/** …but no later than this after the first event of a burst that does not end. */
const MAX_WAIT_MS = 3_000;
/** How often an environment being deployed is asked again whether the deployment is over. */
const BUSY_RETRY_MS = 1_000;
/**
 * After a deployment's record is finished, another server may still be settling the environment's releases
 * (a pending release becoming current): drift is not acted on until this long after.
 */
const SETTLE_MS = 3_000;
/** How often the set of watched targets follows the applied app files and the registrations. */
const WATCH_REFRESH_MS = 5_000;
/**
 * States in which the engine is itself bringing a replica back: a container its restart policy restarts, a Swarm
 * task being scheduled or started in place of one that died. Healing then would restart everything for nothing.
 */
const CONVERGING = new Set(['restarting', 'new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting']);
/** How often a converging environment is looked at again, and how long it may converge before it counts as drift. */
const CONVERGE_RETRY_MS = 3_000;
const MAX_CONVERGE_MS = 60_000;
/** A heal that did not succeed is not tried again for this long, doubling up to MAX_HEAL_BACKOFF_MS. */
const HEAL_BACKOFF_MS = 30_000;
const MAX_HEAL_BACKOFF_MS = 600_000;

/**
 * What one look at an environment came to. `busy`, `settling` and `converging` look again later; the others are
 * decisions: nothing to do, a drift left alone (announced, not healed: no autoHeal, nothing a deployment can fix, a
 * paused rollout), a heal held back after a failed one, a heal, or a look that failed.
 */
export type LookOutcome = 'busy' | 'settling' | 'converging' | 'in-sync' | 'nothing-intended' | 'drift' | 'backing-off' | 'healed' | 'heal-failed' | 'failed';

export interface ReconcilerOptions {
  /** ms between scheduled passes; 0 or less: no loop at all (neither schedule nor events) */
  interval: number;
  /** the engines' event streams; without them only the schedule runs */
  engines?: Pick<Engines, 'events'>;
  /** ms after a deployment's end before its environment is acted on (SETTLE_MS unless given) */
  settleMs?: number;
  /** ms without another event before an environment is looked at (QUIET_MS unless given) */
  quietMs?: number;
  /** ms between looks at an environment being deployed (BUSY_RETRY_MS unless given) */
  busyRetryMs?: number;
  /**
   * Told what each look at an environment came to: a test waits for the loop's decision (with idle()) instead of
   * sleeping for as long as the loop's windows might take.
   */
  onLook?: (env: EnvironmentKey, outcome: LookOutcome) => void;
}

export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private refresher: NodeJS.Timeout | undefined;
  private stopped = false;
  /** one reconcile at a time, scheduled and event-triggered alike: two never heal the same environment at once */
  private queue: Promise<void> = Promise.resolve();
  /** the drift last announced per `app/env`, so that an unchanged drift is not announced again */
  private readonly announced = new Map<string, string>();
  /** environments to look at soon (after an event, or once a deployment is over), by `app/env` */
  private readonly soon = new Map<string, { timer: NodeJS.Timeout; first: number }>();
  /** `app/env` → since when the engines have been bringing replicas back by themselves */
  private readonly convergingSince = new Map<string, number>();
  /** `app/env` → when a heal may be tried again, and the pause after the next failure */
  private readonly healBackoff = new Map<string, { until: number; next: number }>();
  private readonly watch: EngineWatch | undefined;
  /** looks queued or running */
  private working = 0;

  constructor(
    private readonly service: DeployService,
    /** heals through the release workflow, as any deployment goes: a rollback on the hosts settles the releases too */
    private readonly releases: ReleaseWorkflow,
    private readonly notify: DeployNotifier,
    private readonly log: DeployLog,
    private readonly options: ReconcilerOptions,
  ) {
    if (options.engines) {
      this.watch = new EngineWatch(options.engines, (env, why) => this.lookSoon(env, why, options.quietMs ?? QUIET_MS), log, service.eventStreams);
    }
  }

  start(): void {
    if (this.options.interval <= 0) return;
    this.arm();
    if (this.watch) void this.refreshWatch();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.refresher);
    for (const s of this.soon.values()) clearTimeout(s.timer);
    this.soon.clear();
    this.watch?.stop();
    await this.queue;
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.enqueue(() => this.runOnce()).finally(() => this.arm());
    }, this.options.interval);
    this.timer.unref();
  }

  /** Follows the applied app files: the targets of environments added since are watched, those of removed ones no more. */
  private async refreshWatch(): Promise<void> {
    try {
      this.watch!.update(await this.service.watchedEnvironments());
    } catch (err) {
      this.log.warn({ err }, 'the watched deploy targets could not be read');
    }
    if (this.stopped) return this.watch!.stop();
    this.refresher = setTimeout(() => void this.refreshWatch(), WATCH_REFRESH_MS);
    this.refresher.unref();
  }

  /**
   * True when every event heard has been looked at and decided: no look waiting for its time (after a burst, a
   * deployment, a converging replica) and none queued or running. The schedule's timer does not count, its pass does.
   */
  idle(): boolean {
    return this.soon.size === 0 && this.working === 0;
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    this.working++;
    const next = this.queue
      .then(work)
      .catch((err) => this.log.warn({ err }, 'reconcile failed'))
      .finally(() => this.working--);
    this.queue = next;
    return next;
  }

  /** Looks at the environment once `delay` passed without another call for it (at most MAX_WAIT_MS after the first). */
  private lookSoon(env: EnvironmentKey, why: string, delay: number): void {
    if (this.stopped) return;
    const key = `${env.app}/${env.environment}`;
    const now = Date.now();
    const waiting = this.soon.get(key);
    const first = waiting?.first ?? now;
    clearTimeout(waiting?.timer);
    const timer = setTimeout(() => {
      this.soon.delete(key);
      void this.enqueue(() => this.reconcileEnvironment(env, why));
    }, Math.max(0, Math.min(delay, first + Math.max(delay, MAX_WAIT_MS) - now)));
    timer.unref();
    this.soon.set(key, { timer, first });
  }

  /** One pass over every environment with targets and a current release. */
  async runOnce(): Promise<void> {
    for (const app of await this.service.apps()) {
      const f = await this.service.appFile(app).catch(() => null);
      if (!f) continue;
      for (const name of Object.keys(f.file.environments)) {
        if (this.stopped) return;
        await this.reconcileEnvironment({ app, environment: name }, 'schedule');
      }
    }
  }

  private async reconcileEnvironment(env: EnvironmentKey, why: string): Promise<void> {
    if (this.stopped) return;
    const f = await this.service.appFile(env.app).catch(() => null);
    if (!f?.file.environments[env.environment]) return;
    const plan = resolveEnvironment(f.file, env.environment);
    if (targetNames(plan).length === 0) return;
    const outcome = await this.reconcile(env, plan.rules.autoHeal, why).catch((err): LookOutcome => {
      this.log.warn({ err, app: env.app, environment: env.environment }, 'reconcile of an environment failed');
      return 'failed';
    });
    this.options.onLook?.(env, outcome);
  }

  private async reconcile(env: EnvironmentKey, autoHeal: boolean, why: string): Promise<LookOutcome> {
    const { app, environment } = env;
    const key = `${app}/${environment}`;
    // A deployment changes what runs on purpose, and its own stops and removals are events too: look once it is over.
    if (this.releases.busy(app, environment) || (await this.service.deploying(app, environment))) {
      this.lookSoon(env, why, this.options.busyRetryMs ?? BUSY_RETRY_MS);
      return 'busy';
    }
    const last = await this.service.lastFinished(app, environment);
    const settle = this.options.settleMs ?? SETTLE_MS;
    if (last !== undefined && Date.now() - last.at < settle) {
      this.lookSoon(env, why, Math.min(settle, last.at + settle - Date.now()));
      return 'settling';
    }
    const [status] = await this.service.status(app, environment);
    if (!status || status.intended === null) return 'nothing-intended';
    const drift = status.targets.flatMap((t) => t.drift.map((d) => ({ target: t.target, ...d })));
    if (drift.length === 0) {
      // Said after an event only (Wharf's own deployments are events too), not at every scheduled pass: why an
      // event healed nothing, and when the look it started is over.
      if (why !== 'schedule') this.log.info({ app, environment, seen: why }, 'looked after an engine event: it runs its current release');
      this.service.drifted.delete(key);
      this.announced.delete(key);
      this.healBackoff.delete(key);
      this.convergingSince.delete(key);
      return 'in-sync';
    }
    // The engine's restart policy (or Swarm) is bringing a replica back: give it time before calling it drift.
    if (status.targets.some((t) => t.containers.some((c) => CONVERGING.has(c.state)))) {
      const since = this.convergingSince.get(key) ?? Date.now();
      this.convergingSince.set(key, since);
      if (Date.now() - since < MAX_CONVERGE_MS) {
        this.lookSoon(env, why, CONVERGE_RETRY_MS);
        return 'converging';
      }
    } else {
      this.convergingSince.delete(key);
    }
    this.service.drifted.add(key);
    const signature = JSON.stringify(drift.map((d) => [d.target, d.kind, d.container ?? null]));
    if (this.announced.get(key) !== signature) {
      this.announced.set(key, signature);
      this.log.warn({ app, environment, drift, seen: why }, 'what runs drifted from the current release');
      this.notify({ type: 'deployment.drift', repository: app, environment, release: status.intended.releaseId, digest: status.intended.digest, drift, autoHeal });
    }
    if (!autoHeal) return 'drift';
    // Only drift a deployment can fix: an unreachable host stays drifted until it answers again; a container that is
    // not Wharf's is for a person to remove (a deployment is refused while it holds a port the app needs).
    if (drift.some((d) => d.kind === 'port_taken') || drift.every((d) => d.kind === 'host_down' || d.kind === 'foreign')) return 'drift';
    // A rollout paused on a failure waits for its operator (failureAction: pause): healing would undo the pause.
    if (status.attention?.status === 'paused') return 'drift';
    const backoff = this.healBackoff.get(key);
    if (backoff && Date.now() < backoff.until) return 'backing-off';
    const outcome = await this.releases.deploy(app, environment, { actor: HEAL_ACTOR, trigger: 'auto-heal', currentOnly: true });
    const healed = outcome.result.status === 'succeeded';
    // A heal that does not hold (an image that no longer pulls, a release that crashes again) is not retried at
    // every event of its crashing containers.
    const pause = backoff?.next ?? HEAL_BACKOFF_MS;
    if (healed) this.healBackoff.delete(key);
    else this.healBackoff.set(key, { until: Date.now() + pause, next: Math.min(pause * 2, MAX_HEAL_BACKOFF_MS) });
    this.log.info({ app, environment, deployment: outcome.deployment, status: outcome.result.status, seen: why }, 'auto-heal deployed the current release');
    return healed ? 'healed' : 'heal-failed';
  }
}
