// The running hub: every service the composition root (wharf.ts, openWharf) builds, as server/ and cli/ are
// handed it. A type only, so that the HTTP layer depends on the services and not on how they are built.
import type { Config } from './config.js';
import type { BlobStore } from './storage/blob-store.js';
import type { Metadata } from './metadata/metadata.js';
import type { Registry } from './registry/registry.js';
import type { Webhooks } from './webhooks/service.js';
import type { Delivery } from './delivery/releases.js';
import type { TagHistory } from './delivery/tags.js';
import type { TrustedSigners } from './attest/signers.js';
import type { Attestations } from './attest/attestations.js';
import type { Retention } from './delivery/retention.js';
import type { GarbageCollector } from './delivery/gc.js';
import type { DeployService } from './deploy/service.js';
import type { ReleaseWorkflow } from './deploy/release-workflow.js';
import type { DeployTargets } from './deploy/targets.js';
import type { ManagedSecrets } from './deploy/secrets.js';
import type { Approvals } from './delivery/approvals.js';
import type { AuditLog } from './audit/audit-log.js';
import type { Auth } from './auth/access-control.js';

export interface Wharf {
  config: Config;
  blobs: BlobStore;
  meta: Metadata;
  registry: Registry;
  webhooks: Webhooks;
  delivery: Delivery;
  tagHistory: TagHistory;
  /** public keys a global admin trusts to sign attestations (and the config file's) */
  signers: TrustedSigners;
  attestations: Attestations;
  retention: Retention;
  gc: GarbageCollector;
  deploy: DeployService;
  /** release / promote / rollback → optional deploy → settle (current, abandoned, reverted): the one way releases ship */
  releases: ReleaseWorkflow;
  /** deploy targets registered by global admins (and the config file) */
  targets: DeployTargets;
  /** secrets of app environments, sealed at rest */
  secrets: ManagedSecrets;
  /** second-person approval of releases (`requiresApproval`) */
  approvals: Approvals;
  /** the access decision and, with authentication on, the services behind it */
  auth: Auth;
  /** who changed what, from where: the append-only audit log */
  audit: AuditLog;
  close(): Promise<void>;
}
