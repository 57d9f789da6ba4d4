// The engine's container spec for replica i of a release on a Docker host, from the environment's plan. Pure.
import type { ContainerSpec } from '../app-file/plan.js';
import { LABELS } from './labels.js';
import type { ContainerCreate, DockerHealthConfig } from '../engine/docker-host.js';
import { imageRef, type DeploymentRequest } from './deployment.js';
import type { SecretValues } from './secrets.js';
import { specFingerprint } from './spec-fingerprint.js';

const NS_PER_MS = 1_000_000;

/** With host networking the replicas of one host share its ports, so replica i listens on port + i. */
export function replicaPort(c: ContainerSpec, replica: number): number | undefined {
  if (c.port === undefined) return undefined;
  return c.network === 'host' ? c.port + replica : c.port;
}

/** app/env → a container name part: repository slashes are not allowed in names. */
export function containerName(req: Pick<DeploymentRequest, 'id' | 'plan'>, replica: number): string {
  return `${req.plan.app.replaceAll('/', '_')}-${req.plan.environment}-${req.id}-${replica}`;
}

/**
 * `proxiedPort`: behind a proxy, the port Wharf chose for this replica (proxy.ts), told to the app in the
 * proxy's `portEnv` and kept as a label for the next switch.
 */
export function containerCreate(req: DeploymentRequest, replica: number, secrets: SecretValues, proxiedPort?: number): ContainerCreate {
  const c = req.plan.container;
  const port = proxiedPort ?? replicaPort(c, replica);
  const portEnv = req.plan.proxy?.portEnv ?? 'PORT';
  const env = { ...c.env, ...secrets, ...(port !== undefined ? { [portEnv]: String(port) } : {}), WHARF_REPLICA: String(replica) };
  return {
    name: containerName(req, replica),
    image: imageRef(req.image, req.release.digest),
    command: c.command,
    env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    labels: {
      ...c.labels,
      [LABELS.app]: req.plan.app,
      [LABELS.env]: req.plan.environment,
      [LABELS.release]: req.release.id === null ? '' : String(req.release.id),
      [LABELS.digest]: req.release.digest,
      [LABELS.deployment]: req.id,
      [LABELS.replica]: String(replica),
      [LABELS.spec]: specFingerprint(req.plan),
      ...(proxiedPort !== undefined ? { [LABELS.port]: String(proxiedPort) } : {}),
    },
    network: c.network,
    mounts: c.volumes.map((v) => ({ source: v.source, target: v.target, readOnly: v.readOnly ?? false })),
    healthcheck: dockerHealthcheck(c),
    stopTimeoutSec: c.stopTimeout === undefined ? undefined : Math.ceil(c.stopTimeout / 1000),
    ...(c.privileged ? { privileged: true } : {}),
    ...(c.capAdd?.length ? { capAdd: c.capAdd } : {}),
    ...(c.pid ? { pid: c.pid } : {}),
    ...(c.ipc ? { ipc: c.ipc } : {}),
    ...(c.devices?.length ? { devices: c.devices } : {}),
  };
}

/** Only an explicit `docker: {test: …}` overrides the image's HEALTHCHECK; `docker: image` keeps it. */
export function dockerHealthcheck(c: ContainerSpec): DockerHealthConfig | undefined {
  const d = c.healthcheck?.docker;
  if (d === undefined || d === 'image') return undefined;
  const ns = (ms: number | undefined) => (ms === undefined ? undefined : ms * NS_PER_MS);
  return {
    Test: typeof d.test === 'string' ? ['CMD-SHELL', d.test] : ['CMD', ...d.test],
    Interval: ns(d.interval),
    Timeout: ns(d.timeout),
    Retries: d.retries,
    StartPeriod: ns(d.startPeriod),
  };
}
