// The deploy service: runs a deployment of one environment (Docker hosts or Swarm) and answers what runs where.
// Engines and secrets are handed in; the caller (server) records the result, holds the per-environment lock and
// streams the events.
import { targetNames } from './app-file.js';
import type { Engines } from './engines.js';
import { serverSecrets, type SecretResolver } from './secrets.js';
import { rollOut } from './rollout.js';
import { deployToSwarm } from './swarm-rollout.js';
import { environmentStatus, type EnvironmentStatus, type StatusQuery } from './status.js';
import { emitter, type DeploymentRequest, type DeploymentResult } from './deployment.js';

export class Deployer {
  constructor(
    private readonly engines: Engines,
    private readonly secrets: SecretResolver = serverSecrets(),
  ) {}

  async deploy(req: DeploymentRequest): Promise<DeploymentResult> {
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
      secrets = await this.secrets(plan.container.secrets);
    } catch (e) {
      return refuse((e as Error).message);
    }
    if (plan.swarm) return deployToSwarm(req, this.engines.orchestrator(plan.swarm), secrets);
    return rollOut(req, plan.targets.map((t) => this.engines.dockerHost(t)), secrets);
  }

  status(query: StatusQuery): Promise<EnvironmentStatus> {
    return environmentStatus(query, this.engines);
  }
}

