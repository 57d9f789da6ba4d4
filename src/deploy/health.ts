// Waiting for a new container to become healthy: the engine's HEALTHCHECK, or an HTTP GET / a command run by
// Wharf, within the health timeout; then watching it stay healthy for the monitor period. Failures say why.
import { setTimeout as sleep } from 'node:timers/promises';
import { formatDuration } from '../app-file/document.js';
import type { HealthcheckSpec } from '../app-file/schema.js';
import type { ContainerState, DockerHost, ProbeResult } from '../engine/docker-host.js';

/** How often the engine's health is looked at when its events cannot be heard. */
const ENGINE_POLL_MS = 250;
/**
 * With the container's events heard, a health change or an exit is seen as it happens; the engine is still asked
 * this often, in case an event stream stalls without dropping.
 */
const EVENT_FALLBACK_MS = 1_000;
const DEFAULT_PROBE_INTERVAL_MS = 1_000;
const DEFAULT_PROBE_TIMEOUT_MS = 2_000;
const LOG_LINES = 20;
/** 4xx/5xx answers in a row that fail an http check at once: the app is up and answers wrong, waiting will not help. */
const DEFAULT_DEFINITE_FAILURES = 3;

export interface HealthWait {
  host: DockerHost;
  containerId: string;
  /** Wharf's own check; undefined or `docker` leaves it to the engine (or to "still running" without a HEALTHCHECK) */
  check?: HealthcheckSpec;
  /** fills {host} and {port} in an http check */
  address: string;
  port?: number;
  timeoutMs: number;
  monitorMs: number;
}

export type HealthOutcome = { healthy: true } | { healthy: false; reason: string };

class Unhealthy extends Error {}

export async function waitHealthy(w: HealthWait): Promise<HealthOutcome> {
  // Only the engine's own health is waited for on its events; Wharf's own check probes on its interval.
  const wake = await engineWake(w, wharfProbe(w) === undefined);
  try {
    await becomeHealthy(w, wake);
    await stayHealthy(w, wake);
    return { healthy: true };
  } catch (e) {
    if (e instanceof Unhealthy) return { healthy: false, reason: e.message };
    return { healthy: false, reason: `cannot check health: ${(e as Error).message}` };
  } finally {
    wake.close();
  }
}

/** Between two looks at the engine's health: until the container's next event (or the fallback), else a poll interval. */
interface Wake {
  /** resolves at the next event since the last call, or after at most `ms` */
  next(ms: number): Promise<void>;
  close(): void;
}

/**
 * Opened before the first look, so that a change between that look and the wait is not missed. Without events (an
 * adapter that has none, a stream that did not open) it polls every ENGINE_POLL_MS, as before there were events.
 */
async function engineWake(w: HealthWait, wanted: boolean): Promise<Wake> {
  let changed = false;
  let wakeUp: (() => void) | undefined;
  const watch = wanted && w.host.watchContainer
    ? await w.host.watchContainer(w.containerId, () => {
        changed = true;
        wakeUp?.();
      }).catch(() => undefined)
    : undefined;
  if (!watch) return { next: (ms) => sleep(Math.min(ms, ENGINE_POLL_MS)), close: () => undefined };
  return {
    next: (ms) =>
      new Promise<void>((resolve) => {
        // Declared before `done`: an event already heard resolves at once, before any timer is set.
        let timer: NodeJS.Timeout | undefined;
        const done = () => {
          clearTimeout(timer);
          wakeUp = undefined;
          changed = false;
          resolve();
        };
        if (changed) return done();
        timer = setTimeout(done, Math.min(ms, EVENT_FALLBACK_MS));
        wakeUp = done;
      }),
    close: () => watch.close(),
  };
}

async function becomeHealthy(w: HealthWait, wake: Wake): Promise<void> {
  const deadline = Date.now() + w.timeoutMs;
  const probe = wharfProbe(w);
  let last = 'no health report yet';
  let definite = 0;
  const limit = w.check?.failures ?? DEFAULT_DEFINITE_FAILURES;
  for (;;) {
    const state = await w.host.inspectContainer(w.containerId);
    await failIfStopped(w, state);
    if (probe) {
      const r = await probe();
      if (r === undefined) return;
      last = r.reason;
      // A refused connection may be an app still starting; an error status is an answer: waiting will not help.
      definite = r.definite ? definite + 1 : 0;
      if (definite >= limit) throw new Unhealthy(`health check failed ${definite} times in a row: ${r.reason}`);
    } else if (state.health === 'unhealthy') {
      throw new Unhealthy(`health check failed: ${lastProbe(state)}`);
    } else if (state.health === undefined || state.health === 'healthy') {
      return;
    } else {
      last = state.healthLog?.length ? `still starting; last probe: ${lastProbe(state)}` : 'still starting';
    }
    if (Date.now() >= deadline) throw new Unhealthy(`not healthy after ${formatDuration(w.timeoutMs)}: ${last}`);
    if (probe) await sleep(w.check?.interval ?? DEFAULT_PROBE_INTERVAL_MS);
    else await wake.next(Math.max(0, deadline - Date.now()));
  }
}

/** Healthy once is not enough: the container must not crash or turn unhealthy during the monitor period. */
async function stayHealthy(w: HealthWait, wake: Wake): Promise<void> {
  const until = Date.now() + w.monitorMs;
  const probe = wharfProbe(w);
  while (Date.now() < until) {
    if (probe) await sleep(Math.min(w.check?.interval ?? DEFAULT_PROBE_INTERVAL_MS, Math.max(0, until - Date.now())));
    else await wake.next(Math.max(0, until - Date.now()));
    const state = await w.host.inspectContainer(w.containerId);
    await failIfStopped(w, state);
    if (probe) {
      const r = await probe();
      if (r !== undefined) throw new Unhealthy(`turned unhealthy within the monitor period: ${r.reason}`);
    } else if (state.health === 'unhealthy') {
      throw new Unhealthy(`turned unhealthy within the monitor period: ${lastProbe(state)}`);
    }
  }
}

async function failIfStopped(w: HealthWait, state: ContainerState): Promise<void> {
  if (state.running && !(state.restartCount && state.restartCount > 0)) return;
  const logs = await w.host.logs(w.containerId, LOG_LINES).catch(() => '');
  const what = `exited with code ${state.exitCode}${state.running ? ` and was restarted ${state.restartCount} time(s)` : ''}`;
  throw new Unhealthy(`container ${what}${logs.trim() ? `; last output:\n${logs.trimEnd()}` : ''}`);
}

/**
 * Wharf's own probe: resolves undefined when healthy, else a description of the failure and whether it is a
 * definite one (an HTTP 4xx/5xx answer) rather than an app that may still be starting.
 */
function wharfProbe(w: HealthWait): (() => Promise<{ reason: string; definite: boolean } | undefined>) | undefined {
  const check = w.check;
  const timeoutMs = check?.timeout ?? DEFAULT_PROBE_TIMEOUT_MS;
  if (check?.http !== undefined) {
    const url = healthUrl(check.http, w.address, w.port);
    return async () => {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
        // The status only: a body (whatever the container chose to say) must not land in deployment records.
        await res.body?.cancel();
        if (res.status >= 200 && res.status < 300) return undefined;
        return { reason: `GET ${url}: HTTP ${res.status}`, definite: res.status >= 400 };
      } catch (e) {
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        return { reason: `GET ${url}: ${cause?.code ?? cause?.message ?? (e as Error).message}`, definite: false };
      }
    };
  }
  if (check?.command !== undefined) {
    const command = check.command;
    return async () => {
      const r = await w.host.exec(w.containerId, command, timeoutMs);
      return r.exitCode === 0 ? undefined : { reason: `${command.join(' ')} exited with code ${r.exitCode}${r.output.trim() ? `: ${r.output.trim()}` : ''}`, definite: false };
    };
  }
  return undefined;
}

export function healthUrl(template: string, address: string, port: number | undefined): string {
  const host = address.includes(':') ? `[${address}]` : address;
  return template.replaceAll('{host}', host).replaceAll('{port}', String(port ?? ''));
}

function lastProbe(state: ContainerState): string {
  const p = tellingProbe(state.healthLog ?? []) ?? state.healthLog?.[state.healthLog.length - 1];
  if (!p) return 'no probe output';
  return `exit code ${p.exitCode}${p.output.trim() ? `: ${p.output.trim()}` : ''}`;
}

/**
 * The failed probe that says why: the last one the check itself answered. Docker records exit code -1 for a probe it
 * could not run at all (an exec refused while the container stops or the machine is loaded: "OCI runtime exec
 * failed"), and the very last probe is often cut short by the stop (137, no output); either hides the check's own
 * words, so they are taken only when nothing better was recorded.
 */
export function tellingProbe(probes: readonly ProbeResult[]): ProbeResult | undefined {
  const failed = probes.filter((p) => p.exitCode !== 0);
  const spoke = failed.filter((p) => p.output.trim() !== '');
  return spoke.filter((p) => p.exitCode >= 0).at(-1) ?? spoke.at(-1) ?? failed.at(-1);
}
