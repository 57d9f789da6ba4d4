// What a deployment is asked to do and what it reports: the request, progress events, and the result with one
// row per target step. Plain data, shared by the Docker-host rollout, the Swarm rollout and their callers.
import type { EnvironmentPlan } from '../app-file/plan.js';
import type { RegistryAuth } from '../engine/docker-host.js';
import type { DeploymentStatus, DeploymentStep } from '../metadata/records.js';

export type { DeploymentStatus, DeploymentStep };

export interface DeploymentRequest {
  /** short id, part of container names and labels (e.g. the deployment row's id) */
  id: string;
  plan: EnvironmentPlan;
  /** the repository as the hosts reach Wharf, e.g. `wharf.example.com/myapp` or `127.0.0.1:5000/myapp` */
  image: string;
  release: { id: number | null; digest: string };
  /** pull credentials (a scoped token from Wharf itself) */
  auth?: RegistryAuth;
  /** restart even when the release already runs everywhere, healthy, from the same plan */
  force?: boolean;
  onEvent?: (event: DeployEvent) => void;
}

export type DeployEventKind =
  | 'started'
  | 'pulling'
  | 'pulled'
  | 'stopping'
  | 'starting'
  | 'healthy'
  | 'switched'
  | 'failed'
  | 'restoring'
  | 'restored'
  | 'cleanup'
  | 'progress'
  | 'finished';

/** A line of progress for the CLI; never carries environment or secret values. */
export interface DeployEvent {
  at: number;
  kind: DeployEventKind;
  /** the host endpoint or `swarm:SERVICE` */
  target?: string;
  message: string;
}

export function needsOperator(status: string): boolean {
  return status === 'paused' || status === 'needs_operator';
}

export interface DeploymentResult {
  status: DeploymentStatus;
  /** why it failed, was rolled back or paused: health output, exit code, pull error */
  reason: string | null;
  steps: DeploymentStep[];
  startedAt: number;
  finishedAt: number;
  /** nothing was done: the release already ran everywhere, healthy, from the same plan */
  unchanged?: boolean;
  /** after a rollback: the digest every target runs again, as observed (when the rollout knows it) */
  restoredDigest?: string;
}

export function imageRef(image: string, digest: string): string {
  return `${image}@${digest}`;
}

/** The digest part of `repo@sha256:…` (or `repo:tag@sha256:…`), if any. */
export function digestOfRef(ref: string): string | null {
  const at = ref.lastIndexOf('@');
  return at < 0 ? null : ref.slice(at + 1);
}

export function emitter(request: Pick<DeploymentRequest, 'onEvent'>): (kind: DeployEventKind, target: string | undefined, message: string) => void {
  return (kind, target, message) => {
    try {
      request.onEvent?.({ at: Date.now(), kind, target, message });
    } catch {
      // a broken progress listener (e.g. a client that went away) must not break the deployment
    }
  };
}

/** Engine errors from dockerode read "(HTTP code 404) no such image - …"; keep the engine's words. */
export function errorText(e: unknown): string {
  const err = e as { json?: { message?: string }; message?: string; code?: string; address?: string };
  if (err.json?.message) return err.json.message;
  if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') return `host unreachable (${err.code}${err.address ? ` ${err.address}` : ''})`;
  return err.message ?? String(e);
}
