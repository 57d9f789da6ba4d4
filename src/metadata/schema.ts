// Table types for the metadata database (one schema for SQLite and PostgreSQL). Times are epoch milliseconds.
import type { Generated } from 'kysely';

export interface RepositoriesTable {
  id: Generated<number>;
  name: string;
  created_at: number;
}

/** One row per stored blob digest, shared by every repository. */
export interface BlobsTable {
  digest: string;
  size: number;
  /** refreshed by every commit and mount of the digest: GC's grace period counts from it */
  created_at: number;
  /** the object holding the bytes in a store that names objects by upload (S3); null: found by digest (filesystem) */
  location: string | null;
}

/** Which repositories may read which blobs (pushed, mounted, or referenced by their manifests). */
export interface RepositoryBlobsTable {
  repository_id: number;
  digest: string;
  /** refreshed by every push, mount and manifest referencing the blob: GC's grace period counts from it */
  created_at: number;
}

export interface ManifestsTable {
  repository_id: number;
  digest: string;
  media_type: string;
  artifact_type: string | null;
  subject_digest: string | null;
  size: number;
  body: Uint8Array;
  created_at: number;
}

/** What a manifest references: its config and layers (kind 'blob') or, for an index, its children ('manifest'). */
export interface ManifestReferencesTable {
  repository_id: number;
  manifest_digest: string;
  kind: 'blob' | 'manifest';
  target_digest: string;
}

export interface TagsTable {
  repository_id: number;
  name: string;
  digest: string;
  updated_at: number;
}

/** Append-only: every tag create, move and delete. */
export interface TagHistoryTable {
  id: Generated<number>;
  repository_id: number;
  tag: string;
  old_digest: string | null;
  new_digest: string | null;
  actor: string | null;
  at: number;
}

/** An application's environment (the application is a repository). */
export interface EnvironmentsTable {
  id: Generated<number>;
  repository_id: number;
  name: string;
  /** releases here must be promotions from this environment */
  requires_promotion_from: string | null;
  protected: number;
  auto_deploy: number;
  current_release_id: number | null;
  created_at: number;
  /** JSON array of attestation kinds (e.g. ["tests"]) every release here must carry, verified; null: none */
  requires_attestations: string | null;
  /** 1: a release, promotion or rollback waits for a second person's approval */
  requires_approval: Generated<number>;
  /** with targets: the release recorded but not yet deployed (it becomes current when its deployment succeeds) */
  pending_release_id: number | null;
}

/** A release, promotion or rollback asked for in an environment that requires approval, and who approved it. */
export interface ApprovalRequestsTable {
  id: Generated<number>;
  environment_id: number;
  kind: 'release' | 'promote' | 'rollback';
  /** release: the tag or digest; rollback: the --to target, if any; promote: null */
  ref: string | null;
  /** promote: the source environment */
  from_environment: string | null;
  note: string | null;
  /** deploy once approved */
  deploy: number | null;
  requested_by: string | null;
  requested_at: number;
  /** denied: another person (or the requester, withdrawing it) refused it; it is never carried out */
  status: 'pending' | 'approved' | 'denied';
  /** who decided and when: the approver, or for a denied request the one who denied it */
  approved_by: string | null;
  approved_at: number | null;
  /** the release the approval made */
  release_id: number | null;
}

/** Append-only: every release, promotion and rollback of an environment. */
export interface ReleasesTable {
  id: Generated<number>;
  repository_id: number;
  environment_id: number;
  digest: string;
  source_tag: string | null;
  version: string | null;
  kind: 'release' | 'promote' | 'rollback';
  actor: string | null;
  note: string | null;
  /** the release that was current before this one */
  replaces_id: number | null;
  /** for a promotion: the release in the source environment */
  promoted_from_id: number | null;
  created_at: number;
  /** when it became the environment's current release (null: never — its deployment is pending or failed) */
  current_since: number | null;
  /** the source commit the digest was built from, as the pipeline reported it */
  commit: string | null;
  /** the pipeline run that built, tested and released it */
  pipeline_run: string | null;
}

/** A webhook subscription: where to POST which events, and the secret that signs them. */
export interface WebhookSubscriptionsTable {
  id: Generated<number>;
  url: string;
  secret: string;
  /** JSON array of event filters: `push`, `deploy.*`, `*` */
  events: string;
  /** only events of repositories matching this pattern; null: all */
  repository_pattern: string | null;
  created_by: string | null;
  created_at: number;
}

/** The persisted outbox: one row per event and subscription, retried until a 2xx or the attempts run out. */
export interface WebhookDeliveriesTable {
  /** sent as X-Wharf-Delivery, the same on every attempt */
  id: string;
  subscription_id: number;
  event: string;
  repository: string | null;
  /** the exact JSON body, so that every attempt sends (and signs) the same bytes */
  body: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: number;
  /** `attempts` when the delivery was last (re)queued: the retry budget counts from here */
  budget_from: number;
  /** when pending: the earliest next attempt (also the lease of an attempt in flight) */
  next_attempt_at: number | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: number;
  completed_at: number | null;
}

/** Append-only delivery log: every attempt with its outcome. */
export interface WebhookAttemptsTable {
  id: Generated<number>;
  delivery_id: string;
  attempt: number;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  at: number;
}

/** A person who logs in; `role` admin may do everything, a member what grants allow. */
export interface UsersTable {
  id: Generated<number>;
  name: string;
  role: 'admin' | 'member';
  /** scrypt$N$r$p$salt$hash — never the password */
  password_hash: string;
  created_at: number;
  updated_at: number;
  /** carried by every token issued to the user; changed on a password change, so older tokens stop working */
  token_generation: Generated<number>;
}

/** Group membership; a group exists while it has members or grants. */
export interface GroupMembersTable {
  group_name: string;
  user_name: string;
  created_at: number;
}

/** A CI (robot) token: only a hash of its secret is kept; revoked rows stay for the record. */
export interface RobotTokensTable {
  /** the public part of the secret, used to find the row */
  id: string;
  name: string;
  secret_hash: string;
  /** the scopes as given at creation, space-separated (the grants rows are what is enforced) */
  scope: string;
  created_by: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

/** One action on a repository glob for a user, a group or a token (subject = token id). */
export interface GrantsTable {
  id: Generated<number>;
  subject_kind: 'user' | 'group' | 'token';
  subject: string;
  pattern: string;
  /** pull | push | delete | release | release:<environment> | admin */
  action: string;
  created_by: string | null;
  created_at: number;
}

/** Append-only: who did what, from where, when, and how it ended. */
export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  actor: string;
  actor_kind: 'user' | 'token' | 'anonymous' | 'local';
  /** client address, or null for the local CLI */
  address: string | null;
  action: string;
  repository: string | null;
  target: string | null;
  result: 'ok' | 'denied' | 'failed';
  /** JSON */
  detail: string | null;
}

/** A retention policy set over the management API (those of the config file are not stored). */
export interface RetentionPoliciesTable {
  id: Generated<number>;
  /** repository glob */
  repositories: string;
  /** tag glob the keep rules count and delete among */
  tags: string;
  keep_last: number | null;
  /** ms */
  keep_within: number | null;
  /** ms */
  untagged_older_than: number | null;
  created_by: string | null;
  created_at: number;
}

/** Append-only: every garbage collection that changed something, and what it reclaimed. */
export interface GcRunsTable {
  id: Generated<number>;
  trigger: 'schedule' | 'cli' | 'api';
  actor: string | null;
  started_at: number;
  finished_at: number;
  tags_deleted: number;
  manifests_deleted: number;
  links_dropped: number;
  blobs_deleted: number;
  bytes_reclaimed: number;
  error: string | null;
}

/** One deployment of an environment: started as 'running', finished once with its outcome. */
export interface DeploymentsTable {
  id: Generated<number>;
  environment_id: number;
  release_id: number | null;
  digest: string;
  /** the repository as the hosts pulled it, e.g. registry.example.com/myapp */
  image: string;
  /** docker (hosts) or swarm */
  kind: 'docker' | 'swarm';
  /** what asked for it: deploy, release, promote, rollback, auto */
  trigger: string | null;
  status: 'running' | 'succeeded' | 'failed' | 'rolled_back' | 'paused' | 'needs_operator' | 'interrupted';
  reason: string | null;
  actor: string | null;
  started_at: number;
  finished_at: number | null;
}

/** Append-only: what a deployment did to each target (deploy the release, or bring the previous one back). */
export interface DeploymentStepsTable {
  id: Generated<number>;
  deployment_id: number;
  /** order within the deployment */
  seq: number;
  target: string;
  action: 'deploy' | 'restore';
  /** JSON array of container names (Docker hosts) or task ids (Swarm) */
  containers: string;
  digest: string | null;
  started_at: number;
  finished_at: number;
  result: 'succeeded' | 'failed' | 'skipped';
  reason: string | null;
}

/** The applied app file (wharf.yaml) of an application. */
export interface AppFilesTable {
  repository_id: number;
  body: string;
  actor: string | null;
  updated_at: number;
}

/** A Docker engine registered for deployments by a global admin. */
/** A public key whose attestation signatures count, for the apps, kinds and environments named (attest/signers.ts). */
export interface AttestationSignersTable {
  name: string;
  /** sha256 of the key's SubjectPublicKeyInfo */
  keyid: string;
  algorithm: 'ed25519' | 'ecdsa-p256';
  /** SPKI PEM */
  public_key: string;
  /** JSON arrays of patterns (apps, environments) and kinds */
  apps: string;
  kinds: string;
  environments: string;
  /** 'api' (wharf signer add) or 'config' (the server config file, re-read at each start) */
  source: 'api' | 'config';
  created_by: string | null;
  created_at: number;
  revoked_at: number | null;
  revoked_by: string | null;
}

export interface DeployTargetsTable {
  name: string;
  endpoint: string;
  /** JSON {ca, cert, key} */
  tls: string | null;
  identity_file: string | null;
  /** JSON array of repository patterns */
  apps: string;
  /** JSON array of allowed privileges */
  allow: string;
  /** JSON {image, address, ports: {from, to}}: the proxy apps may ask for here; null: none */
  proxy: string | null;
  /** 'api' (wharf target add) or 'config' (the server config file, re-read at each start) */
  source: 'api' | 'config';
  created_by: string | null;
  updated_at: number;
}

/** A Wharf-managed secret of an app's environment: iv, tag and ciphertext, never the value. */
export interface AppSecretsTable {
  app: string;
  environment: string;
  name: string;
  sealed: string;
  updated_by: string | null;
  updated_at: number;
}

/** A signed-in browser (see server/session.ts): the cookie's id is known only by its SHA-256. */
export interface BrowserSessionsTable {
  id_hash: string;
  user_name: string;
  /** what the session was bound to at sign-in (a hash of the password hash): a new password ends it */
  binding: string;
  address: string | null;
  created_at: number;
  expires_at: number;
}

export interface SigningKeysTable {
  /** the JWK thumbprint of the public key (the JWT header's kid) */
  kid: string;
  /** the order keys were made in: the highest unretired one signs */
  seq: number;
  algorithm: string;
  public_jwk: string;
  /** null once a newer key signs (only the current key's private half is kept) */
  private_jwk: string | null;
  created_at: number;
  /** when a newer key started signing: tokens of this one stop being valid a token lifetime later */
  superseded_at: number | null;
  /** when it stopped being trusted at all (`wharf keys rotate --retire`) */
  retired_at: number | null;
}

export interface LeasesTable {
  name: string;
  holder: string;
  acquired_at: number;
  expires_at: number;
}

export interface LoginFailuresTable {
  key: string;
  failures: number;
  last_at: number;
  until_at: number;
}

export interface Database {
  signing_keys: SigningKeysTable;
  leases: LeasesTable;
  login_failures: LoginFailuresTable;
  browser_sessions: BrowserSessionsTable;
  repositories: RepositoriesTable;
  blobs: BlobsTable;
  repository_blobs: RepositoryBlobsTable;
  manifests: ManifestsTable;
  manifest_references: ManifestReferencesTable;
  tags: TagsTable;
  tag_history: TagHistoryTable;
  users: UsersTable;
  group_members: GroupMembersTable;
  robot_tokens: RobotTokensTable;
  grants: GrantsTable;
  audit_log: AuditLogTable;
  environments: EnvironmentsTable;
  releases: ReleasesTable;
  webhook_subscriptions: WebhookSubscriptionsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
  retention_policies: RetentionPoliciesTable;
  gc_runs: GcRunsTable;
  deployments: DeploymentsTable;
  deployment_steps: DeploymentStepsTable;
  app_files: AppFilesTable;
  deploy_targets: DeployTargetsTable;
  attestation_signers: AttestationSignersTable;
  app_secrets: AppSecretsTable;
  approval_requests: ApprovalRequestsTable;
}
