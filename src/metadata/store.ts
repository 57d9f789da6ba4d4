// MetadataStore: the metadata backend over one Kysely database — one store per concern, the unit of work
// across them, migrations and health. The same class serves SQLite (sqlite.ts) and PostgreSQL: only how
// the Kysely instance is made differs.
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import type { Dialect } from './migrations.js';
import { applyMigrations, ensureSchema, schemaState, type SchemaState } from './schema-version.js';
import { inTransaction } from './database.js';
import type { Tx } from './transaction.js';
import type { Metadata } from './metadata.js';
import { RegistryStore } from './registry-store.js';
import { FsckStore } from './fsck-store.js';
import { DeliveryStore } from './delivery-store.js';
import { ApprovalStore } from './approval-store.js';
import { RetentionStore } from './retention-store.js';
import { GcStore } from './gc-store.js';
import { AuthStore } from './auth-store.js';
import { SessionStore } from './session-store.js';
import { WebhookStore } from './webhook-store.js';
import { DeploymentStore } from './deployment-store.js';
import { AppFileStore } from './app-file-store.js';
import { DeployTargetStore } from './deploy-target-store.js';
import { AuditStore } from './audit-store.js';
import { BrowseStore } from './browse-store.js';
import { SignerStore } from './signer-store.js';
import { SigningKeyStore } from './signing-key-store.js';
import { LeaseStore } from './lease-store.js';
import { LoginFailureStore } from './login-failure-store.js';
import type { RoundTrips } from './round-trips.js';

export class MetadataStore implements Metadata {
  readonly registry: RegistryStore;
  readonly fsck: FsckStore;
  readonly delivery: DeliveryStore;
  readonly approvals: ApprovalStore;
  readonly retention: RetentionStore;
  readonly gc: GcStore;
  readonly auth: AuthStore;
  readonly sessions: SessionStore;
  readonly webhooks: WebhookStore;
  readonly deployments: DeploymentStore;
  readonly appFiles: AppFileStore;
  readonly deployTargets: DeployTargetStore;
  readonly audit: AuditStore;
  readonly browse: BrowseStore;
  readonly signers: SignerStore;
  readonly signingKeys: SigningKeyStore;
  readonly leases: LeaseStore;
  readonly loginFailures: LoginFailureStore;

  constructor(
    private readonly db: Kysely<Database>,
    readonly dialect: Dialect,
    /**
     * A value that changes whenever anything in the database may have changed, through this connection or any
     * other process's (SQLite: total_changes() and data_version). Without one, the registry caches nothing.
     */
    changeStamp?: () => string,
    /** the statements sent to the database, counted by the backend's driver */
    readonly roundTrips?: RoundTrips,
  ) {
    this.registry = new RegistryStore(db, changeStamp);
    this.fsck = new FsckStore(db);
    this.delivery = new DeliveryStore(db);
    this.approvals = new ApprovalStore(db);
    this.retention = new RetentionStore(db);
    this.gc = new GcStore(db);
    this.auth = new AuthStore(db);
    this.sessions = new SessionStore(db);
    this.webhooks = new WebhookStore(db, dialect);
    this.deployments = new DeploymentStore(db);
    this.appFiles = new AppFileStore(db);
    this.deployTargets = new DeployTargetStore(db);
    this.audit = new AuditStore(db);
    this.browse = new BrowseStore(db);
    this.signers = new SignerStore(db);
    this.signingKeys = new SigningKeyStore(db);
    this.leases = new LeaseStore(db);
    this.loginFailures = new LoginFailureStore(db);
  }

  transaction<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    return inTransaction(this.db, work);
  }

  /** Which migrations the database has and lacks (`wharf migrate --status`). */
  schemaState(): Promise<SchemaState> {
    return schemaState(this.db, this.dialect);
  }

  /** Refuses a newer schema; applies missing migrations when `apply`, else refuses them too (schema-version.ts). */
  ensureSchema(database: string, apply: boolean): Promise<void> {
    return ensureSchema(this.db, this.dialect, database, apply);
  }

  /** Applies every missing migration; returns their names. */
  applyMigrations(database: string): Promise<string[]> {
    return applyMigrations(this.db, this.dialect, database);
  }

  /** Whether the database records no blob at all (openWharf refuses it beside a blob store that holds some). */
  async recordsNoBlobs(): Promise<boolean> {
    return (await this.db.selectFrom('blobs').select('digest').limit(1).executeTakeFirst()) === undefined;
  }

  /** Throws unless the database answers a query (/readyz). */
  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
