// Rolling a release out to Docker hosts: pull everywhere first (nothing changes if a host cannot get the image),
// then switch hosts in batches of `parallelism` — start the new replicas, wait until healthy, stop the old ones
// (start-first) or stop first (stop-first) — keeping the old containers until the end, so that on a failure the
// hosts already switched get their previous containers back as they were. Behind a proxy (proxy.ts) the new
// replicas get ports of their own, and the proxy switches to them once they are healthy, then drains the old ones.
import { setTimeout as sleep } from 'node:timers/promises';
import { endpointAddress, parseEndpoint } from '../engine/endpoint.js';
import { LABELS } from './labels.js';
import type { ContainerState, DockerHost } from '../engine/docker-host.js';
import { containerCreate, replicaPort } from './container-create.js';
import { waitHealthy, type HealthWait } from './health.js';
import type { EnvironmentPlan } from '../app-file/plan.js';
import { redact, type SecretValues } from './secrets.js';
import { HostProxy, PROXY_LABELS, ProxyFailure } from './proxy.js';
import type { ProxyRegistration } from './target-registration.js';
import { digestOfRef, emitter, errorText, imageRef, type DeploymentRequest, type DeploymentResult, type DeploymentStep } from './deployment.js';

/** What a switched host needs for a rollback or the final cleanup. */
interface SwitchedHost {
  host: DockerHost;
  proxy?: HostProxy;
  created: ContainerState[];
  /** the app's containers on the host before this deployment; `running` as it was then */
  previous: ContainerState[];
}

type SwitchOutcome =
  | { ok: true; switched: SwitchedHost; step: DeploymentStep }
  /** `hadPrevious`: something of the app ran on the host before, so there was a release to fall back to */
  | { ok: false; step: DeploymentStep; hadPrevious: boolean };

/** One Docker host of the rollout, with the plan it runs (the environment's, with the host's overrides laid in). */
export interface RolloutHost {
  host: DockerHost;
  plan: EnvironmentPlan;
}

/** `proxies`: the proxy each host's registration allows, by endpoint (checked by target-policy.ts when the plan has a proxy). */
export async function rollOut(req: DeploymentRequest, targets: RolloutHost[], secrets: SecretValues, proxies: ReadonlyMap<string, ProxyRegistration> = new Map()): Promise<DeploymentResult> {
  const hosts = targets.map((t) => t.host);
  const planOf = (host: DockerHost) => targets.find((t) => t.host === host)!.plan;
  const startedAt = Date.now();
  const emit = emitter(req);
  const { rollout } = req.plan;
  const steps: DeploymentStep[] = [];
  const clean = (text: string) => redact(text, secrets);
  const finish = (status: DeploymentResult['status'], reason: string | null): DeploymentResult => {
    emit('finished', undefined, reason === null ? status : `${status}: ${reason}`);
    return { status, reason, steps, startedAt, finishedAt: Date.now() };
  };
  const skip = (rest: DockerHost[], why: string) => {
    const now = Date.now();
    for (const h of rest) steps.push({ target: h.endpoint, action: 'deploy', containers: [], digest: req.release.digest, startedAt: now, finishedAt: now, result: 'skipped', reason: why });
  };

  const counts = [...new Set(targets.map((t) => t.plan.replicas))];
  emit('started', undefined, `deploying ${imageRef(req.image, req.release.digest)} to ${hosts.length} host(s), ${counts.length === 1 ? `${counts[0]} replica(s) each` : `${counts.join(' or ')} replica(s) a host`}`);

  // Pull on every host at once: a host that is down or cannot pull stops the deployment before anything changed.
  const pulls = await Promise.all(
    hosts.map(async (host) => {
      const started = Date.now();
      try {
        await host.engine();
        emit('pulling', host.endpoint, `pulling ${req.release.digest}`);
        await host.pull(imageRef(req.image, req.release.digest), req.auth);
        emit('pulled', host.endpoint, 'pulled');
        return undefined;
      } catch (e) {
        const reason = `pull on ${host.endpoint} failed: ${clean(errorText(e))}`;
        emit('failed', host.endpoint, reason);
        return { target: host.endpoint, action: 'deploy', containers: [], digest: req.release.digest, startedAt: started, finishedAt: Date.now(), result: 'failed', reason } satisfies DeploymentStep;
      }
    }),
  );
  const pullFailures = pulls.filter((s) => s !== undefined);
  if (pullFailures.length > 0) {
    steps.push(...pullFailures);
    skip(hosts.filter((h) => !pullFailures.some((s) => s.target === h.endpoint)), 'not started: the image could not be pulled everywhere');
    return finish('failed', pullFailures[0]!.reason);
  }

  const switched: SwitchedHost[] = [];
  for (let i = 0; i < hosts.length; i += rollout.parallelism) {
    if (i > 0 && rollout.delay > 0) await sleep(rollout.delay);
    const batch = hosts.slice(i, i + rollout.parallelism);
    const outcomes = await Promise.all(
      batch.map((host) => {
        const own = { ...req, plan: planOf(host) };
        return switchHost(own, host, proxyOn(own, host, proxies, emit), secrets, emit, clean);
      }),
    );
    for (const o of outcomes) {
      steps.push(o.step);
      if (o.ok) switched.push(o.switched);
    }
    const failed = outcomes.find((o) => !o.ok);
    if (failed) {
      skip(hosts.slice(i + rollout.parallelism), 'not started: the rollout stopped at a failure');
      const reason = `${failed.step.target}: ${failed.step.reason}`;
      if (rollout.failureAction === 'pause') return finish('paused', reason);
      // Restored in batches of the rollback's own parallelism, newest switched first.
      const restores: DeploymentStep[] = [];
      const back = switched.reverse();
      const { rollback } = rollout;
      for (let j = 0; j < back.length; j += rollback.parallelism) {
        if (j > 0 && rollback.delay > 0) await sleep(rollback.delay);
        restores.push(...(await Promise.all(back.slice(j, j + rollback.parallelism).map((s) => restoreHost(req, s, emit, clean)))));
      }
      steps.push(...restores);
      const broken = restores.find((r) => r.result === 'failed');
      // Some hosts run the release, some nothing or the previous one: no release describes that.
      if (broken) return finish('needs_operator', `${reason}; rollback failed on ${broken.target}: ${broken.reason}; an operator must restore it`);
      // A first deployment that fails has nothing to roll back to: it simply failed.
      const fallback = switched.some((s) => s.previous.some((c) => c.running)) || outcomes.some((o) => !o.ok && o.hadPrevious);
      return finish(fallback ? 'rolled_back' : 'failed', reason);
    }
  }

  // Every host runs the release: only now are the previous containers removed.
  await Promise.all(
    switched.map(async (s) => {
      // An app file that dropped its proxy: the replicas serve themselves now, the proxy of before goes.
      if (!req.plan.proxy) {
        const proxies = await s.host.listContainers({ labels: { [PROXY_LABELS.app]: req.plan.app, [PROXY_LABELS.env]: req.plan.environment }, all: true }).catch(() => []);
        await Promise.all(proxies.map((p) => s.host.removeContainer(p.id).catch(() => undefined)));
      }
      const old = s.previous.filter((c) => !s.created.some((n) => n.id === c.id));
      if (old.length === 0) return;
      emit('cleanup', s.host.endpoint, `removing ${old.length} previous container(s)`);
      // A leftover is untidy but harmless: it is stopped, and the next deployment removes it.
      await Promise.all(old.map((c) => s.host.removeContainer(c.id).catch(() => undefined)));
    }),
  );
  return finish('succeeded', null);
}

function proxyOn(req: DeploymentRequest, host: DockerHost, proxies: ReadonlyMap<string, ProxyRegistration>, emit: ReturnType<typeof emitter>): HostProxy | undefined {
  const { plan } = req;
  if (plan.proxy === undefined) return undefined;
  const registration = proxies.get(host.endpoint);
  // checkPlan refuses a plan with a proxy on a target without one; reaching this is a bug, not a fallback
  if (registration === undefined) throw new Error(`target ${host.endpoint} has no proxy registered`);
  return new HostProxy(host, registration, { ...plan, proxy: plan.proxy }, (m) => emit('progress', host.endpoint, m));
}

/**
 * Behind a proxy: the ports for the new replicas, a set that none of the running containers holds — the app's
 * port and the ones after it, or the next `replicas` ports after those (so old and new alternate between two sets).
 */
export function proxiedPorts(base: number, replicas: number, running: ContainerState[]): number[] {
  const held = new Set(running.map((c) => portOf(c, base)).filter((p) => p !== undefined));
  for (const set of [0, 1]) {
    const ports = Array.from({ length: replicas }, (_, r) => base + set * replicas + r);
    if (!ports.some((p) => held.has(p))) return ports;
  }
  // Both sets partly held (replicas changed between deployments): past everything held.
  const from = Math.max(base + replicas, ...held) + 1;
  return Array.from({ length: replicas }, (_, r) => from + r);
}

async function switchHost(
  req: DeploymentRequest,
  host: DockerHost,
  proxy: HostProxy | undefined,
  secrets: SecretValues,
  emit: ReturnType<typeof emitter>,
  clean: (s: string) => string,
): Promise<SwitchOutcome> {
  const { plan } = req;
  const startedAt = Date.now();
  const created: ContainerState[] = [];
  let previous: ContainerState[] = [];
  let stoppedOld = false;
  /** the proxy forwards to the new replicas (an undo must point it back first) */
  let proxySwitched = false;
  let ports: number[] | undefined;
  const step = (result: DeploymentStep['result'], reason: string | null): DeploymentStep => ({
    target: host.endpoint,
    action: 'deploy',
    containers: created.map((c) => c.name),
    digest: req.release.digest,
    startedAt,
    finishedAt: Date.now(),
    result,
    reason,
  });
  const stopTimeoutSec = plan.container.stopTimeout === undefined ? undefined : Math.ceil(plan.container.stopTimeout / 1000);
  const stopPrevious = async () => {
    const running = previous.filter((c) => c.running);
    if (running.length === 0) return;
    emit('stopping', host.endpoint, `stopping ${running.length} previous container(s)`);
    stoppedOld = true;
    await Promise.all(running.map((c) => host.stopContainer(c.id, stopTimeoutSec)));
  };

  try {
    await host.engine();
    previous = await host.listContainers({ labels: { [LABELS.app]: plan.app, [LABELS.env]: plan.environment }, all: true });
    if (plan.rollout.order === 'stop-first') await stopPrevious();

    if (proxy) ports = proxiedPorts(plan.container.port!, plan.replicas, previous.filter((c) => c.running));
    emit('starting', host.endpoint, `starting ${plan.replicas} replica(s)${ports ? ` on port(s) ${ports.join(', ')}` : ''}`);
    const replicas = Array.from({ length: plan.replicas }, (_, r) => r);
    await Promise.all(
      replicas.map(async (r) => {
        const spec = containerCreate(req, r, secrets, ports?.[r]);
        const id = await host.createContainer(spec);
        // recorded before it starts, so that a failure anywhere after this removes it again
        created.push({ id, name: spec.name, image: spec.image, imageId: '', labels: spec.labels, status: 'created', running: false });
        await host.startContainer(id);
      }),
    );
    created.sort((a, b) => replicaOf(a) - replicaOf(b));
    const address = endpointAddress(parseEndpoint(host.endpoint));
    await requireHealthy(created, (c) => ({
      host,
      containerId: c.id,
      check: proxy ? proxiedCheck(plan) : plan.container.healthcheck,
      address,
      port: ports ? ports[replicaOf(c)] : replicaPort(plan.container, replicaOf(c)),
      timeoutMs: plan.rollout.healthTimeout,
      monitorMs: plan.rollout.monitor,
    }));
    emit('healthy', host.endpoint, `${created.length} replica(s) healthy`);
    await Promise.all(created.map((c) => host.keepRunning(c.id)));
    if (proxy) {
      // Marked before the switch: a switch that fails half-way is pointed back too.
      proxySwitched = true;
      await proxy.switchTo(ports!);
    }
    if (plan.rollout.order === 'start-first') await stopPrevious();
    emit('switched', host.endpoint, `now on ${req.release.digest}`);
    return { ok: true, switched: { host, proxy, created, previous }, step: step('succeeded', null) };
  } catch (e) {
    const reason = clean(e instanceof RolloutFailure || e instanceof ProxyFailure ? e.message : errorText(e));
    emit('failed', host.endpoint, reason);
    // Undo on this host: the new containers go, the previous ones run again (if the host still answers).
    const toStart = stoppedOld ? previous.filter((c) => c.running) : [];
    const undo = await (async () => {
      if (!(proxy && proxySwitched)) return undoHost(host, created, toStart, plan.rollout.healthTimeout);
      // The proxy forwards to the new replicas: the previous ones serve again, the proxy turns back, then they go.
      await startPrevious(host, toStart, plan.rollout.healthTimeout);
      await pointBack(proxy, plan, previous.filter((c) => c.running));
      await Promise.all(created.map((c) => host.removeContainer(c.id)));
      return undefined;
    })().catch((u) => `; undo failed: ${clean(errorText(u))}`);
    return { ok: false, step: step('failed', reason + (undo ?? '')), hadPrevious: previous.some((c) => c.running) };
  }
}

/** The host port a running replica holds: its label behind a proxy, else (host network) the app's port + replica. */
function portOf(c: ContainerState, base: number): number | undefined {
  const label = c.labels[LABELS.port];
  if (label !== undefined) return Number(label);
  const replica = c.labels[LABELS.replica];
  return replica === undefined ? undefined : base + Number(replica);
}

/** The health check of a replica behind a proxy: its healthPath, on the port Wharf gave it. */
function proxiedCheck(plan: DeploymentRequest['plan']): HealthWait['check'] {
  return { http: `http://{host}:{port}${plan.proxy!.healthPath}`, interval: PROXIED_PROBE_MS };
}

const PROXIED_PROBE_MS = 250;

/** Points the proxy back at the containers that ran before (their ports are labels); nothing ran: left as it is. */
async function pointBack(proxy: HostProxy, plan: DeploymentRequest['plan'], running: ContainerState[]): Promise<void> {
  const ports = running.map((c) => portOf(c, plan.container.port!)).filter((p) => p !== undefined);
  if (ports.length > 0) await proxy.switchTo(ports);
}

async function undoHost(host: DockerHost, created: ContainerState[], toStart: ContainerState[], healthTimeout: number): Promise<undefined> {
  await Promise.all(created.map((c) => host.removeContainer(c.id)));
  await startPrevious(host, toStart, healthTimeout);
  return undefined;
}

/** Starts containers that ran before and waits until they run again (healthy, if they have a HEALTHCHECK). */
async function startPrevious(host: DockerHost, containers: ContainerState[], healthTimeout: number): Promise<void> {
  await Promise.all(containers.map((c) => host.startContainer(c.id)));
  // They may come from an older spec, so only the engine's own health is trusted here, not the plan's check.
  await requireHealthy(containers, (c) => ({ host, containerId: c.id, address: '', timeoutMs: healthTimeout, monitorMs: 0 }));
}

/** Waits for all containers at once; the first unhealthy one fails the lot, named with its reason. */
async function requireHealthy(containers: ContainerState[], wait: (c: ContainerState) => HealthWait): Promise<void> {
  const outcomes = await Promise.all(containers.map((c) => waitHealthy(wait(c))));
  outcomes.forEach((o, i) => {
    if (!o.healthy) throw new RolloutFailure(`${containers[i]!.name}: ${o.reason}`);
  });
}

/** Brings back the containers that ran before, in the rollout's order, then removes the new ones. */
async function restoreHost(req: DeploymentRequest, s: SwitchedHost, emit: ReturnType<typeof emitter>, clean: (s: string) => string): Promise<DeploymentStep> {
  const startedAt = Date.now();
  const wasRunning = s.previous.filter((c) => c.running);
  const digest = wasRunning.map((c) => digestOfRef(c.image) ?? c.labels[LABELS.digest]).find((d) => d) ?? null;
  const step = (result: DeploymentStep['result'], reason: string | null): DeploymentStep => ({
    target: s.host.endpoint,
    action: 'restore',
    containers: wasRunning.map((c) => c.name),
    digest,
    startedAt,
    finishedAt: Date.now(),
    result,
    reason,
  });
  emit('restoring', s.host.endpoint, wasRunning.length ? `bringing back ${digest ?? 'the previous containers'}` : 'removing the new containers (nothing ran before)');
  try {
    const { plan } = req;
    const { rollout } = plan;
    const order = rollout.rollback.order;
    if (order === 'stop-first') await Promise.all(s.created.map((c) => s.host.removeContainer(c.id)));
    await startPrevious(s.host, wasRunning, rollout.healthTimeout);
    if (s.proxy) {
      // Serving before the proxy turns to them: their healthPath answers on the ports they hold.
      const address = endpointAddress(parseEndpoint(s.host.endpoint));
      await requireHealthy(wasRunning, (c) => ({ host: s.host, containerId: c.id, check: proxiedCheck(plan), address, port: portOf(c, plan.container.port!), timeoutMs: rollout.healthTimeout, monitorMs: 0 }));
      await pointBack(s.proxy, plan, wasRunning);
    }
    if (order === 'start-first') await Promise.all(s.created.map((c) => s.host.removeContainer(c.id)));
    emit('restored', s.host.endpoint, 'previous containers running again');
    return step('succeeded', null);
  } catch (e) {
    const reason = clean(e instanceof RolloutFailure || e instanceof ProxyFailure ? e.message : errorText(e));
    emit('failed', s.host.endpoint, `restore failed: ${reason}`);
    return step('failed', reason);
  }
}

class RolloutFailure extends Error {}

function replicaOf(c: ContainerState): number {
  return Number(c.labels[LABELS.replica]);
}
