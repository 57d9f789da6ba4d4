// Plain records (and two pure functions over them) the metadata store reads and writes on behalf of the domain
// (retention state, deploy targets, deployment steps): defined here, below the domain folders, so metadata/ never imports one of them.

// --- retention -----------------------------------------------------------------------------------

export interface RetentionPolicy {
  /** repository glob */
  repositories: string;
  /** tag glob: the keep rules count and delete only among these */
  tags: string;
  /** keep the N most recently pushed matching tags */
  keepLast?: number;
  /** keep matching tags pushed within this many ms */
  keepWithin?: number;
  /** delete manifests untagged for at least this many ms */
  untaggedOlderThan?: number;
}

export interface TagState {
  name: string;
  digest: string;
  /** when the tag was last set (pushed or moved) */
  pushedAt: number;
}

export interface ManifestState {
  digest: string;
  /** the manifest it refers to (signatures, attestations), if any */
  subject: string | null;
  /** child manifests, for an index */
  children: string[];
  createdAt: number;
  /** the last time a tag moved away from it or was deleted, if ever */
  untaggedAt: number | null;
}

// --- histories -----------------------------------------------------------------------------------

/** Who and when, to narrow an append-only history (releases, deployments, tag changes) to: since inclusive, until exclusive (epoch ms). */
export interface HistoryMatch {
  actor?: string;
  since?: number;
  until?: number;
}

// --- deploy targets ------------------------------------------------------------------------------

/** Container options that give a container power over its host, each allowed by name on a target. */
export const PRIVILEGES = ['bind-mounts', 'privileged', 'cap-add', 'host-pid', 'host-ipc', 'devices', 'network-host'] as const;
export type Privilege = (typeof PRIVILEGES)[number];

/** A Docker engine a global admin registered for deployments (stored in the database, or the server config). */
export interface TargetRegistration {
  name: string;
  endpoint: string;
  tls?: { ca: string; cert: string; key: string };
  identityFile?: string;
  /** repository patterns (`team/*`) of the apps that may deploy here */
  apps: string[];
  /** privileged options the apps covered may use here */
  allow: Privilege[];
  /** the reverse proxy Wharf runs in front of apps that ask for one (zero-downtime switches); none: refused */
  proxy?: ProxyRegistration;
}

/** What a global admin allows for an app file's `proxy` on a target: the image, where it listens, which ports. */
export interface ProxyRegistration {
  /** an nginx image, e.g. nginx:stable: run as the proxy container, reconfigured and reloaded by Wharf */
  image: string;
  /** the address nginx listens on (an IP literal) */
  address: string;
  /** the public ports app files may ask for, inclusive */
  ports: { from: number; to: number };
}

// --- deployments ---------------------------------------------------------------------------------

/**
 * `paused` and `needs_operator` leave the targets in a state no release describes (some replicas on each, or a
 * rollback that did not finish): the deployment is then loud about needing a person.
 */
export type DeploymentStatus = 'succeeded' | 'failed' | 'rolled_back' | 'paused' | 'needs_operator';

/** One thing done to one target: the deploy of the release, or bringing the previous one back. */
export interface DeploymentStep {
  target: string;
  action: 'deploy' | 'restore';
  /** container names on a Docker host, task ids on Swarm */
  containers: string[];
  /** the digest this step put (or tried to put) in place */
  digest: string | null;
  startedAt: number;
  finishedAt: number;
  result: 'succeeded' | 'failed' | 'skipped';
  reason: string | null;
}

/** How a deployment ended, as its row records it. */
export interface DeploymentOutcome {
  status: DeploymentStatus;
  reason: string | null;
  steps: DeploymentStep[];
  finishedAt: number;
}

// --- environments and garbage collection -----------------------------------------------------------

/** The attestation kinds an environment row requires. */
export function requiredAttestations(row: { requires_attestations: string | null }): string[] {
  return row.requires_attestations === null ? [] : (JSON.parse(row.requires_attestations) as string[]);
}

/** The key of a (repository, blob) reference in the GC's reference counts. */
export function referenceKey(repositoryId: number, digest: string): string {
  return `${repositoryId} ${digest}`;
}
