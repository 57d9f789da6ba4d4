// Schema migrations, written once for both SQLite and PostgreSQL through Kysely's schema builder.
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

export type Dialect = 'sqlite' | 'postgres';

function migrations(dialect: Dialect): Record<string, Migration> {
  const bytes = dialect === 'postgres' ? sql`bytea` : sql`blob`;
  const serial = dialect === 'postgres' ? 'serial' : 'integer';
  return {
    '0001_registry': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('repositories')
          .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('blobs')
          .addColumn('digest', 'text', (c) => c.primaryKey())
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('repository_blobs')
          .addColumn('repository_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('repository_blobs_pk', ['repository_id', 'digest'])
          .execute();
        await db.schema.createIndex('repository_blobs_digest').on('repository_blobs').column('digest').execute();
        await db.schema
          .createTable('manifests')
          .addColumn('repository_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('media_type', 'text', (c) => c.notNull())
          .addColumn('artifact_type', 'text')
          .addColumn('subject_digest', 'text')
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('body', bytes, (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('manifests_pk', ['repository_id', 'digest'])
          .execute();
        await db.schema.createIndex('manifests_subject').on('manifests').columns(['repository_id', 'subject_digest']).execute();
        await db.schema
          .createTable('manifest_references')
          .addColumn('repository_id', 'integer', (c) => c.notNull())
          .addColumn('manifest_digest', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('target_digest', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('manifest_references_pk', ['repository_id', 'manifest_digest', 'kind', 'target_digest'])
          .execute();
        await db.schema.createIndex('manifest_references_target').on('manifest_references').columns(['target_digest']).execute();
        await db.schema
          .createTable('tags')
          .addColumn('repository_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('tags_pk', ['repository_id', 'name'])
          .execute();
        await db.schema.createIndex('tags_digest').on('tags').columns(['repository_id', 'digest']).execute();
        await db.schema
          .createTable('tag_history')
          .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('repository_id', 'integer', (c) => c.notNull())
          .addColumn('tag', 'text', (c) => c.notNull())
          .addColumn('old_digest', 'text')
          .addColumn('new_digest', 'text')
          .addColumn('actor', 'text')
          .addColumn('at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('tag_history_tag').on('tag_history').columns(['repository_id', 'tag', 'id']).execute();
      },
    },
    '0002_auth': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('users')
          .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('password_hash', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('group_members')
          .addColumn('group_name', 'text', (c) => c.notNull())
          .addColumn('user_name', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('group_members_pk', ['group_name', 'user_name'])
          .execute();
        await db.schema
          .createTable('robot_tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('secret_hash', 'text', (c) => c.notNull())
          .addColumn('scope', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint')
          .addColumn('revoked_at', 'bigint')
          .execute();
        await db.schema.createIndex('robot_tokens_name').on('robot_tokens').column('name').execute();
        await db.schema
          .createTable('grants')
          .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('subject_kind', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('pattern', 'text', (c) => c.notNull())
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addUniqueConstraint('grants_unique', ['subject_kind', 'subject', 'pattern', 'action'])
          .execute();
        await db.schema
          .createTable('audit_log')
          .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('actor_kind', 'text', (c) => c.notNull())
          .addColumn('address', 'text')
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('repository', 'text')
          .addColumn('target', 'text')
          .addColumn('result', 'text', (c) => c.notNull())
          .addColumn('detail', 'text')
          .execute();
        await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();
        await db.schema.createIndex('audit_log_repository').on('audit_log').columns(['repository', 'at']).execute();
      },
    },
    '0003_delivery': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('environments')
          .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('repository_id', 'integer', (c) => c.notNull().references('repositories.id').onDelete('cascade'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('requires_promotion_from', 'text')
          .addColumn('protected', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('auto_deploy', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('current_release_id', 'integer')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addUniqueConstraint('environments_repo_name', ['repository_id', 'name'])
          .execute();
        await db.schema
          .createTable('releases')
          .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('repository_id', 'integer', (c) => c.notNull())
          .addColumn('environment_id', 'integer', (c) => c.notNull().references('environments.id').onDelete('cascade'))
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('source_tag', 'text')
          .addColumn('version', 'text')
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('actor', 'text')
          .addColumn('note', 'text')
          .addColumn('replaces_id', 'integer')
          .addColumn('promoted_from_id', 'integer')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('releases_env').on('releases').columns(['environment_id', 'id']).execute();
        await db.schema.createIndex('releases_digest').on('releases').columns(['repository_id', 'digest']).execute();
      },
    },
    '0004_webhooks': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('webhook_subscriptions')
          .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('url', 'text', (c) => c.notNull())
          .addColumn('secret', 'text', (c) => c.notNull())
          .addColumn('events', 'text', (c) => c.notNull())
          .addColumn('repository_pattern', 'text')
          .addColumn('created_by', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('webhook_deliveries')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('subscription_id', 'integer', (c) => c.notNull().references('webhook_subscriptions.id').onDelete('cascade'))
          .addColumn('event', 'text', (c) => c.notNull())
          .addColumn('repository', 'text')
          .addColumn('body', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull())
          .addColumn('budget_from', 'integer', (c) => c.notNull())
          .addColumn('next_attempt_at', 'bigint')
          .addColumn('last_status_code', 'integer')
          .addColumn('last_error', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('completed_at', 'bigint')
          .execute();
        await db.schema.createIndex('webhook_deliveries_due').on('webhook_deliveries').columns(['status', 'next_attempt_at']).execute();
        await db.schema.createIndex('webhook_deliveries_subscription').on('webhook_deliveries').columns(['subscription_id', 'created_at']).execute();
        await db.schema
          .createTable('webhook_attempts')
          .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('delivery_id', 'text', (c) => c.notNull().references('webhook_deliveries.id').onDelete('cascade'))
          .addColumn('attempt', 'integer', (c) => c.notNull())
          .addColumn('status_code', 'integer')
          .addColumn('error', 'text')
          .addColumn('duration_ms', 'integer', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('webhook_attempts_delivery').on('webhook_attempts').columns(['delivery_id', 'attempt']).execute();
      },
    },
    '0005_deploy': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('deployments')
          .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('environment_id', 'integer', (c) => c.notNull().references('environments.id').onDelete('cascade'))
          .addColumn('release_id', 'integer')
          .addColumn('digest', 'text', (c) => c.notNull())
          .addColumn('image', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('trigger', 'text')
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('reason', 'text')
          .addColumn('actor', 'text')
          .addColumn('started_at', 'bigint', (c) => c.notNull())
          .addColumn('finished_at', 'bigint')
          .execute();
        await db.schema.createIndex('deployments_env').on('deployments').columns(['environment_id', 'id']).execute();
        // The per-environment lock: at most one unfinished deployment, enforced by the database itself.
        await db.schema
          .createIndex('deployments_one_running')
          .on('deployments')
          .column('environment_id')
          .unique()
          .where(sql.ref('finished_at'), 'is', null)
          .execute();
        await db.schema
          .createTable('deployment_steps')
          .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('deployment_id', 'integer', (c) => c.notNull().references('deployments.id').onDelete('cascade'))
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('target', 'text', (c) => c.notNull())
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('containers', 'text', (c) => c.notNull())
          .addColumn('digest', 'text')
          .addColumn('started_at', 'bigint', (c) => c.notNull())
          .addColumn('finished_at', 'bigint', (c) => c.notNull())
          .addColumn('result', 'text', (c) => c.notNull())
          .addColumn('reason', 'text')
          .execute();
        await db.schema.createIndex('deployment_steps_deployment').on('deployment_steps').columns(['deployment_id', 'seq']).execute();
      },
    },
    '0006_retention': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('retention_policies')
          .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('repositories', 'text', (c) => c.notNull())
          .addColumn('tags', 'text', (c) => c.notNull())
          .addColumn('keep_last', 'integer')
          .addColumn('keep_within', 'bigint')
          .addColumn('untagged_older_than', 'bigint')
          .addColumn('created_by', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('gc_runs')
          .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('trigger', 'text', (c) => c.notNull())
          .addColumn('actor', 'text')
          .addColumn('started_at', 'bigint', (c) => c.notNull())
          .addColumn('finished_at', 'bigint', (c) => c.notNull())
          .addColumn('tags_deleted', 'integer', (c) => c.notNull())
          .addColumn('manifests_deleted', 'integer', (c) => c.notNull())
          .addColumn('links_dropped', 'integer', (c) => c.notNull())
          .addColumn('blobs_deleted', 'integer', (c) => c.notNull())
          .addColumn('bytes_reclaimed', 'bigint', (c) => c.notNull())
          .addColumn('error', 'text')
          .execute();
        // GC asks "does any manifest of this repository reference this blob?" per link: without it, SQLite
        // scans the repository's references through the primary key for every link (10,000 links: seconds).
        await db.schema.createIndex('manifest_references_target_repository').on('manifest_references').columns(['target_digest', 'repository_id', 'kind']).execute();
      },
    },
    '0007_attestation_requirements': {
      async up(db: Kysely<any>) {
        // JSON array of attestation kinds a release to the environment must carry; null: none
        await db.schema.alterTable('environments').addColumn('requires_attestations', 'text').execute();
      },
    },
    '0008_app_files': {
      async up(db: Kysely<any>) {
        // The applied wharf.yaml of each application, as written (so `wharf get` gives back what was applied).
        await db.schema
          .createTable('app_files')
          .addColumn('repository_id', 'integer', (c) => c.primaryKey().references('repositories.id').onDelete('cascade'))
          .addColumn('body', 'text', (c) => c.notNull())
          .addColumn('actor', 'text')
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0009_deployments_by_release': {
      async up(db: Kysely<any>) {
        // Release listings show each release's newest deployment.
        await db.schema.createIndex('deployments_release').on('deployments').columns(['release_id', 'id']).execute();
      },
    },
    '0010_deploy_targets_and_secrets': {
      async up(db: Kysely<any>) {
        // Docker engines a global admin registered, the apps (patterns) that may deploy to each and the privileged
        // container options they may use there; app files name these, never an endpoint.
        await db.schema
          .createTable('deploy_targets')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('endpoint', 'text', (c) => c.notNull())
          // JSON {ca, cert, key}: paths of client certificate files on the Wharf server
          .addColumn('tls', 'text')
          .addColumn('identity_file', 'text')
          // JSON arrays
          .addColumn('apps', 'text', (c) => c.notNull())
          .addColumn('allow', 'text', (c) => c.notNull())
          .addColumn('source', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        // Secrets of an app's environment, encrypted (AES-256-GCM) with a key kept outside the database.
        await db.schema
          .createTable('app_secrets')
          .addColumn('app', 'text', (c) => c.notNull())
          .addColumn('environment', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('sealed', 'text', (c) => c.notNull())
          .addColumn('updated_by', 'text')
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('app_secrets_pk', ['app', 'environment', 'name'])
          .execute();
      },
    },
    '0011_approvals': {
      async up(db: Kysely<any>) {
        await db.schema.alterTable('environments').addColumn('requires_approval', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        await db.schema
          .createTable('approval_requests')
          .addColumn('id', serial, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('environment_id', 'integer', (c) => c.notNull().references('environments.id').onDelete('cascade'))
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('ref', 'text')
          .addColumn('from_environment', 'text')
          .addColumn('note', 'text')
          .addColumn('deploy', 'integer')
          .addColumn('requested_by', 'text')
          .addColumn('requested_at', 'bigint', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('approved_by', 'text')
          .addColumn('approved_at', 'bigint')
          .addColumn('release_id', 'integer', (c) => c.references('releases.id').onDelete('set null'))
          .execute();
        await db.schema.createIndex('approval_requests_env').on('approval_requests').columns(['environment_id', 'status']).execute();
      },
    },
    '0012_pending_releases': {
      async up(db: Kysely<any>) {
        await db.schema.alterTable('environments').addColumn('pending_release_id', 'integer').execute();
        await db.schema.alterTable('releases').addColumn('current_since', 'bigint').execute();
        await db.schema.alterTable('releases').addColumn('commit', 'text').execute();
        await db.schema.alterTable('releases').addColumn('pipeline_run', 'text').execute();
        // Until now every release became current when it was recorded.
        await db.updateTable('releases').set((eb: any) => ({ current_since: eb.ref('created_at') })).execute();
      },
    },
    '0013_user_token_generation': {
      async up(db: Kysely<any>) {
        // Every access and refresh token of a user carries the user's generation; a password change (or
        // `Accounts.endSessions`) moves it on, which ends every token issued before. 0: users from before.
        await db.schema.alterTable('users').addColumn('token_generation', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
      },
    },
    '0014_blob_location': {
      async up(db: Kysely<any>) {
        // The object that holds a blob's bytes in a store that names objects by upload, not by digest (S3: the
        // upload's object becomes the blob, with no copy); null for the filesystem store's content-addressed files.
        await db.schema.alterTable('blobs').addColumn('location', 'text').execute();
      },
    },
    '0015_browser_sessions_and_tag_pages': {
      async up(db: Kysely<any>) {
        // Signed-in browsers: only a hash of the cookie's id is kept, so a copy of the database signs nobody in.
        await db.schema
          .createTable('browser_sessions')
          .addColumn('id_hash', 'text', (c) => c.primaryKey())
          .addColumn('user_name', 'text', (c) => c.notNull())
          .addColumn('binding', 'text', (c) => c.notNull())
          .addColumn('address', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('browser_sessions_user').on('browser_sessions').columns(['user_name']).execute();
        await db.schema.createIndex('browser_sessions_expiry').on('browser_sessions').columns(['expires_at']).execute();
        // The UI lists a repository's tags newest push first, a page at a time.
        await db.schema.createIndex('tags_pushed').on('tags').columns(['repository_id', 'updated_at', 'name']).execute();
      },
    },
    '0016_attestation_signers': {
      async up(db: Kysely<any>) {
        // Public keys a global admin trusts to sign attestations, each for some apps, kinds and environments;
        // revoked rows stay, so a verification can name the key that signed and say it was revoked.
        await db.schema
          .createTable('attestation_signers')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('keyid', 'text', (c) => c.notNull().unique())
          .addColumn('algorithm', 'text', (c) => c.notNull())
          .addColumn('public_key', 'text', (c) => c.notNull())
          .addColumn('apps', 'text', (c) => c.notNull())
          .addColumn('kinds', 'text', (c) => c.notNull())
          .addColumn('environments', 'text', (c) => c.notNull())
          .addColumn('source', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('revoked_at', 'bigint')
          .addColumn('revoked_by', 'text')
          .execute();
      },
    },
    '0017_change_notifications': {
      async up(db: Kysely<any>) {
        // PostgreSQL only: every transaction that changes what the read caches hold (manifest by tag, tag lists:
        // metadata/store.ts) notifies every listening instance when it commits (metadata/postgres-changes.ts);
        // PostgreSQL folds a transaction's identical notifications into one. SQLite's data_version does the same.
        // A new cache over other tables adds them here, in a new migration.
        if (dialect !== 'postgres') return;
        await sql`create function wharf_notify_change() returns trigger language plpgsql as $$
          begin perform pg_notify('wharf_changes', ''); return null; end $$`.execute(db);
        for (const table of ['repositories', 'manifests', 'tags']) {
          await sql`create trigger ${sql.id(`${table}_changed`)} after insert or update or delete or truncate on ${sql.table(table)}
            for each statement execute function wharf_notify_change()`.execute(db);
        }
      },
    },
    '0018_instance_coordination': {
      async up(db: Kysely<any>) {
        // What several instances over one database must agree on (docs/configuration.md, "Several instances").
        // The token signing keys, in order (seq): the newest unretired one signs, the others still verify the
        // tokens they signed until those expire. A key's private half is wiped once a newer key signs.
        await db.schema
          .createTable('signing_keys')
          .addColumn('kid', 'text', (c) => c.primaryKey())
          .addColumn('seq', 'integer', (c) => c.notNull().unique())
          .addColumn('algorithm', 'text', (c) => c.notNull())
          .addColumn('public_jwk', 'text', (c) => c.notNull())
          .addColumn('private_jwk', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('superseded_at', 'bigint')
          .addColumn('retired_at', 'bigint')
          .execute();
        // Work one instance at a time does (garbage collection): held until expires_at, renewed while the work
        // runs, so a holder that dies stops blocking the others when its lease runs out.
        await db.schema
          .createTable('leases')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('holder', 'text', (c) => c.notNull())
          .addColumn('acquired_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
        // Failed-login counters (auth/login-limiter.ts), shared so that a delay started on one instance holds on all.
        await db.schema
          .createTable('login_failures')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('failures', 'integer', (c) => c.notNull())
          .addColumn('last_at', 'bigint', (c) => c.notNull())
          .addColumn('until_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('login_failures_until').on('login_failures').columns(['until_at']).execute();
      },
    },
    '0019_target_proxy': {
      async up(db: Kysely<any>) {
        // The reverse proxy a global admin allows on a deploy target (JSON {image, address, ports}), for apps
        // whose app file asks for zero-downtime switches behind it; null: none.
        await db.schema.alterTable('deploy_targets').addColumn('proxy', 'text').execute();
      },
    },
    '0020_blob_change_notifications': {
      async up(db: Kysely<any>) {
        // PostgreSQL only: blob links are cached too now (every blob GET and HEAD, metadata/read-cache.ts), so
        // a blob unlinked or collected through one instance stops being served by the others within the bound.
        if (dialect !== 'postgres') return;
        for (const table of ['blobs', 'repository_blobs']) {
          await sql`create trigger ${sql.id(`${table}_changed`)} after insert or update or delete or truncate on ${sql.table(table)}
            for each statement execute function wharf_notify_change()`.execute(db);
        }
      },
    },
  };
}

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return { getMigrations: async () => migrations(dialect) };
}
