// The Swarm service spec for a release, from the environment's plan: image repo@digest, labels, the container
// spec, and the rollout settings as Swarm's UpdateConfig and RollbackConfig. Pure; swarm-rollout.ts applies it.
import type { ServiceSpec, SwarmUpdateConfig } from '../engine/orchestrator.js';
import type { EnvironmentPlan } from '../app-file/plan.js';
import { dockerHealthcheck } from './container-create.js';
import { imageRef, type DeploymentRequest } from './deployment.js';
import { LABELS } from './labels.js';
import type { SecretValues } from './secrets.js';
import { specFingerprint } from './spec-fingerprint.js';

const NS_PER_MS = 1_000_000;

/** The service spec for the release, laid over the current one so fields set outside Wharf survive. */
export function serviceSpec(req: DeploymentRequest, secrets: SecretValues, current?: ServiceSpec): ServiceSpec {
  const { plan } = req;
  const c = plan.container;
  const labels = {
    [LABELS.app]: plan.app,
    [LABELS.env]: plan.environment,
    [LABELS.release]: req.release.id === null ? '' : String(req.release.id),
    [LABELS.digest]: req.release.digest,
    [LABELS.spec]: specFingerprint(plan),
  };
  const env = { ...c.env, ...secrets, ...(c.port !== undefined ? { PORT: String(c.port) } : {}), WHARF_REPLICA: '{{.Task.Slot}}' };
  const image = imageRef(req.image, req.release.digest);
  const task = current?.TaskTemplate;
  const sameImage = task?.ContainerSpec.Image === image;
  return {
    ...current,
    Name: plan.swarm!.service,
    Labels: { ...current?.Labels, ...labels },
    TaskTemplate: {
      ...task,
      ContainerSpec: {
        ...task?.ContainerSpec,
        Image: image,
        Args: c.command,
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        Labels: { ...c.labels, ...labels },
        Mounts: c.volumes.map((v) => ({ Type: v.source.startsWith('/') ? 'bind' : 'volume', Source: v.source, Target: v.target, ReadOnly: v.readOnly ?? false })),
        Healthcheck: dockerHealthcheck(c),
        StopGracePeriod: c.stopTimeout === undefined ? undefined : c.stopTimeout * NS_PER_MS,
      },
      Networks: c.network !== undefined ? [{ Target: c.network }] : task?.Networks,
      // Deploying the release that already runs restarts its tasks, as it does on Docker hosts.
      ForceUpdate: sameImage ? (task?.ForceUpdate ?? 0) + 1 : task?.ForceUpdate,
    },
    Mode: { Replicated: { Replicas: plan.replicas } },
    UpdateConfig: updateConfig(plan, plan.rollout.failureAction),
    RollbackConfig: rollbackConfig(plan),
  };
}

/** The rollback's own parallelism, delay, order and monitor; it pauses on the first failure (Wharf then reports it). */
function rollbackConfig(plan: EnvironmentPlan): SwarmUpdateConfig {
  const r = plan.rollout.rollback;
  return { Parallelism: r.parallelism, Delay: r.delay * NS_PER_MS, FailureAction: 'pause', Monitor: r.monitor * NS_PER_MS, MaxFailureRatio: 0, Order: r.order };
}

function updateConfig(plan: EnvironmentPlan, failureAction: SwarmUpdateConfig['FailureAction']): SwarmUpdateConfig {
  const r = plan.rollout;
  return {
    Parallelism: r.parallelism,
    Delay: r.delay * NS_PER_MS,
    FailureAction: failureAction,
    Monitor: r.monitor * NS_PER_MS,
    MaxFailureRatio: 0,
    Order: r.order,
  };
}
