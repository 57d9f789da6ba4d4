// Rolling a release out to Docker hosts: pull everywhere first (nothing changes if a host cannot get the image),
// then switch hosts in batches of `parallelism` — start the new replicas, wait until healthy, stop the old ones
// (start-first) or stop first (stop-first) — keeping the old containers until the end, so that on a failure the
// hosts already switched get their previous containers back as they were.
import { setTimeout as sleep } from 'node:timers/promises';
import { endpointAddress, parseEndpoint } from '../engine/endpoint.js';
import { LABELS } from './labels.js';
import type { ContainerState, DockerHost } from '../engine/docker-host.js';
import { containerCreate, replicaPort } from './container-create.js';
import { waitHealthy, type HealthWait } from './health.js';
import { redact, type SecretValues } from './secrets.js';
import { digestOfRef, emitter, errorText, imageRef, type DeploymentRequest, type DeploymentResult, type DeploymentStep } from './deployment.js';

/** What a switched host needs for a rollback or the final cleanup. */
interface SwitchedHost {
  host: DockerHost;
  created: ContainerState[];
  /** the app's containers on the host before this deployment; `running` as it was then */
  previous: ContainerState[];
}

type SwitchOutcome =
  | { ok: true; switched: SwitchedHost; step: DeploymentStep }
  /** `hadPrevious`: something of the app ran on the host before, so there was a release to fall back to */
  | { ok: false; step: DeploymentStep; hadPrevious: boolean };

export async function rollOut(req: DeploymentRequest, hosts: DockerHost[], secrets: SecretValues): Promise<DeploymentResult> {
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

  emit('started', undefined, `deploying ${imageRef(req.image, req.release.digest)} to ${hosts.length} host(s), ${req.plan.replicas} replica(s) each`);

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
    const outcomes = await Promise.all(batch.map((host) => switchHost(req, host, secrets, emit, clean)));
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
      const old = s.previous.filter((c) => !s.created.some((n) => n.id === c.id));
      if (old.length === 0) return;
      emit('cleanup', s.host.endpoint, `removing ${old.length} previous container(s)`);
      // A leftover is untidy but harmless: it is stopped, and the next deployment removes it.
      await Promise.all(old.map((c) => s.host.removeContainer(c.id).catch(() => undefined)));
    }),
  );
  return finish('succeeded', null);
}

async function switchHost(
  req: DeploymentRequest,
  host: DockerHost,
  secrets: SecretValues,
  emit: ReturnType<typeof emitter>,
  clean: (s: string) => string,
): Promise<SwitchOutcome> {
  const { plan } = req;
  const startedAt = Date.now();
  const created: ContainerState[] = [];
  let previous: ContainerState[] = [];
  let stoppedOld = false;
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

    emit('starting', host.endpoint, `starting ${plan.replicas} replica(s)`);
    const replicas = Array.from({ length: plan.replicas }, (_, r) => r);
    await Promise.all(
      replicas.map(async (r) => {
        const spec = containerCreate(req, r, secrets);
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
      check: plan.container.healthcheck,
      address,
      port: replicaPort(plan.container, replicaOf(c)),
      timeoutMs: plan.rollout.healthTimeout,
      monitorMs: plan.rollout.monitor,
    }));
    emit('healthy', host.endpoint, `${created.length} replica(s) healthy`);
    await Promise.all(created.map((c) => host.keepRunning(c.id)));
    if (plan.rollout.order === 'start-first') await stopPrevious();
    emit('switched', host.endpoint, `now on ${req.release.digest}`);
    return { ok: true, switched: { host, created, previous }, step: step('succeeded', null) };
  } catch (e) {
    const reason = clean(e instanceof RolloutFailure ? e.message : errorText(e));
    emit('failed', host.endpoint, reason);
    // Undo on this host: the new containers go, the previous ones run again (if the host still answers).
    const toStart = stoppedOld ? previous.filter((c) => c.running) : [];
    const undo = await undoHost(host, created, toStart, plan.rollout.healthTimeout).catch((u) => `; undo failed: ${clean(errorText(u))}`);
    return { ok: false, step: step('failed', reason + (undo ?? '')), hadPrevious: previous.some((c) => c.running) };
  }
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
    const { rollout } = req.plan;
    const order = rollout.rollback.order;
    if (order === 'stop-first') await Promise.all(s.created.map((c) => s.host.removeContainer(c.id)));
    await startPrevious(s.host, wasRunning, rollout.healthTimeout);
    if (order === 'start-first') await Promise.all(s.created.map((c) => s.host.removeContainer(c.id)));
    emit('restored', s.host.endpoint, 'previous containers running again');
    return step('succeeded', null);
  } catch (e) {
    const reason = clean(e instanceof RolloutFailure ? e.message : errorText(e));
    emit('failed', s.host.endpoint, `restore failed: ${reason}`);
    return step('failed', reason);
  }
}

class RolloutFailure extends Error {}

function replicaOf(c: ContainerState): number {
  return Number(c.labels[LABELS.replica]);
}
