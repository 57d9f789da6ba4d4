// The metadata the domain reads and writes, as narrow interfaces per concern (zot's pkg/meta MetaDB is the
// model): domain code depends on these types only, and a backend implements `Metadata` once. Today one Kysely
// implementation (store.ts) serves SQLite and PostgreSQL alike.
import type { ManifestRecord, ReferrerRow, StoredManifest, TagChange, TagGuard } from './registry-store.js';
import type { EnvironmentRow, ReleaseRow, NewRelease, EnvironmentSettings, ReleaseMatch } from './delivery-store.js';
import type { ApprovalListQuery, ApprovalRow } from './approval-store.js';
import type { RetentionPolicyRow } from './retention-store.js';
import type { LinkRow, GcRunRow, NewGcRun } from './gc-store.js';
import type { Role, SubjectKind, UserRow, TokenRow, GrantRow, Membership } from './auth-store.js';
import type { SessionRow } from './session-store.js';
import type { DeliveryStatus, Subscription, NewSubscription, WebhookDelivery, DeliveryAttempt, NewDelivery, DueDelivery, DeliveryFilter, AttemptResult } from './webhook-store.js';
import type { DeploymentRow, DeploymentRecord, NewDeployment } from './deployment-store.js';
import type { StoredTarget, StoredSecret } from './deploy-target-store.js';
import type { SignerMetadata } from './signer-store.js';
import type { ActorKind, AuditResult, AuditRecord, AuditQuery, AuditPageQuery } from './audit-store.js';
import type { RepositorySummary, TagSummary, TagOrder } from './browse-store.js';
import type { Tx, UnitOfWork } from './transaction.js';
import type { DeploymentOutcome, HistoryMatch, ManifestState, RetentionPolicy, TagState, TargetRegistration } from './records.js';
import type { Insertable } from 'kysely';
import type { ApprovalRequestsTable } from './schema.js';
import type { SchemaState } from './schema-version.js';
import type { NewSigningKey, SigningKeyRow } from './signing-key-store.js';
import type { LeaseHolder } from './lease-store.js';
import type { LoginFailureRow } from './login-failure-store.js';
import type { RoundTrips } from './round-trips.js';

export type { Tx, UnitOfWork } from './transaction.js';
export type { ManifestRecord, ReferrerRow, StoredManifest, TagChange, TagGuard } from './registry-store.js';
export type { EnvironmentRow, ReleaseRow, NewRelease, EnvironmentSettings, ReleaseMatch } from './delivery-store.js';
export type { ApprovalRow, ApprovalListQuery } from './approval-store.js';
export type { RetentionPolicyRow } from './retention-store.js';
export type { LinkRow, GcRunRow, NewGcRun } from './gc-store.js';
export type { Role, SubjectKind, UserRow, TokenRow, GrantRow, Membership } from './auth-store.js';
export type { SessionRow } from './session-store.js';
export type { DeliveryStatus, Subscription, NewSubscription, WebhookDelivery, DeliveryAttempt, NewDelivery, DueDelivery, DeliveryFilter, AttemptResult } from './webhook-store.js';
export type { DeploymentRow, DeploymentRecord, NewDeployment } from './deployment-store.js';
export type { StoredTarget, StoredSecret } from './deploy-target-store.js';
export type { ActorKind, AuditResult, AuditRecord, AuditQuery, AuditPageQuery } from './audit-store.js';
export type { RepositorySummary, TagSummary, TagOrder } from './browse-store.js';
export type { StoredSigner, SignerMetadata } from './signer-store.js';
export type { NewSigningKey, SigningKeyRow } from './signing-key-store.js';
export type { LeaseHolder } from './lease-store.js';
export type { LoginFailureRow } from './login-failure-store.js';

/** The token signing keys every instance shares (auth/token-service.ts). */
export interface SigningKeyMetadata {
  /** Every key, oldest first. */
  keys(): Promise<SigningKeyRow[]>;
  /** Stores the first key unless one exists (several instances starting at once: one wins, all read it). */
  createFirst(key: NewSigningKey): Promise<void>;
  /** Makes `key` the signing key; the others only verify from now on, or (`retire`) not at all. */
  rotate(key: NewSigningKey, retire: boolean): Promise<void>;
}

/** Work one instance at a time does, claimed with a lease that runs out unless renewed. */
export interface LeaseMetadata {
  /** Null when `holder` now holds `name` until now + ttl; else who holds it. */
  claim(name: string, holder: string, now: number, ttlMs: number): Promise<LeaseHolder | null>;
  /** False when the lease ran out and someone else took it. */
  renew(name: string, holder: string, now: number, ttlMs: number): Promise<boolean>;
  release(name: string, holder: string): Promise<void>;
}

/** Failed-login counters shared by every instance (auth/login-limiter.ts). */
export interface LoginFailureMetadata {
  get(keys: string[]): Promise<LoginFailureRow[]>;
  /** Counts one failure (an atomic increment), forgetting earlier ones older than the window first. */
  count(key: string, now: number, windowMs: number): Promise<LoginFailureRow>;
  /** Delays `key` until `until`, unless a longer delay runs. */
  delay(key: string, until: number): Promise<void>;
  clear(key: string): Promise<void>;
  /** Counters whose delay runs at `now`. */
  delayed(now: number): Promise<LoginFailureRow[]>;
  prune(now: number, windowMs: number): Promise<void>;
}

/** Repositories, blobs and their links, manifests and tags with their history: what /v2 reads and writes. */
export interface RegistryMetadata {
  repositoryId(name: string, tx?: Tx): Promise<number | null>;
  ensureRepository(name: string, tx?: Tx): Promise<number>;
  listRepositories(limit: number | undefined, last: string | undefined): Promise<string[]>;
  /**
   * Records a blob that `reveal` makes visible (renames into place) and links it to `repository`, in one
   * transaction whose first statement writes the blob row, before the file appears. Garbage collection
   * deletes a blob's row and file inside one transaction as well, so the two are serialized: GC can never
   * delete a file between its appearance and its row (the argument is in delivery/gc.ts).
   */
  commitBlob(repository: string, digest: string, size: number, reveal: () => Promise<void>, location?: string): Promise<string | null>;
  /** Where a blob's bytes are (see BlobsTable.location), or null when no row records the digest. */
  blobLocation(digest: string): Promise<{ location: string | null; size: number } | null>;
  /** Every blob row with its location, for listing a store that names objects by upload. */
  blobLocations(): Promise<{ digest: string; location: string | null; size: number }[]>;
  /** Links an already stored blob (a mount) and refreshes its row; false when it is gone (just collected). */
  linkStoredBlob(repository: string, digest: string): Promise<boolean>;
  /** Size of a blob `repository` may read, or null. */
  linkedBlob(repository: string, digest: string): Promise<{ size: number } | null>;
  blobKnown(digest: string): Promise<{ size: number } | null>;
  unlinkBlob(repository: string, digest: string): Promise<boolean>;
  /** Which of `digests` are linked to `repository` as blobs. */
  linkedBlobsOf(repository: string, digests: string[]): Promise<Set<string>>;
  manifestsOf(repository: string, digests: string[]): Promise<Set<string>>;
  /**
   * Stores a manifest and, when `tag` is given, points the tag at it — in one transaction, so a crash
   * never leaves a tag pointing at a missing manifest. Returns the digest the tag pointed to before.
   */
  putManifest(repository: string, m: ManifestRecord, tag?: string, actor?: string | null, guard?: TagGuard): Promise<{ previous: string | null }>;
  /**
   * Points an existing tag name at a manifest the repository has (restore, admin override, release tags).
   * The guard runs inside the transaction with the tag's current digest, so its decision cannot go stale.
   */
  moveTag(repository: string, tag: string, digest: string, actor: string | null, guard?: TagGuard, tx?: Tx): Promise<{ previous: string | null }>;
  /** The digest a tag points at now, or null. */
  tagDigest(repository: string, tag: string): Promise<string | null>;
  /** Tags pointing at a digest. */
  tagsOf(repository: string, digest: string): Promise<string[]>;
  manifestByDigest(repository: string, digest: string): Promise<StoredManifest | null>;
  /**
   * Every pull starts with this lookup, thousands of times a second under load, and tags move rarely: it is
   * answered from memory until any write. Under a manifest GET load the query and its rows took about a third of
   * the main thread; checking the stamp is one statement. The body is shared with the cache: callers must not
   * modify it.
   */
  manifestByTag(repository: string, tag: string): Promise<StoredManifest | null>;
  /** Deletes a manifest and every tag pointing at it (each tag deletion recorded). False when absent. */
  deleteManifest(repository: string, digest: string, actor?: string | null, guard?: TagGuard): Promise<boolean>;
  deleteTag(repository: string, tag: string, actor?: string | null, guard?: TagGuard): Promise<boolean>;
  listTags(repository: string, limit: number | undefined, last: string | undefined): Promise<string[] | null>;
  /** Newest first; `before` (a change's id) and `limit` page it by keyset. */
  tagHistory(repository: string, tag?: string, page?: { before?: number; limit?: number } & HistoryMatch): Promise<TagChange[]>;
  referrers(repository: string, subject: string): Promise<ReferrerRow[]>;
}

/** What `wharf fsck` checks and repairs. */
export interface FsckMetadata {
  allBlobRows(): Promise<{ digest: string; size: number }[]>;
  /** Links to blobs that have no blob row. */
  danglingLinks(): Promise<{ repository: string; digest: string }[]>;
  /** Tags whose manifest is missing. */
  danglingTags(): Promise<{ repository: string; tag: string; digest: string }[]>;
  /** Manifest references to blobs the repository cannot read, or to child manifests it lacks. */
  danglingReferences(): Promise<{ repository: string; manifest: string; kind: string; target: string }[]>;
  allManifests(): Promise<{ repository: string; digest: string; body: Buffer }[]>;
  deleteBlobRow(digest: string): Promise<void>;
}

/** Environments and their append-only releases; the current release moves by compare-and-set. */
export interface DeliveryMetadata {
  createEnvironment(repositoryId: number, name: string, opts: EnvironmentSettings): Promise<EnvironmentRow>;
  updateEnvironment(id: number, opts: EnvironmentSettings): Promise<void>;
  environment(repository: string, name: string, tx?: Tx): Promise<EnvironmentRow | undefined>;
  /** In the order they were made; `after` (an environment id) and `limit` page it by keyset. */
  environments(repository: string, page?: { after?: number; limit?: number }): Promise<EnvironmentRow[]>;
  /** Whether `tag` names an environment of the repository (and is therefore reserved). */
  isEnvironmentTag(repositoryId: number, tag: string, tx?: Tx): Promise<boolean>;
  release(id: number, tx?: Tx): Promise<ReleaseRow | undefined>;
  /** Newest first. */
  /** Newest first; `before` (a release id) pages by keyset; `match`: only the releases of that digest and kind. */
  releases(repository: string, environment?: string, limit?: number, before?: number, match?: ReleaseMatch): Promise<ReleaseRow[]>;
  insertRelease(r: NewRelease, tx: Tx): Promise<number>;
  /**
   * Compare-and-set of the current release; false when someone else moved it first. The release is marked as
   * having been current, and stops being the pending one if it was.
   */
  setCurrent(environmentId: number, expected: number | null, next: number, tx: Tx): Promise<boolean>;
  /** Sets (or with null clears) the environment's pending release; clearing only if it is still `only`. */
  setPending(environmentId: number, release: number | null, tx?: Tx, only?: number): Promise<void>;
  /**
   * Digests that retention and GC must keep: the current and the last `keep` releases of every environment,
   * per repository.
   */
  protectedDigests(keep: number): Promise<{ repository: string; digest: string }[]>;
}

/** Approval requests: a release waiting for a second person, approved or denied once. */
export interface ApprovalMetadata {
  create(r: Omit<Insertable<ApprovalRequestsTable>, 'id' | 'status' | 'approved_by' | 'approved_at' | 'release_id'>): Promise<number>;
  /** The request `id` of the app, if it is one of its environments'. */
  get(app: string, id: number): Promise<ApprovalRow | undefined>;
  /** Newest first; only pending ones unless `all`; `before` (a request id) and `limit` page it by keyset. */
  list(app: string, q?: ApprovalListQuery): Promise<ApprovalRow[]>;
  /** pending → approved, once: false if someone else approved it first. */
  claim(id: number, by: string | null): Promise<boolean>;
  /** The approved operation was refused (a gate, a conflict): the request waits again. */
  unclaim(id: number): Promise<void>;
  /** pending → denied, once: false if it was decided meanwhile. */
  deny(id: number, by: string | null): Promise<boolean>;
  recordRelease(id: number, releaseId: number): Promise<void>;
}

/** Retention policies, the state retention plans over, and deletions that re-check the plan. */
export interface RetentionMetadata {
  policies(): Promise<RetentionPolicyRow[]>;
  addPolicy(p: RetentionPolicy, actor: string | null): Promise<RetentionPolicyRow>;
  deletePolicy(id: number): Promise<boolean>;
  repositories(): Promise<{ id: number; name: string }[]>;
  tags(repositoryId: number): Promise<TagState[]>;
  manifests(repositoryId: number): Promise<ManifestState[]>;
  /** Deletes a tag (recorded in its history) only if it still points at `digest`: a tag pushed since stays. */
  deleteTagIf(repositoryId: number, tag: string, digest: string, actor: string): Promise<boolean>;
  /**
   * Deletes a manifest only if, now, no tag points at it (a release also moves its environment's tag onto
   * it), no index of the repository lists it and no referrer names it as subject: whatever was pushed
   * since the plan was made wins. A push that checked for this manifest just before is refused instead,
   * by the same check repeated in its own transaction (RegistryStore.putManifest).
   */
  deleteUnreferencedManifest(repositoryId: number, digest: string): Promise<boolean>;
}

/** Garbage collection: links, references, blob rows and the runs log. */
export interface GcMetadata {
  links(): Promise<LinkRow[]>;
  /** How many manifests of each repository reference each blob, keyed by `referenceKey`. */
  blobReferenceCounts(): Promise<Map<string, number>>;
  /** The blob references of some manifests of a repository (a dry run discounts those retention would delete). */
  blobReferencesOf(repository: string, manifests: string[]): Promise<{ repositoryId: number; digest: string }[]>;
  blobRows(): Promise<Map<string, { size: number; createdAt: number }>>;
  /** Drops links that are, at the moment of the statement, older than `cutoff` and referenced by no manifest of their repository. */
  dropLinks(repositoryId: number, digests: string[], cutoff: number): Promise<number>;
  /**
   * Deletes blob rows that are, at the moment of the statement, older than `cutoff` and linked to no
   * repository — and, in the same transaction, their files (`remove`). A commit or mount of the digest
   * writes the same row in its own transaction, so it runs wholly before or wholly after this one. A file
   * `remove` could not delete stays behind as an orphan, for the next run.
   */
  deleteBlobs(digests: string[], cutoff: number, remove: (digest: string, location: string | null) => Promise<boolean>): Promise<{ digest: string; size: number }[]>;
  /**
   * Deletes files that have no blob row. Each is claimed first by inserting its row: a commit in flight
   * holds that row (SQLite: the write lock; PostgreSQL: the key), so a claim either waits for the commit
   * and then finds the row (and leaves the file), or wins and the commit comes after the file is gone.
   */
  deleteOrphans(files: { digest: string; size: number }[], remove: (digest: string) => Promise<boolean>): Promise<{ digest: string; size: number }[]>;
  recordRun(run: NewGcRun): Promise<void>;
  /** Newest first. */
  /** Newest first; `before` (a run id) pages by keyset. */
  runs(limit: number, before?: number): Promise<GcRunRow[]>;
  lastRunFinishedAt(): Promise<number | null>;
}

/** Users, group memberships, robot tokens and grants: rows only, no policy. */
export interface AuthMetadata {
  users(): Promise<UserRow[]>;
  user(name: string): Promise<UserRow | undefined>;
  userCount(): Promise<number>;
  /** False when the name is taken. */
  addUser(name: string, role: Role, passwordHash: string): Promise<boolean>;
  /** A new password also moves the user's token generation on: every token issued before stops working. */
  updateUser(name: string, change: { passwordHash?: string; role?: Role }): Promise<boolean>;
  /** Moves the user's token generation on (ends every token issued so far); false when there is no such user. */
  bumpTokenGeneration(name: string): Promise<boolean>;
  /** Removes the user with its memberships and grants, so a later user of the same name starts clean. */
  removeUser(name: string): Promise<boolean>;
  memberships(): Promise<Membership[]>;
  /** Returns the users newly added. */
  addMembers(group: string, users: string[]): Promise<string[]>;
  /** Removes the given members, or the whole group (members and grants) when `users` is empty. */
  removeMembers(group: string, users: string[]): Promise<number>;
  tokens(includeRevoked?: boolean): Promise<TokenRow[]>;
  /** Stores a token with its scopes as grants, in one transaction. */
  addToken(t: Omit<TokenRow, 'revokedAt'>, grants: { pattern: string; action: string }[]): Promise<void>;
  /** Revokes the active tokens of that name; returns how many. */
  revokeToken(name: string): Promise<number>;
  grants(): Promise<GrantRow[]>;
  /** Returns the actions newly granted (already granted ones are left as they are). */
  addGrant(subjectKind: SubjectKind, subject: string, pattern: string, actions: string[], createdBy: string | null): Promise<string[]>;
  /** Removes the given actions (all actions when `actions` is undefined) on exactly that pattern. */
  removeGrant(subjectKind: SubjectKind, subject: string, pattern: string, actions?: string[]): Promise<number>;
}

/** Browser sessions by the hash of their cookie id. */
export interface SessionMetadata {
  add(row: SessionRow): Promise<void>;
  find(idHash: string): Promise<SessionRow | undefined>;
  remove(idHash: string): Promise<boolean>;
  /** Ends every session of a user (signed out everywhere). */
  removeUser(user: string): Promise<number>;
  removeExpired(now: number): Promise<number>;
}

/** Webhook subscriptions, the delivery outbox (claimed with a lease) and the attempt log. */
export interface WebhookOutbox {
  createSubscription(s: NewSubscription): Promise<Subscription>;
  listSubscriptions(tx?: Tx): Promise<Subscription[]>;
  deleteSubscription(id: number): Promise<boolean>;
  enqueue(deliveries: NewDelivery[], tx?: Tx): Promise<void>;
  /**
   * Claims up to `limit` due deliveries by moving their next attempt to `leaseUntil`, so two dispatchers on one
   * database never take the same row (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: a conditional update), and a
   * crashed attempt comes back after the lease.
   */
  claimDue(now: number, limit: number, leaseUntil: number): Promise<DueDelivery[]>;
  /** Hands a claimed delivery back untried (the dispatcher is stopping): due again at once. */
  release(id: string, now: number): Promise<void>;
  /** The earliest next attempt of any pending delivery, leased ones included. */
  nextDueAt(): Promise<number | null>;
  /** Logs an attempt and moves the delivery on, in one transaction. */
  recordAttempt(id: string, attempt: DeliveryAttempt, result: AttemptResult): Promise<void>;
  /** Queues a finished delivery again, due now, with a fresh retry budget; false when it is still pending. */
  requeue(id: string, now: number): Promise<boolean>;
  listDeliveries(filter?: DeliveryFilter): Promise<WebhookDelivery[]>;
  delivery(id: string): Promise<(WebhookDelivery & { body: string; log: DeliveryAttempt[] }) | null>;
}

/** The record of deployments and their steps; an unfinished one locks its environment. */
export interface DeploymentMetadata {
  /** Records a running deployment; refused (409) while another one of the environment is unfinished. */
  begin(d: NewDeployment, now?: number): Promise<number>;
  /** Writes the outcome and the steps, and releases the environment's lock. */
  finish(id: number, result: DeploymentOutcome): Promise<void>;
  /** At server start: deployments cut off by a crash or restart are finished as interrupted (and unlocked). */
  interruptRunning(now?: number): Promise<number>;
  running(environmentId: number): Promise<DeploymentRow | undefined>;
  get(id: number): Promise<DeploymentRecord | undefined>;
  /** The environment's newest deployment that matches: of a digest, with a status, before another deployment. */
  newest(environmentId: number, match: { digest?: string; status?: DeploymentRow['status']; before?: number }): Promise<DeploymentRow | undefined>;
  /** The environment's newest deployment that has finished. */
  newestFinished(environmentId: number): Promise<DeploymentRow | undefined>;
  /** How many environments' newest finished deployment was paused or needs an operator. */
  countNeedingOperator(): Promise<number>;
  /** The newest deployment of each of these releases (releases never deployed are absent). */
  latestOfReleases(releaseIds: number[]): Promise<Map<number, DeploymentRow>>;
  /** Newest first. */
  /** Newest first; `before` (a deployment id) pages by keyset. */
  list(environmentId: number, limit?: number, before?: number, match?: HistoryMatch): Promise<DeploymentRecord[]>;
}

/** Applied app files, one per application. */
export interface AppFileMetadata {
  /** The text of the app's applied file, or null. */
  get(app: string): Promise<string | null>;
  /** Stores (or replaces) the file of the repository. */
  put(repositoryId: number, text: string, actor: string | null): Promise<void>;
  /** Every application with an applied file, by name. */
  apps(): Promise<string[]>;
}

/** Registered deploy targets and the sealed secrets of app environments. */
export interface DeployTargetMetadata {
  targets(): Promise<StoredTarget[]>;
  /** Adds or replaces the target of that name. */
  putTarget(t: TargetRegistration, source: 'api' | 'config', actor: string | null): Promise<void>;
  removeTarget(name: string): Promise<boolean>;
  /** Targets the config file registered before but names no more: the file is their only source. */
  removeConfigTargetsExcept(names: string[]): Promise<void>;
  putSecret(s: { app: string; environment: string; name: string; sealed: string }, actor: string | null): Promise<void>;
  sealedSecret(app: string, environment: string, name: string): Promise<string | undefined>;
  /** Names and times only. */
  secrets(app: string, environment?: string): Promise<StoredSecret[]>;
  removeSecret(app: string, environment: string, name: string): Promise<boolean>;
}

/** The append-only audit log. */
export interface AuditMetadata { insert(r: Omit<AuditRecord, 'id'>): Promise<void>; page(q: AuditPageQuery): Promise<AuditRecord[]>; list(q?: AuditQuery): Promise<AuditRecord[]> }

/** The read models of the web UI: repository and tag summaries. */
export interface BrowseMetadata {
  repositories(q: { prefix?: string; after?: string; limit: number }): Promise<RepositorySummary[]>;
  /** Null when the repository does not exist. */
  tags(repository: string, q: { prefix?: string; order: TagOrder; limit: number }): Promise<TagSummary[] | null>;
  /** The bodies of manifests of one repository (an index's children, for their sizes and platforms). */
  manifestBodies(repository: string, digests: string[]): Promise<Map<string, { mediaType: string; body: Buffer }>>;
}

/** Every concern of one metadata backend, with the unit of work spanning them. */
export interface Metadata extends UnitOfWork {
  readonly registry: RegistryMetadata;
  readonly fsck: FsckMetadata;
  readonly delivery: DeliveryMetadata;
  readonly approvals: ApprovalMetadata;
  readonly retention: RetentionMetadata;
  readonly gc: GcMetadata;
  readonly auth: AuthMetadata;
  readonly sessions: SessionMetadata;
  readonly webhooks: WebhookOutbox;
  readonly deployments: DeploymentMetadata;
  readonly appFiles: AppFileMetadata;
  readonly deployTargets: DeployTargetMetadata;
  readonly audit: AuditMetadata;
  readonly browse: BrowseMetadata;
  readonly signers: SignerMetadata;
  readonly signingKeys: SigningKeyMetadata;
  readonly leases: LeaseMetadata;
  readonly loginFailures: LoginFailureMetadata;
  /** Whether the database records no blob at all (a lost database beside a blob store that holds some). */
  recordsNoBlobs(): Promise<boolean>;
  /** Throws unless the database answers a query (/readyz). */
  ping(): Promise<void>;
  /** The statements sent to the database so far, by statement (/metrics: wharf_db_queries_total). */
  readonly roundTrips?: Pick<RoundTrips, 'backend' | 'total' | 'byStatement'>;
  /** Which migrations the database has and lacks: /readyz wants neither pending nor unknown ones. */
  schemaState(): Promise<SchemaState>;
  close(): Promise<void>;
}
