// Deploying to a Swarm service: create it if missing, otherwise update it to the spec service-spec.ts computes
// (repo@digest, the rollout settings as Swarm's UpdateConfig), and follow UpdateStatus until Swarm says completed,
// paused or rolled back — reporting what Swarm did and what its tasks then run, not what was hoped for (Swarm's own
// status has been seen to say "completed" over a rollback). Swarm schedules and rolls back; Wharf only asks and watches.
import { setTimeout as sleep } from 'node:timers/promises';
import { redact, type SecretValues } from './secrets.js';
import { digestOfRef, emitter, errorText, imageRef, type DeploymentRequest, type DeploymentResult, type DeploymentStep } from './deployment.js';
import type { Orchestrator, SwarmService, SwarmTask } from '../engine/orchestrator.js';
import { serviceSpec } from './service-spec.js';
import { tellingProbe } from './health.js';
import { swarmTarget } from '../app-file/plan.js';

/** The waits of following a deployment, in milliseconds (a test of every outcome passes shorter ones). */
export interface SwarmTimings {
  /**
   * How often UpdateStatus and the tasks are read while following a deployment: one small request to the manager;
   * each state Swarm reaches is seen this much later at most (every phase of a deployment waits on one).
   */
  poll: number;
  /** How long Swarm may take to pick up an accepted update before Wharf calls it stuck. */
  updateStart: number;
  /** Added to the rollout's own health, delay and monitor times before Wharf stops waiting for Swarm. */
  slack: number;
  /** After a rollback: time for Swarm to restart a failed task (its default restart delay is 5 s) and start it. */
  restartSlack: number;
  /** How long restored tasks must keep running, at least, to count as restored. */
  minHold: number;
}

export const SWARM_TIMINGS: SwarmTimings = { poll: 250, updateStart: 30_000, slack: 30_000, restartSlack: 15_000, minHold: 3_000 };

export async function deployToSwarm(req: DeploymentRequest, orch: Orchestrator, secrets: SecretValues, timings: SwarmTimings = SWARM_TIMINGS): Promise<DeploymentResult> {
  const startedAt = Date.now();
  const emit = emitter(req);
  const target = swarmTarget(req.plan);
  const service = req.plan.swarm!.service;
  const digest = req.release.digest;
  const clean = (s: string) => redact(s, secrets);
  const steps: DeploymentStep[] = [];
  const finish = (status: DeploymentResult['status'], reason: string | null, restoredDigest?: string | null): DeploymentResult => {
    emit('finished', target, reason === null ? status : `${status}: ${reason}`);
    return { status, reason, steps, startedAt, finishedAt: Date.now(), ...(restoredDigest ? { restoredDigest } : {}) };
  };
  const step = (action: DeploymentStep['action'], d: string | null, tasks: SwarmTask[], result: DeploymentStep['result'], reason: string | null, from = startedAt): DeploymentStep => ({
    target,
    action,
    containers: tasks.map((t) => t.id),
    digest: d,
    startedAt: from,
    finishedAt: Date.now(),
    result,
    reason,
  });
  const r = req.plan.rollout;
  const batches = Math.max(1, Math.ceil(req.plan.replicas / r.parallelism));
  const budget = batches * (r.healthTimeout + r.delay + r.monitor) + timings.slack;
  // What the tasks settle on among `digests` (an unknown previous digest is none: nothing to wait for).
  const settleOn = async (digests: (string | null)[]) => {
    const known = digests.filter((d): d is string => d !== null);
    if (known.length === 0) return { ok: false, tasks: [] as SwarmTask[], running: 0 };
    return settle(orch, service, known, req.plan.replicas, Math.max(r.monitor, timings.minHold), r.healthTimeout + r.monitor + timings.restartSlack, timings.poll);
  };

  try {
    await orch.engine();
    const current = await orch.inspectService(service);
    const spec = serviceSpec(req, secrets, current?.spec);
    emit('started', target, `${current ? 'updating' : 'creating'} service ${service}: ${imageRef(req.image, digest)}, ${req.plan.replicas} replica(s)`);
    if (current === undefined) {
      await orch.createService(spec, req.auth);
      const outcome = await followCreate(orch, service, digest, req.plan.replicas, r.healthTimeout + r.monitor + timings.slack, timings.poll, emit, target);
      steps.push(step('deploy', digest, outcome.tasks, outcome.ok ? 'succeeded' : 'failed', outcome.ok ? null : clean(outcome.reason)));
      return outcome.ok ? finish('succeeded', null) : finish('failed', clean(outcome.reason));
    }
    const previousDigest = digestOfRef(current.spec.TaskTemplate.ContainerSpec.Image);
    await orch.updateService(current.id, current.version, spec, req.auth);
    const outcome = await followUpdate(orch, service, current, budget, timings, emit, target);
    const tasks = await orch.listTasks(service);
    const onRelease = live(tasks).filter((t) => digestOfRef(t.image) === digest);
    switch (outcome.state) {
      case 'completed': {
        // The usual success: every replica already runs the release, so no hold is added to the deployment.
        if (allRunning(tasks, digest, req.plan.replicas)) {
          steps.push(step('deploy', digest, onRelease, 'succeeded', null));
          return finish('succeeded', null);
        }
        // Swarm has been seen to write "update completed" late, over a rollback it had finished (commit 64b6bf4):
        // the status alone is no proof, so what the tasks settle on decides the record.
        emit('progress', target, `Swarm reports the update completed, but ${onRelease.length} of ${req.plan.replicas} task(s) run ${digest}; waiting to see what runs`);
        const ran = await settleOn([digest, previousDigest]);
        if (ran.ok && ran.digest === digest) {
          steps.push(step('deploy', digest, ran.tasks, 'succeeded', null));
          return finish('succeeded', null);
        }
        const why = `Swarm reported the update completed, but not every task runs ${digest}`;
        if (ran.ok) {
          const reason = clean(await withTaskErrors(orch, `${why}: all ${req.plan.replicas} task(s) run the previous digest ${previousDigest} again`, tasks, digest, outcome.message));
          steps.push(step('deploy', digest, failedOn(tasks, digest), 'failed', reason));
          steps.push(step('restore', previousDigest, ran.tasks, 'succeeded', null));
          return finish('rolled_back', reason, ran.digest);
        }
        const reason = clean(await withTaskErrors(orch, `${why}: ${ran.running} of ${req.plan.replicas} run it, and not all run the previous digest ${previousDigest ?? '(unknown)'}; an operator must check the service`, await orch.listTasks(service), digest, outcome.message));
        steps.push(step('deploy', digest, ran.tasks, 'failed', reason));
        return finish('needs_operator', reason);
      }
      case 'paused': {
        // Swarm stopped half-way on purpose (failureAction: pause): some tasks run the release, some the previous one.
        const reason = clean(await withTaskErrors(orch, `Swarm paused the update: ${outcome.message}; an operator must resume or roll back the service`, tasks, digest, outcome.message));
        steps.push(step('deploy', digest, onRelease, 'failed', reason));
        return finish('paused', reason);
      }
      case 'rollback_completed': {
        // Swarm is done rolling back; whether the previous release holds is still to be seen (its tasks may crash).
        const reason = clean(await withTaskErrors(orch, `Swarm rolled the update back: ${outcome.message}`, tasks, digest, outcome.message));
        const restoredFrom = outcome.rollbackStartedAt ?? Date.now();
        steps.push({ ...step('deploy', digest, failedOn(tasks, digest), 'failed', reason), finishedAt: restoredFrom });
        const back = await settleOn([previousDigest]);
        if (back.ok) {
          steps.push(step('restore', previousDigest, back.tasks, 'succeeded', null, restoredFrom));
          return finish('rolled_back', reason, previousDigest);
        }
        const stuck = clean(await withTaskErrors(orch, `${reason}; ${back.running} of ${req.plan.replicas} task(s) run the previous digest ${previousDigest ?? '(unknown)'}: an operator must restore the service`, await orch.listTasks(service), previousDigest ?? ''));
        steps.push(step('restore', previousDigest, back.tasks, 'failed', stuck, restoredFrom));
        return finish('needs_operator', stuck);
      }
      case 'rollback_paused': {
        // The rollback itself met a failing task and stopped (RollbackConfig pauses on the first failure). Swarm's
        // own restarts may still bring every replica back on the previous digest; only what runs decides the record.
        const restoredFrom = outcome.rollbackStartedAt ?? Date.now();
        const deployReason = clean(await withTaskErrors(orch, `Swarm rolled the update back: ${outcome.message}`, tasks, digest, outcome.message));
        steps.push({ ...step('deploy', digest, failedOn(tasks, digest), 'failed', deployReason), finishedAt: restoredFrom });
        // Swarm words it "update paused due to failure … of task X": X is a task of the previous release.
        const why = `${deployReason}; ${clean(await withTaskErrors(orch, `the rollback paused: ${outcome.final}`, tasks, previousDigest ?? '', outcome.final))}`;
        emit('progress', target, `the rollback paused; waiting for ${req.plan.replicas} task(s) to run ${previousDigest} again`);
        const back = await settleOn([previousDigest]);
        if (back.ok) {
          steps.push(step('restore', previousDigest, back.tasks, 'succeeded', null, restoredFrom));
          return finish('rolled_back', `${why}; all ${req.plan.replicas} task(s) run the previous digest again`, previousDigest);
        }
        const reason = `${why}; ${back.running} of ${req.plan.replicas} task(s) run the previous digest ${previousDigest ?? '(unknown)'}: an operator must restore the service`;
        steps.push(step('restore', previousDigest, back.tasks, 'failed', reason, restoredFrom));
        return finish('needs_operator', reason);
      }
      case 'not started': {
        // Swarm never picked the update up: the service still runs what it ran.
        const reason = clean(outcome.message);
        steps.push(step('deploy', digest, [], 'failed', reason));
        return finish('failed', reason);
      }
      default: {
        // Still updating or rolling back after the whole budget, or the service went away: nobody can say what
        // will run, so the record says an operator must look rather than guess.
        const reason = clean(await withTaskErrors(orch, `update ended in state ${outcome.state}: ${outcome.message}; an operator must check the service`, tasks, digest, outcome.message));
        steps.push(step('deploy', digest, onRelease, 'failed', reason));
        return finish('needs_operator', reason);
      }
    }
  } catch (e) {
    const reason = clean(errorText(e));
    steps.push(step('deploy', digest, [], 'failed', reason));
    return finish('failed', reason);
  }
}

/** A new service has no UpdateStatus: it is done when every replica runs the release. */
async function followCreate(
  orch: Orchestrator,
  service: string,
  digest: string,
  replicas: number,
  timeoutMs: number,
  pollMs: number,
  emit: ReturnType<typeof emitter>,
  target: string,
): Promise<{ ok: true; tasks: SwarmTask[] } | { ok: false; tasks: SwarmTask[]; reason: string }> {
  const deadline = Date.now() + timeoutMs;
  let reported = -1;
  for (;;) {
    const tasks = await orch.listTasks(service);
    const running = live(tasks).filter((t) => t.state === 'running' && digestOfRef(t.image) === digest);
    if (running.length !== reported) emit('progress', target, `${(reported = running.length)}/${replicas} task(s) running`);
    if (running.length >= replicas) return { ok: true, tasks: running };
    if (Date.now() >= deadline) {
      const summary = `${running.length}/${replicas} task(s) running after ${Math.round(timeoutMs / 1000)}s`;
      return { ok: false, tasks: failedOn(tasks, digest), reason: await withTaskErrors(orch, summary, tasks, digest) };
    }
    await sleep(pollMs);
  }
}

async function followUpdate(
  orch: Orchestrator,
  service: string,
  before: SwarmService,
  timeoutMs: number,
  timings: SwarmTimings,
  emit: ReturnType<typeof emitter>,
  target: string,
): Promise<{ state: string; message: string; final: string; rollbackStartedAt?: number }> {
  const started = Date.now();
  let rollbackStartedAt: number | undefined;
  let last = '';
  // Swarm says why once ("update rolled back due to failure … of task X"), then "rollback completed".
  let why = '';
  for (;;) {
    const s = await orch.inspectService(service);
    if (s === undefined) return { state: 'removed', message: 'the service was removed during the update', final: '' };
    const us = s.updateStatus;
    // Until Swarm starts this update, UpdateStatus still describes the previous one.
    const ours = us !== undefined && us.startedAt !== before.updateStatus?.startedAt;
    if (ours) {
      const line = `${us.state}${us.message ? `: ${us.message}` : ''}`;
      if (line !== last) emit(us.state.startsWith('rollback') ? 'restoring' : 'progress', target, (last = line));
      if (why === '' && /due to/.test(us.message ?? '')) why = us.message!;
      if (us.state.startsWith('rollback')) rollbackStartedAt ??= Date.now();
      if (us.state === 'completed' || us.state === 'paused' || us.state === 'rollback_completed' || us.state === 'rollback_paused') {
        return { state: us.state, message: why || (us.message ?? ''), final: us.message ?? '', rollbackStartedAt };
      }
    } else if (Date.now() - started > timings.updateStart) {
      return { state: 'not started', message: `Swarm did not start the update within ${timings.updateStart / 1000}s`, final: '' };
    }
    if (Date.now() - started > timeoutMs) return { state: us?.state ?? 'unknown', message: `still ${us?.state ?? 'pending'} after ${Math.round(timeoutMs / 1000)}s`, final: '' };
    await sleep(timings.poll);
  }
}

/**
 * Waits until exactly `replicas` live tasks run one of `digests`, no live task runs anything else, and the same
 * tasks keep running for `holdMs` (Swarm restarts failed tasks by itself after a paused rollback; a task that
 * crashes again must not pass for restored); answers what runs when that is reached or the time is up (`running`:
 * how many run the first of `digests`).
 */
async function settle(
  orch: Orchestrator,
  service: string,
  digests: string[],
  replicas: number,
  holdMs: number,
  timeoutMs: number,
  pollMs: number,
): Promise<{ ok: boolean; digest?: string; tasks: SwarmTask[]; running: number }> {
  const deadline = Date.now() + timeoutMs + holdMs;
  let stable = '';
  let since = 0;
  for (;;) {
    const tasks = live(await orch.listTasks(service));
    const digest = digests.find((d) => allRunning(tasks, d, replicas));
    const on = tasks.filter((t) => t.state === 'running' && digestOfRef(t.image) === (digest ?? digests[0]));
    const ids = on.map((t) => t.id).sort().join(',');
    if (digest !== undefined) {
      if (ids !== stable) [stable, since] = [ids, Date.now()];
      if (Date.now() - since >= holdMs) return { ok: true, digest, tasks: on, running: on.length };
    } else {
      stable = '';
    }
    if (Date.now() >= deadline) return { ok: false, tasks: on, running: on.length };
    await sleep(pollMs);
  }
}

/** Whether exactly `replicas` tasks are live and every one of them is running `digest`. */
function allRunning(tasks: SwarmTask[], digest: string, replicas: number): boolean {
  const alive = live(tasks);
  return alive.length === replicas && alive.every((t) => t.state === 'running' && digestOfRef(t.image) === digest);
}

/** Tasks Swarm wants running (the others are history). */
function live(tasks: SwarmTask[]): SwarmTask[] {
  return tasks.filter((t) => t.desiredState === 'running');
}

function failedOn(tasks: SwarmTask[], digest: string): SwarmTask[] {
  return tasks.filter((t) => digestOfRef(t.image) === digest && (t.state === 'failed' || t.state === 'rejected' || t.err !== undefined));
}

/**
 * Adds what the release's failed tasks said (error, exit code) and, for the task Swarm blames, its container's
 * last health probe when the manager can see it; each distinct message once.
 */
async function withTaskErrors(orch: Orchestrator, summary: string, tasks: SwarmTask[], digest: string, swarmMessage = ''): Promise<string> {
  const seen = new Set<string>();
  const blamed = tasks.find((t) => swarmMessage.includes(`task ${t.id}`));
  for (const t of [...(blamed ? [blamed] : []), ...failedOn(tasks, digest)]) {
    let line = `task ${t.id.slice(0, 12)}: ${t.err ?? t.message}${t.exitCode ? ` (exit code ${t.exitCode})` : ''}`;
    const probes = t.containerId ? await orch.healthProbes(t.containerId).catch(() => []) : [];
    const probe = tellingProbe(probes);
    if (probe) line += `; last failed health check: exit code ${probe.exitCode}${probe.output ? `: ${probe.output}` : ''}`;
    seen.add(line);
  }
  return seen.size === 0 ? summary : `${summary}; ${[...seen].join('; ')}`;
}
