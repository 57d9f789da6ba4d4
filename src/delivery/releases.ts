// Environments and their releases: release a tag or digest, promote the digest current in one environment
// to another, roll back to any retained release. Every operation is one append-only release row, and the
// environment's reserved tag (APP:ENV) follows its current release.
import { parseDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { isValidTag } from '../oci/reference.js';
import type { DeliveryMetadata, EnvironmentRow, EnvironmentSettings, RegistryMetadata, ReleaseMatch, ReleaseRow, UnitOfWork } from '../metadata/metadata.js';
import { requiredAttestations } from '../metadata/records.js';
import { isAttestationKind } from '../attest/statement.js';
import { isVersionTag } from './tag-rules.js';

export type ReleaseKind = 'release' | 'promote' | 'rollback';

/** The actor of what Wharf records by itself, e.g. the rollback after a failed deployment. */
export const SYSTEM_ACTOR = 'wharf';

export interface Release {
  id: number;
  app: string;
  environment: string;
  digest: string;
  tag: string | null;
  version: string | null;
  kind: ReleaseKind;
  actor: string | null;
  note: string | null;
  replaces: number | null;
  promotedFrom: number | null;
  createdAt: string;
  /** when it became current; null while its deployment is pending, or if it failed */
  currentSince: string | null;
  /** the commit and pipeline run it came from, when a pipeline released it (kept through promotion and rollback) */
  commit: string | null;
  pipelineRun: string | null;
  /** recorded in an environment with targets: it becomes current (and moves APP:ENV) when its deployment succeeds */
  pending?: boolean;
}

export interface Environment {
  /** the order environments were made in; the position their list is paged by */
  id: number;
  app: string;
  name: string;
  requiresPromotionFrom: string | null;
  protected: boolean;
  /** releases, promotions and rollbacks wait for a second person's approval (`wharf approve`) */
  requiresApproval: boolean;
  autoDeploy: boolean;
  /** attestation kinds (e.g. tests) a digest must carry, verified, to be released here */
  requires: string[];
  current: Release | null;
  /** released but not yet deployed (environments with targets) */
  pending: Release | null;
}

export interface EnvironmentOptions {
  requiresPromotionFrom?: string | null;
  protected?: boolean;
  requiresApproval?: boolean;
  autoDeploy?: boolean;
  requires?: string[];
}

/**
 * A check run before a release row is written (e.g. the attestation gate); throws to refuse. `from` is the
 * source environment of a promotion.
 */
export type ReleaseGate = (c: { app: string; environment: string; digest: string; kind: ReleaseKind; requires: string[]; from?: string }) => Promise<void>;

export interface DeliveryHooks {
  gates?: ReleaseGate[];
  /**
   * Whether the environment deploys to targets: then a release is recorded as pending, and becomes current (its
   * tag moving) only when its deployment succeeds — so that APP:ENV never names a digest that does not run.
   */
  defers?(app: string, environment: string): Promise<boolean>;
  released?(r: Release): void;
}

export interface OperationOptions {
  actor: string | null;
  note?: string | null;
}

/** Where a released digest came from, as the pipeline that built it reports. */
export interface ReleaseOrigin {
  commit?: string;
  pipelineRun?: string;
}

const ENV_NAME = /^[a-z][a-z0-9-]{0,62}$/;
const COMMIT = /^[0-9a-fA-F]{7,64}$/;

export function toRelease(app: string, r: ReleaseRow): Release {
  return {
    id: Number(r.id),
    app,
    environment: r.environment,
    digest: r.digest,
    tag: r.source_tag,
    version: r.version,
    kind: r.kind,
    actor: r.actor,
    note: r.note,
    replaces: r.replaces_id === null ? null : Number(r.replaces_id),
    promotedFrom: r.promoted_from_id === null ? null : Number(r.promoted_from_id),
    createdAt: new Date(Number(r.created_at)).toISOString(),
    currentSince: r.current_since === null ? null : new Date(Number(r.current_since)).toISOString(),
    commit: r.commit,
    pipelineRun: r.pipeline_run,
  };
}

function settings(opts: EnvironmentOptions): EnvironmentSettings {
  const requires = [...new Set(opts.requires ?? [])];
  const bad = requires.find((k) => !isAttestationKind(k));
  if (bad !== undefined) throw new RegistryError('INVALID', `invalid attestation kind ${JSON.stringify(bad)} (lowercase letters, digits and dashes)`);
  return {
    requiresPromotionFrom: opts.requiresPromotionFrom ?? null,
    protected: opts.protected ?? false,
    autoDeploy: opts.autoDeploy ?? false,
    requiresAttestations: requires,
    requiresApproval: opts.requiresApproval ?? false,
  };
}

export class Delivery {
  /** Environments with an operation in flight: a second one gets 409 rather than waiting or racing. */
  private readonly busy = new Set<string>();

  constructor(
    private readonly meta: RegistryMetadata,
    private readonly store: DeliveryMetadata,
    private readonly work: UnitOfWork,
    readonly hooks: DeliveryHooks = {},
  ) {}

  // --- environments ----------------------------------------------------------------------------

  async createEnvironment(app: string, name: string, opts: EnvironmentOptions = {}): Promise<Environment> {
    if (!ENV_NAME.test(name)) throw new RegistryError('INVALID', `invalid environment name ${JSON.stringify(name)} (lowercase letters, digits and dashes)`);
    const repoId = await this.meta.repositoryId(app);
    if (repoId === null) throw new RegistryError('NAME_UNKNOWN', `application ${app} has no repository yet: push an image first`);
    if (opts.requiresPromotionFrom && !(await this.store.environment(app, opts.requiresPromotionFrom))) {
      throw new RegistryError('NOT_FOUND', `environment ${app}/${opts.requiresPromotionFrom} does not exist`);
    }
    if (await this.store.environment(app, name)) throw new RegistryError('CONFLICT', `environment ${app}/${name} already exists`);
    if (await this.meta.tagDigest(app, name)) {
      throw new RegistryError('CONFLICT', `tag ${app}:${name} already exists; an environment's name is reserved as its tag — delete the tag or choose another name`);
    }
    const row = await this.store.createEnvironment(repoId, name, settings(opts));
    return this.toEnvironment(app, row);
  }

  /** Creates or updates (used by `wharf apply`). */
  async ensureEnvironment(app: string, name: string, opts: EnvironmentOptions): Promise<Environment> {
    const row = await this.store.environment(app, name);
    if (!row) return this.createEnvironment(app, name, opts);
    await this.store.updateEnvironment(Number(row.id), settings(opts));
    return this.environment(app, name);
  }

  /** In the order they were made; `after` (an environment id) and `limit` page them by keyset. */
  async environments(app: string, page?: { after?: number; limit?: number }): Promise<Environment[]> {
    return Promise.all((await this.store.environments(app, page)).map((e) => this.toEnvironment(app, e)));
  }

  async environment(app: string, name: string): Promise<Environment> {
    return this.toEnvironment(app, await this.requireEnvironment(app, name));
  }

  private async requireEnvironment(app: string, name: string): Promise<EnvironmentRow> {
    const row = await this.store.environment(app, name);
    if (!row) throw new RegistryError('NOT_FOUND', `environment ${app}/${name} does not exist`);
    return row;
  }

  private async toEnvironment(app: string, e: EnvironmentRow): Promise<Environment> {
    const current = e.current_release_id === null ? undefined : await this.store.release(Number(e.current_release_id));
    const pending = e.pending_release_id === null ? undefined : await this.store.release(Number(e.pending_release_id));
    return {
      id: Number(e.id),
      app,
      name: e.name,
      requiresPromotionFrom: e.requires_promotion_from,
      protected: e.protected === 1,
      requiresApproval: e.requires_approval === 1,
      autoDeploy: e.auto_deploy === 1,
      requires: requiredAttestations(e),
      current: current ? toRelease(app, current) : null,
      pending: pending ? { ...toRelease(app, pending), pending: true } : null,
    };
  }

  /** Whether releases to the environment wait for a second person's approval. */
  async requiresApproval(app: string, name: string): Promise<boolean> {
    return (await this.store.environment(app, name))?.requires_approval === 1;
  }

  /** Whether changes to the environment need an explicit `release:ENV` grant (false if it does not exist: the operation then says so). */
  async isProtected(app: string, name: string): Promise<boolean> {
    return (await this.store.environment(app, name))?.protected === 1;
  }

  // --- operations ------------------------------------------------------------------------------

  /** Runs `fn` holding the environment's operation lock; deploys take the same lock. */
  async exclusive<T>(app: string, environment: string, fn: () => Promise<T>): Promise<T> {
    const key = `${app}\u0000${environment}`;
    if (this.busy.has(key)) throw new RegistryError('CONFLICT', `another release or deploy of ${app}/${environment} is in progress`);
    this.busy.add(key);
    try {
      return await fn();
    } finally {
      this.busy.delete(key);
    }
  }

  /** Releases a tag (resolved to its digest now, once) or a digest to an environment. */
  async release(app: string, environment: string, ref: string, opts: OperationOptions & ReleaseOrigin): Promise<Release> {
    return this.exclusive(app, environment, async () => {
      const env = await this.requireEnvironment(app, environment);
      if (env.requires_promotion_from) {
        throw new RegistryError('DENIED', `${app}/${environment} only accepts promotions from ${env.requires_promotion_from}: use promote`);
      }
      let digest: string;
      let tag: string | null = null;
      if (parseDigest(ref)) {
        digest = ref;
        await this.requireManifest(app, digest);
      } else if (isValidTag(ref)) {
        const d = await this.meta.tagDigest(app, ref);
        if (!d) throw new RegistryError('MANIFEST_UNKNOWN', `tag ${app}:${ref} does not exist`);
        digest = d;
        tag = ref;
      } else {
        throw new RegistryError('TAG_INVALID', `${JSON.stringify(ref)} is neither a tag nor a digest`);
      }
      const version = tag !== null && isVersionTag(tag) ? tag : await this.versionOf(app, digest);
      return this.record(app, env, { digest, tag, version, kind: 'release', promotedFrom: null, commit: opts.commit ?? null, pipelineRun: opts.pipelineRun ?? null }, opts);
    });
  }

  /** Releases to `to` exactly the digest that is current in `from`; the tag is never re-resolved. */
  async promote(app: string, from: string, to: string, opts: OperationOptions): Promise<Release> {
    return this.exclusive(app, to, async () => {
      const source = await this.requireEnvironment(app, from);
      const target = await this.requireEnvironment(app, to);
      if (target.requires_promotion_from && target.requires_promotion_from !== from) {
        throw new RegistryError('DENIED', `${app}/${to} only accepts promotions from ${target.requires_promotion_from}, not ${from}`);
      }
      if (source.current_release_id === null) throw new RegistryError('NOT_FOUND', `${app}/${from} has no release to promote`);
      const current = (await this.store.release(Number(source.current_release_id)))!;
      return this.record(
        app,
        target,
        { digest: current.digest, tag: current.source_tag, version: current.version, kind: 'promote', promotedFrom: Number(current.id), from, commit: current.commit, pipelineRun: current.pipeline_run },
        opts,
      );
    });
  }

  /**
   * Rolls an environment back. `to` names a release id, a version or a digest released there before;
   * without it, the newest earlier release that is neither the current digest nor one already rolled back.
   */
  async rollback(app: string, environment: string, opts: OperationOptions & { to?: string }): Promise<Release> {
    return this.exclusive(app, environment, async () => {
      const env = await this.requireEnvironment(app, environment);
      if (env.current_release_id === null) throw new RegistryError('NOT_FOUND', `${app}/${environment} has no release to roll back`);
      const history = await this.store.releases(app, environment);
      const current = history.find((r) => Number(r.id) === Number(env.current_release_id))!;
      let target: ReleaseRow | undefined;
      if (opts.to !== undefined) {
        const to = opts.to;
        target = /^\d+$/.test(to)
          ? history.find((r) => Number(r.id) === Number(to))
          : parseDigest(to)
            ? history.find((r) => r.digest === to)
            : history.find((r) => r.version === to || r.source_tag === to);
        // A commit (7 or more hex digits, a prefix is enough): the newest release of it that ran here.
        if (!target && COMMIT.test(to)) target = history.find((r) => r.commit !== null && r.commit.startsWith(to.toLowerCase()) && r.current_since !== null);
        if (!target) throw new RegistryError('NOT_FOUND', `no release ${to} in the history of ${app}/${environment}`);
      } else {
        const rolledBack = new Set(history.filter((r) => r.kind === 'rollback' && r.replaces_id !== null).map((r) => Number(r.replaces_id)));
        // Only releases that ran: one whose deployment never succeeded is no state to go back to.
        target = history.find((r) => r.current_since !== null && Number(r.id) !== Number(current.id) && r.digest !== current.digest && !rolledBack.has(Number(r.id)));
        if (!target) throw new RegistryError('NOT_FOUND', `${app}/${environment} has no earlier release to roll back to`);
      }
      await this.requireManifest(app, target.digest);
      return this.record(app, env, { digest: target.digest, tag: target.source_tag, version: target.version, kind: 'rollback', promotedFrom: null, commit: target.commit, pipelineRun: target.pipeline_run }, opts);
    });
  }

  /**
   * After a deployment of release `failed` was rolled back on the hosts to release `to`: records a rollback to
   * `to` by the system, so that the environment's current release (and its tag) name what runs again. Only while
   * `failed` is still current — a release made since is never overwritten; then nothing is recorded, and the
   * answer says why. No gates: this records what already runs, it lets nothing new run.
   */
  async revertFailedDeployment(app: string, environment: string, r: { failed: number; to: number; note: string }): Promise<{ release: Release } | { skipped: string }> {
    return this.exclusive(app, environment, async () => {
      const env = await this.requireEnvironment(app, environment);
      const current = env.current_release_id === null ? null : Number(env.current_release_id);
      if (current !== r.failed) {
        return { skipped: `${app}/${environment} is on release #${current} now, not the failed #${r.failed}: left as it is` };
      }
      const target = await this.store.release(r.to);
      if (!target || Number(target.environment_id) !== Number(env.id)) throw new RegistryError('NOT_FOUND', `release ${r.to} is not in the history of ${app}/${environment}`);
      await this.requireManifest(app, target.digest);
      const release = await this.record(
        app,
        env,
        { digest: target.digest, tag: target.source_tag, version: target.version, kind: 'rollback', promotedFrom: null, commit: target.commit, pipelineRun: target.pipeline_run },
        { actor: SYSTEM_ACTOR, note: r.note },
        false,
      );
      return { release };
    });
  }

  async releases(app: string, environment?: string, limit?: number, before?: number, match?: ReleaseMatch): Promise<Release[]> {
    if (environment !== undefined) await this.requireEnvironment(app, environment);
    return (await this.store.releases(app, environment, limit, before, match)).map((r) => toRelease(app, r));
  }

  private async requireManifest(app: string, digest: string): Promise<void> {
    if ((await this.meta.manifestsOf(app, [digest])).size === 0) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${digest} unknown to ${app}`);
  }

  /** A version label for a digest released by digest: a version-looking tag pointing at it, if any. */
  private async versionOf(app: string, digest: string): Promise<string | null> {
    return (await this.meta.tagsOf(app, digest)).filter(isVersionTag).pop() ?? null;
  }

  private async record(
    app: string,
    env: EnvironmentRow,
    r: { digest: string; tag: string | null; version: string | null; kind: ReleaseKind; promotedFrom: number | null; from?: string; commit?: string | null; pipelineRun?: string | null },
    opts: OperationOptions,
    gated = true,
  ): Promise<Release> {
    const requires = requiredAttestations(env);
    if (gated) {
      for (const gate of this.hooks.gates ?? []) await gate({ app, environment: env.name, digest: r.digest, kind: r.kind, requires, from: r.from });
    }
    const expected = env.current_release_id === null ? null : Number(env.current_release_id);
    const deferred = gated && (await this.hooks.defers?.(app, env.name)) === true;
    const release = await this.work.transaction(async (tx) => {
      const id = await this.store.insertRelease(
        {
          repositoryId: Number(env.repository_id),
          environmentId: Number(env.id),
          digest: r.digest,
          sourceTag: r.tag,
          version: r.version,
          kind: r.kind,
          actor: opts.actor,
          note: opts.note ?? null,
          replacesId: expected,
          promotedFromId: r.promotedFrom,
          commit: r.commit ?? null,
          pipelineRun: r.pipelineRun ?? null,
        },
        tx,
      );
      if (deferred) {
        await this.store.setPending(Number(env.id), id, tx);
        return (await this.store.release(id, tx))!;
      }
      if (!(await this.store.setCurrent(Number(env.id), expected, id, tx))) {
        throw new RegistryError('CONFLICT', `${app}/${env.name} changed while releasing; retry`);
      }
      await this.meta.moveTag(app, env.name, r.digest, opts.actor, undefined, tx);
      return (await this.store.release(id, tx))!;
    });
    const out = deferred ? { ...toRelease(app, release), pending: true } : toRelease(app, release);
    this.hooks.released?.(out);
    return out;
  }

  /**
   * The deployment of release `id` succeeded: it becomes the environment's current release and APP:ENV moves to
   * its digest. Not under the operation lock (a release recorded meanwhile must not make this fail): the
   * compare-and-set retries against whatever is current.
   */
  async deployed(app: string, environment: string, id: number, actor: string | null): Promise<Release> {
    for (let attempt = 0; ; attempt++) {
      const env = await this.requireEnvironment(app, environment);
      const expected = env.current_release_id === null ? null : Number(env.current_release_id);
      const row = await this.work.transaction(async (tx) => {
        if (expected !== id && !(await this.store.setCurrent(Number(env.id), expected, id, tx))) return undefined;
        const rel = (await this.store.release(id, tx))!;
        await this.meta.moveTag(app, env.name, rel.digest, actor, undefined, tx);
        return rel;
      });
      if (row) return toRelease(app, row);
      if (attempt >= 3) throw new RegistryError('CONFLICT', `${app}/${environment} kept changing while recording the deployment of release ${id}`);
    }
  }

  /** The deployment of pending release `id` did not succeed: it stops being pending (it stays in the history). */
  async abandonPending(app: string, environment: string, id: number): Promise<void> {
    const env = await this.requireEnvironment(app, environment);
    await this.store.setPending(Number(env.id), null, undefined, id);
  }
}
