// The deploy service: runs a deployment of one environment (Docker hosts or Swarm) and answers what runs where.
// Engines and secrets are handed in, and each call names the registered targets checked for it; the caller
// (server) records the result, holds the per-environment lock and streams the events.
import { targetNames, targetPlan, targetPlans } from '../app-file/plan.js';
import { planEngines } from './plan-engines.js';
import type { Engines } from '../engine/engines.js';
import type { SecretResolver } from './secrets.js';
import type { TargetConnection } from './target-policy.js';
import { rollOut } from './rollout.js';
import { deployToSwarm } from './swarm-rollout.js';
import { environmentStatus, type EnvironmentStatus, type StatusQuery } from './status.js';
import { emitter, type DeploymentRequest, type DeploymentResult } from './deployment.js';
import { specFingerprint } from './spec-fingerprint.js';
import { portConflicts } from './foreign-containers.js';

/**
 * Why a deployment of the intended release would change nothing (every target reachable and in sync: the
 * release's digest on every replica, healthy, made from this plan), or null when it would.
 */
function alreadyRunning(s: EnvironmentStatus, specs: string[]): string | null {
  // A container merely named like the app is shown by status, but a deployment neither changes nor needs it.
  if (s.targets.some((t) => t.drift.some((d) => d.kind !== 'foreign')) || s.targets.length === 0) return null;
  // Targets are in the plan's order: each is compared with its own plan (its overrides laid in).
  if (!s.targets.every((t, i) => t.reachable && t.containers.length > 0 && t.containers.every((c) => c.managed && c.spec === specs[i] && c.health !== 'starting'))) return null;
  const n = s.targets.reduce((sum, t) => sum + t.containers.length, 0);
  return `${s.intended!.digest} already runs on every target (${n} replica(s), healthy, same app file): nothing restarted; --force restarts`;
}

/** Secrets for a deployer that is never asked for any (tests of rollouts without secrets). */
export const noSecrets: SecretResolver = async (plan) => {
  if (Object.keys(plan.container.secrets).length > 0) throw new Error('this deployer has no secret store');
  return {};
};

export class Deployer {
  constructor(
    private readonly engines: Engines,
    private readonly secrets: SecretResolver = noSecrets,
  ) {}

  /** `connections`: the registered targets of the plan, already checked against its app and container options. */
  async deploy(req: DeploymentRequest, connections: ReadonlyMap<string, TargetConnection>): Promise<DeploymentResult> {
    const { plan } = req;
    const startedAt = Date.now();
    const targets = targetNames(plan);
    const refuse = (reason: string): DeploymentResult => {
      emitter(req)('finished', undefined, `failed: ${reason}`);
      const steps = targets.map((target) => ({ target, action: 'deploy' as const, containers: [], digest: req.release.digest, startedAt, finishedAt: startedAt, result: 'skipped' as const, reason }));
      return { status: 'failed', reason, steps, startedAt, finishedAt: Date.now() };
    };
    if (targets.length === 0) return refuse(`environment ${plan.environment} has no targets`);
    let secrets;
    try {
      secrets = await this.secrets(plan);
    } catch (e) {
      return refuse((e as Error).message);
    }
    const engines = planEngines(this.engines, connections);
    // A port held by another container would fail every new replica after the old ones stopped: refuse first.
    const hosts = plan.swarm ? [] : plan.targets.map((t) => ({ host: engines.dockerHost(t), plan: targetPlan(plan, t) }));
    if (!plan.swarm) {
      const taken = await portConflicts(hosts);
      if (taken !== null) return refuse(taken);
    }
    if (!req.force) {
      const now = await environmentStatus({ plan, image: req.image, intended: { releaseId: req.release.id, digest: req.release.digest } }, engines);
      const why = alreadyRunning(now, targetPlans(plan).map(specFingerprint));
      if (why !== null) {
        emitter(req)('finished', undefined, `unchanged: ${why}`);
        const steps = now.targets.map((t) => ({ target: t.target, action: 'deploy' as const, containers: t.containers.map((c) => c.name), digest: req.release.digest, startedAt, finishedAt: Date.now(), result: 'skipped' as const, reason: why }));
        return { status: 'succeeded', reason: why, unchanged: true, steps, startedAt, finishedAt: Date.now() };
      }
    }
    if (plan.swarm) return deployToSwarm(req, engines.orchestrator(plan.swarm), secrets);
    const proxies = new Map(plan.targets.flatMap((t, i) => (connections.get(t)?.proxy ? [[hosts[i]!.host.endpoint, connections.get(t)!.proxy!] as const] : [])));
    return rollOut(req, hosts, secrets, proxies);
  }

  status(query: StatusQuery, connections: ReadonlyMap<string, TargetConnection>): Promise<EnvironmentStatus> {
    return environmentStatus(query, planEngines(this.engines, connections));
  }
}
