// The reconcile loop of the server: every `interval` it compares what runs on each environment's targets with the
// environment's current release. A drift is announced once per change (a deployment.drift webhook, the
// wharf_environments_drifted metric, a log line); with `autoHeal: true` the current release is deployed again —
// never a pending or newer one. Environments with a deployment running are left alone until it ends.
import { resolveEnvironment, targetNames } from '../app-file/plan.js';
import type { DeployLog, DeployNotifier, DeployService } from './service.js';
import type { ReleaseWorkflow } from './release-workflow.js';

export const HEAL_ACTOR = 'wharf';

export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private stopped = false;
  /** the drift last announced per `app/env`, so that an unchanged drift is not announced again */
  private readonly announced = new Map<string, string>();

  constructor(
    private readonly service: DeployService,
    /** heals through the release workflow, as any deployment goes: a rollback on the hosts settles the releases too */
    private readonly releases: ReleaseWorkflow,
    private readonly notify: DeployNotifier,
    private readonly log: DeployLog,
    /** ms; 0 or less: never */
    private readonly interval: number,
  ) {}

  start(): void {
    if (this.interval > 0) this.arm();
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.current = this.runOnce()
        .catch((err) => this.log.warn({ err }, 'reconcile failed'))
        .finally(() => {
          this.current = undefined;
          this.arm();
        });
    }, this.interval);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.current;
  }

  /** One pass over every environment with targets and a current release. */
  async runOnce(): Promise<void> {
    for (const app of await this.service.apps()) {
      const f = await this.service.appFile(app);
      if (!f) continue;
      for (const name of Object.keys(f.file.environments)) {
        const plan = resolveEnvironment(f.file, name);
        if (targetNames(plan).length === 0) continue;
        await this.reconcile(app, name, plan.rules.autoHeal).catch((err) => this.log.warn({ err, app, environment: name }, 'reconcile of an environment failed'));
      }
    }
  }

  private async reconcile(app: string, environment: string, autoHeal: boolean): Promise<void> {
    const key = `${app}/${environment}`;
    if (await this.service.deploying(app, environment)) return;
    const [status] = await this.service.status(app, environment);
    if (!status || status.intended === null) return;
    const drift = status.targets.flatMap((t) => t.drift.map((d) => ({ target: t.target, ...d })));
    if (drift.length === 0) {
      this.service.drifted.delete(key);
      this.announced.delete(key);
      return;
    }
    this.service.drifted.add(key);
    const signature = JSON.stringify(drift.map((d) => [d.target, d.kind, d.container ?? null]));
    if (this.announced.get(key) !== signature) {
      this.announced.set(key, signature);
      this.log.warn({ app, environment, drift }, 'what runs drifted from the current release');
      this.notify({ type: 'deployment.drift', repository: app, environment, release: status.intended.releaseId, digest: status.intended.digest, drift, autoHeal });
    }
    if (!autoHeal) return;
    // Only drift a deployment can fix: an unreachable host stays drifted until it answers again; a container that is
    // not Wharf's is for a person to remove (a deployment is refused while it holds a port the app needs).
    if (drift.some((d) => d.kind === 'port_taken') || drift.every((d) => d.kind === 'host_down' || d.kind === 'foreign')) return;
    const outcome = await this.releases.deploy(app, environment, { actor: HEAL_ACTOR, trigger: 'auto-heal', currentOnly: true });
    this.log.info({ app, environment, deployment: outcome.deployment, status: outcome.result.status }, 'auto-heal deployed the current release');
  }
}
