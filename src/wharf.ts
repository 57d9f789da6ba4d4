// The composition root: opens a Wharf data directory (blob store, metadata database) and builds every domain service
// over it with its real dependencies, access control included. Both the server and the CLI's local commands start here.
import { mkdir } from 'node:fs/promises';
import type { Config } from './config.js';
import { FsBlobStore } from './storage/fs-blob-store.js';
import type { BlobStore } from './storage/blob-store.js';
import { openMetadataStore } from './metadata/open.js';
import type { MetadataStore } from './metadata/store.js';
import type { Metadata } from './metadata/metadata.js';
import { Registry, type RegistryEvents } from './registry/registry.js';
import { TagRules } from './delivery/tag-rules.js';
import { Delivery } from './delivery/releases.js';
import { TagHistory } from './delivery/tags.js';
import { Webhooks } from './webhooks/service.js';
import { postDelivery } from './server/webhook-delivery.js';
import { withWebhooks } from './webhooks/registry-events.js';
import { TrustedSigners } from './attest/signers.js';
import { Attestations } from './attest/attestations.js';
import { attestationGate } from './delivery/attestation-gate.js';
import { Retention } from './delivery/retention.js';
import { GarbageCollector } from './delivery/gc.js';
import { DeployService } from './deploy/service.js';
import { AppliedAppFiles } from './deploy/applied-app-files.js';
import { ReleaseWorkflow } from './deploy/release-workflow.js';
import { Deployer } from './deploy/deployer.js';
import { dockerEngines } from './engine/dockerode-engines.js';
import { deploymentGate } from './deploy/deployment-gate.js';
import type { Engines } from './engine/engines.js';
import { AuditLog } from './audit/audit-log.js';
import { Approvals } from './delivery/approvals.js';
import { DeployTargets } from './deploy/targets.js';
import { ManagedSecrets } from './deploy/secrets.js';
import { SecretBox } from './deploy/secret-box.js';
import type { Wharf } from './hub.js';
import { EmptyDatabaseError, holdsBlobs, refuseLostSqlite } from './lost-database.js';
import { pino, type Logger } from 'pino';
import { openAccess, type Principal } from './auth/access.js';
import { pullTokens, type Auth } from './auth/access-control.js';
import { AccessPolicy, Caller } from './auth/access-policy.js';
import { parseSubject } from './auth/accounts.js';
import { Authenticator } from './auth/authenticator.js';
import { LoginLimiter } from './auth/login-limiter.js';
import type { PolicyGrant } from './auth/policy.js';
import { PolicySource } from './auth/policy-source.js';
import { TokenService } from './auth/token-service.js';
import { Sessions } from './auth/sessions.js';

export type { Wharf } from './hub.js';
export { EmptyDatabaseError } from './lost-database.js';

export interface OpenOptions {
  /** open a database that records no blob even when the blob store holds some (wharf serve --init) */
  allowEmptyDatabase?: boolean;
  /** apply missing migrations to a PostgreSQL database (`serve --migrate`); SQLite applies them at every open */
  migrate?: boolean;
  /** errors of the database connections outside any request (PostgreSQL), for the log */
  onDatabaseError?: (e: Error) => void;
  /** where the services tell what they decided by themselves (default: nowhere) */
  log?: Logger;
  /**
   * host[:port] clients reach the registry at, which deploy targets pull from. Default: the external URL's, else the
   * configured listen address; a server listening on port 0 knows its port only once bound, and passes it here.
   */
  registryHost?: string;
  /** the clock of login throttling and of remembered credentials (tests move it instead of waiting) */
  now?: () => number;
}

/** How long a browser session lasts from sign-in. */
const SESSION_TTL_MS = 12 * 3600_000;

/** The registry address clients use, as far as the config tells it. */
export function configuredRegistryHost(config: Config): string {
  return new URL(config.externalUrl ?? `http://${config.listen}`).host;
}

// PostgreSQL's driver and the S3 SDK are loaded only when the config names them: on an install that uses neither,
// they were a third of what a `wharf serve` start or a local CLI command spent loading modules.

/** The metadata store `config` names: PostgreSQL at `config.db`, else SQLite in the data directory. */
function openMetadata(config: Config, options: OpenOptions = {}): Promise<MetadataStore> {
  return openMetadataStore(config, { migrate: options.migrate, onError: options.onDatabaseError });
}

/** `engines`: how deployments reach Docker hosts and Swarm (the real engines unless a test hands in its own). */
export async function openWharf(config: Config, events: RegistryEvents = {}, engines: Engines = dockerEngines(), options: OpenOptions = {}): Promise<Wharf> {
  await mkdir(config.data, { recursive: true, mode: 0o700 });
  let blobs: BlobStore;
  let meta: Metadata;
  if (config.storage.s3) {
    // Objects on S3 are named by the database (blobs.location): it is opened first and handed to the store.
    meta = await openMetadata(config, options);
    const { S3BlobStore } = await import('./storage/s3-blob-store.js');
    blobs = new S3BlobStore(config.storage.s3, meta.registry);
  } else {
    const fs = new FsBlobStore(config.data);
    await fs.init();
    if (config.db) {
      meta = await openMetadata(config, options);
      if (!options.allowEmptyDatabase && (await meta.recordsNoBlobs()) && (await holdsBlobs(fs))) {
        await meta.close();
        const { redactedUrl } = await import('./metadata/postgres.js');
        throw new EmptyDatabaseError(redactedUrl(config.db), true);
      }
    } else {
      if (!options.allowEmptyDatabase) await refuseLostSqlite(config.data);
      meta = await openMetadata(config, options);
    }
    blobs = fs;
  }
  const webhooks = new Webhooks(meta.webhooks, config.webhooks, postDelivery);
  const deliveryStore = meta.delivery;
  const tagRules = new TagRules(deliveryStore, config.delivery.immutableTags);
  const audit = new AuditLog(meta.audit);
  const registry = new Registry(
    blobs,
    meta.registry,
    { maxManifestBytes: config.registry.maxManifestBytes, tagGuard: tagRules.guard, hashOnServe: config.integrity.hashOnServe, maxUploadSessionsPerHolder: config.uploads.maxSessionsPerUser },
    {
      ...withWebhooks(events, webhooks),
      blobQuarantined: async (e) => {
        await events.blobQuarantined?.(e);
        await audit.record({
          actor: { name: 'wharf', kind: 'local', address: null },
          action: 'blob.quarantine',
          target: e.digest,
          result: 'ok',
          detail: { reason: e.reason, foundBy: e.foundBy, detail: e.detail },
        });
      },
    },
  );
  const signers = new TrustedSigners(meta.signers);
  await signers.syncConfig(config.signers);
  const attestations = new Attestations(registry, signers);
  const deployments = meta.deployments;
  const appliedFiles = new AppliedAppFiles(meta.appFiles);
  const delivery: Delivery = new Delivery(meta.registry, deliveryStore, meta, {
    gates: [attestationGate(attestations), deploymentGate(deliveryStore, deployments)],
    defers: (app: string, environment: string): Promise<boolean> => appliedFiles.hasTargets(app, environment),
    released: (r) =>
      webhooks.notify({
        type: 'release.created',
        repository: r.app,
        kind: r.kind,
        environment: r.environment,
        digest: r.digest,
        release: r.id,
        version: r.version,
        tag: r.tag,
        actor: r.actor,
        replaces: r.replaces,
      }),
  });
  const retention = new Retention(
    meta.retention,
    deliveryStore,
    { policies: config.retention, keepReleases: config.gc.keepReleases },
    registry.events,
  );
  const targetStore = meta.deployTargets;
  const targets = new DeployTargets(targetStore);
  await targets.syncConfig(config.targets);
  const secrets = new ManagedSecrets(targetStore, await SecretBox.open(config.data));
  const log = options.log ?? pino({ level: 'silent' });
  const auth = await openAccessControl(config, meta, audit, log, options.now);
  const deploy: DeployService = new DeployService(
    meta.registry,
    deliveryStore,
    delivery,
    deployments,
    meta.appFiles,
    new Deployer(engines, secrets.resolver()),
    targets,
    (e) => webhooks.notify(e),
    { registryHost: options.registryHost ?? configuredRegistryHost(config), pullToken: auth.pullToken, log },
  );
  const approvals = new Approvals(delivery, deliveryStore, meta.approvals);
  return {
    config,
    auth,
    releases: new ReleaseWorkflow(delivery, approvals, deploy, deployments, log),
    deploy,
    targets,
    secrets,
    approvals,
    audit,
    blobs,
    meta,
    registry,
    webhooks,
    delivery,
    tagHistory: new TagHistory(meta.registry, tagRules, (m) =>
      webhooks.notify({ type: 'tag.moved', repository: m.repository, tag: m.tag, from: m.previous, to: m.digest, actor: m.actor }),
    ),
    signers,
    attestations,
    retention,
    gc: new GarbageCollector(blobs, meta.gc, retention, { grace: config.gc.grace }, audit, meta.leases),
    close: async () => {
      await webhooks.stop();
      await meta.close();
      await blobs.close?.();
    },
  };
}

/** The config file's grants, as the policy holds them beside the database's. */
export function configGrants(auth: Config['auth']): PolicyGrant[] {
  return auth.grants.flatMap((g) => {
    const s = parseSubject(g.to);
    return g.actions.map((action) => ({ subjectKind: s.kind, subject: s.name, pattern: g.repositories, action }));
  });
}

/**
 * Access control from the config: the policy source, the token service (key in the data dir), the authenticator
 * with its cache and login limits, browser sessions and the access decision. Building it writes no user: the
 * first start's admin is created by the server (ensureAdmin), not by every local command that opens the data dir.
 */
async function openAccessControl(config: Config, meta: Metadata, audit: AuditLog, log: Logger, now?: () => number): Promise<Auth> {
  if (!config.auth.enabled) {
    log.warn('authentication is DISABLED (auth.enabled: false / WHARF_AUTH=off): anyone who can reach this server may push, pull and delete');
    return { access: openAccess, audit };
  }
  const store = meta.auth;
  const policies = new PolicySource(store, {
    configGrants: configGrants(config.auth),
    anonymousPull: config.auth.anonymousPull,
    refreshMs: config.auth.policyRefresh,
  });
  const tokens = await TokenService.open(meta.signingKeys, config.data, {
    service: config.auth.service,
    issuer: config.auth.issuer,
    accessTtlMs: config.auth.tokenTtl,
    refreshTtlMs: config.auth.refreshTokenTtl,
    keyRefreshMs: config.auth.policyRefresh,
  });
  const failures = config.auth.loginFailures;
  const limiter = new LoginLimiter(
    {
      perUser: failures.perUser,
      perAddress: failures.perAddress,
      delayMs: failures.delay,
      maxDelayMs: failures.maxDelay,
      maxAddressDelayMs: failures.maxAddressDelay,
      windowMs: failures.window,
    },
    now,
    meta.loginFailures,
  );
  const authn = new Authenticator(policies, tokens, limiter, audit, log, { cacheTtlMs: config.auth.credentialCacheTtl, now, passwordCost: config.auth.passwordCost });
  const sessions = new Sessions(meta.sessions, authn, policies, audit, { ttlMs: SESSION_TTL_MS });
  const access = new AccessPolicy(policies, authn, { service: config.auth.service }, sessions);
  const isAdmin = (p: Principal) => p instanceof Caller && p.policy.allows(p.identity, undefined, 'admin');
  return {
    access,
    services: { store, policies, authn, tokens, sessions, isAdmin },
    audit,
    passwordVerifications: () => authn.passwordVerifications,
    pullToken: pullTokens(policies, tokens),
  };
}
