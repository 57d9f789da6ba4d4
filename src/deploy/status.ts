// What runs where, asked of the live engines: per target, the containers (or Swarm tasks) of the app with the
// digest they actually run, compared with the release Wharf intends; differences are marked as drift.
import { type EnvironmentPlan, swarmTarget, targetPlan } from '../app-file/plan.js';
import { LABELS } from './labels.js';
import type { ContainerState, DockerHost, HealthStatus } from '../engine/docker-host.js';
import type { Orchestrator } from '../engine/orchestrator.js';
import type { PlanEngines } from './plan-engines.js';
import { digestOfRef, errorText } from './deployment.js';
import { describeHolder, foreignContainers } from './foreign-containers.js';
import { PROXY_LABELS, proxyContainerName } from './proxy.js';

/**
 * `port_taken`: another container holds a host port the replicas bind; `foreign`: a container named like the app,
 * not Wharf's; `proxy_down`: behind a proxy, its container is not running, so nothing serves the public port.
 */
export type DriftKind = 'host_down' | 'missing_replica' | 'extra_replica' | 'wrong_image' | 'unmanaged' | 'unhealthy' | 'missing_service' | 'port_taken' | 'foreign' | 'proxy_down';

export interface Drift {
  kind: DriftKind;
  message: string;
  /** the container name or task id concerned */
  container?: string;
}

export interface RunningContainer {
  /** container name, or task id on Swarm */
  name: string;
  id: string;
  digest: string | null;
  release: string | null;
  state: string;
  health?: HealthStatus;
  /** started by Wharf (carries its labels) */
  managed: boolean;
  /** the fingerprint of the plan it was made from (spec-fingerprint.ts), if it carries one */
  spec?: string;
}

export interface TargetStatus {
  target: string;
  reachable: boolean;
  containers: RunningContainer[];
  drift: Drift[];
}

export interface EnvironmentStatus {
  app: string;
  environment: string;
  intended: { releaseId: number | null; digest: string } | null;
  targets: TargetStatus[];
  inSync: boolean;
  /** the newest deployment, when it ended paused or needing an operator: what runs matches no release */
  attention?: { deployment: number; status: string; reason: string | null };
}

export interface StatusQuery {
  plan: EnvironmentPlan;
  /** the repository as the hosts reach Wharf, e.g. 127.0.0.1:5000/myapp */
  image: string;
  /** the environment's current release; null if it has none */
  intended: { releaseId: number | null; digest: string } | null;
}

export async function environmentStatus(
  q: StatusQuery,
  engines: PlanEngines,
): Promise<EnvironmentStatus> {
  const targets = q.plan.swarm
    ? [await swarmStatus(q, engines.orchestrator(q.plan.swarm))]
    : await Promise.all(q.plan.targets.map((t) => hostStatus({ ...q, plan: targetPlan(q.plan, t) }, engines.dockerHost(t))));
  return {
    app: q.plan.app,
    environment: q.plan.environment,
    intended: q.intended,
    targets,
    inSync: targets.every((t) => t.drift.length === 0),
  };
}

async function hostStatus(q: StatusQuery, host: DockerHost): Promise<TargetStatus> {
  return targetStatus(q, host.endpoint, 'host', async (containers) => {
    await host.engine();
    const managed = await host.listContainers({ labels: { [LABELS.app]: q.plan.app, [LABELS.env]: q.plan.environment } });
    // Someone may have started the app's image by hand, without Wharf's labels: that runs here too. Docker names
    // the image by its ID once the tag it was started from moved, so an ID is looked up too.
    const unmanaged: ContainerState[] = [];
    for (const c of await host.listContainers({})) {
      if (c.labels[LABELS.app] === undefined && (await isAppImage(host, c, q.image))) unmanaged.push(c);
    }
    for (const c of [...managed, ...unmanaged]) {
      containers.push({
        name: c.name,
        id: c.id,
        digest: await runningDigest(host, c, q.image),
        release: c.labels[LABELS.release] || null,
        state: c.status,
        health: c.health,
        managed: c.labels[LABELS.app] !== undefined,
        spec: c.labels[LABELS.spec],
      });
    }
    // What stands in the way without being the environment's: a deploy here cannot start while it holds a port.
    const drift: Drift[] = [];
    for (const f of await foreignContainers(host, q.plan)) {
      const name = f.container.name;
      if (f.ports.length > 0) drift.push({ kind: 'port_taken', container: name, message: `${describeHolder(f)}: a deploy cannot start here` });
      else if (!unmanaged.some((u) => u.id === f.container.id)) drift.push({ kind: 'foreign', container: name, message: `${name} is named like the app but was not started by Wharf (runs ${f.container.image})` });
    }
    if (q.plan.proxy) {
      const proxy = await host.listContainers({ labels: { [PROXY_LABELS.app]: q.plan.app, [PROXY_LABELS.env]: q.plan.environment } });
      if (proxy.length === 0) drift.push({ kind: 'proxy_down', container: proxyContainerName(q.plan), message: `the proxy is not running: nothing serves port ${q.plan.proxy.port} (a deploy starts it again)` });
    }
    return drift;
  });
}

async function swarmStatus(q: StatusQuery, orch: Orchestrator): Promise<TargetStatus> {
  const name = q.plan.swarm!.service;
  return targetStatus(q, swarmTarget(q.plan), 'manager', async (containers) => {
    await orch.engine();
    const service = await orch.inspectService(name);
    if (service === undefined) return [{ kind: 'missing_service', message: `service ${name} does not exist` }];
    const spec = service.spec.Labels?.[LABELS.spec];
    for (const t of await orch.listTasks(name)) {
      if (t.desiredState === 'running') containers.push({ name: t.id, id: t.id, digest: digestOfRef(t.image), release: null, state: t.state, managed: true, spec });
    }
    const image = service.spec.TaskTemplate.ContainerSpec.Image;
    const specDigest = digestOfRef(image);
    return q.intended && specDigest !== q.intended.digest ? [{ kind: 'wrong_image', message: `service ${name} is set to ${specDigest ?? image}` }] : [];
  });
}

/** Reads one target; an engine that does not answer is itself the drift. */
async function targetStatus(
  q: StatusQuery,
  target: string,
  what: 'host' | 'manager',
  read: (containers: RunningContainer[]) => Promise<Drift[]>,
): Promise<TargetStatus> {
  const containers: RunningContainer[] = [];
  try {
    const drift = await read(containers);
    return { target, reachable: true, containers, drift: [...drift, ...compare(q, containers)] };
  } catch (e) {
    return { target, reachable: false, containers: [], drift: [{ kind: 'host_down', message: `${what} unreachable: ${errorText(e)}` }] };
  }
}

/** Drift between the intended release and what runs on one target. */
function compare(q: StatusQuery, containers: RunningContainer[]): Drift[] {
  const drift: Drift[] = [];
  const intended = q.intended?.digest;
  for (const c of containers) {
    if (!c.managed) {
      drift.push({ kind: 'unmanaged', container: c.name, message: `${c.name} was not started by Wharf and runs ${c.digest ?? 'an unknown digest'}` });
    } else if (intended !== undefined && c.digest !== intended) {
      drift.push({ kind: 'wrong_image', container: c.name, message: `${c.name} runs ${c.digest ?? 'an unknown digest'}` });
    } else if (c.health === 'unhealthy') {
      drift.push({ kind: 'unhealthy', container: c.name, message: `${c.name} is unhealthy` });
    }
  }
  if (intended !== undefined) {
    const good = containers.filter((c) => c.managed && c.digest === intended && c.state === 'running' && c.health !== 'unhealthy').length;
    const want = q.plan.replicas;
    if (good < want) drift.push({ kind: 'missing_replica', message: `${good} of ${want} replica(s) run the intended release` });
    if (good > want) drift.push({ kind: 'extra_replica', message: `${good} replicas run, ${want} intended` });
  }
  return drift;
}

/** Started from the app's repository: by the name it was started with, or, when Docker shows an image ID, by the image's own names. */
async function isAppImage(host: DockerHost, c: ContainerState, image: string): Promise<boolean> {
  if (repositoryOf(c.image) === image) return true;
  if (!/^(sha256:)?[0-9a-f]{12,64}$/.test(c.image)) return false;
  return (await host.imageRepoDigests(c.imageId || c.image)).some((d) => repositoryOf(d) === image);
}

/** A container made from repo@digest says so; one made from a tag is looked up in the engine's RepoDigests. */
async function runningDigest(host: DockerHost, c: ContainerState, image: string): Promise<string | null> {
  const pinned = digestOfRef(c.image);
  if (pinned !== null) return pinned;
  const digests = await host.imageRepoDigests(c.imageId || c.image);
  const own = digests.find((d) => repositoryOf(d) === image) ?? digests[0];
  return own === undefined ? null : digestOfRef(own);
}

/** `host:5000/team/app:1.2@sha256:…` → `host:5000/team/app` */
export function repositoryOf(ref: string): string {
  const at = ref.indexOf('@');
  const name = at < 0 ? ref : ref.slice(0, at);
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(0, colon) : name;
}
