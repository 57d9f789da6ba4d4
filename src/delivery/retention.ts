// Retention: applies the policies (config file and management API) to every repository, deleting the tags
// and untagged manifests they let go — never a protected release, nor what a kept manifest reaches.
import { RegistryError } from '../oci/errors.js';
import type { DeliveryMetadata, RetentionMetadata, RetentionPolicyRow } from '../metadata/metadata.js';
import type { RegistryEvents } from '../registry/registry.js';
import { formatDuration, planRetention, policiesFor, type RetentionPlan, type RetentionPolicy } from './retention-policy.js';

/** The actor of retention's tag deletions in the tag history. */
export const RETENTION_ACTOR = 'retention';

export interface PolicyView {
  /** null for a policy of the config file */
  id: number | null;
  source: 'config' | 'api';
  repositories: string;
  tags: string;
  keepLast?: number;
  keepWithin?: string;
  untaggedOlderThan?: string;
  createdBy?: string | null;
  createdAt?: string;
}

export interface RetentionOptions {
  /** the policies of the config file */
  policies: RetentionPolicy[];
  /** the current and this many latest releases of every environment are never deleted */
  keepReleases: number;
}

function view(p: RetentionPolicy, row?: RetentionPolicyRow): PolicyView {
  return {
    id: row ? Number(row.id) : null,
    source: row ? 'api' : 'config',
    repositories: p.repositories,
    tags: p.tags,
    ...(p.keepLast === undefined ? {} : { keepLast: p.keepLast }),
    ...(p.keepWithin === undefined ? {} : { keepWithin: formatDuration(p.keepWithin) }),
    ...(p.untaggedOlderThan === undefined ? {} : { untaggedOlderThan: formatDuration(p.untaggedOlderThan) }),
    ...(row ? { createdBy: row.created_by, createdAt: new Date(Number(row.created_at)).toISOString() } : {}),
  };
}

function fromRow(r: RetentionPolicyRow): RetentionPolicy {
  return {
    repositories: r.repositories,
    tags: r.tags,
    ...(r.keep_last === null ? {} : { keepLast: Number(r.keep_last) }),
    ...(r.keep_within === null ? {} : { keepWithin: Number(r.keep_within) }),
    ...(r.untagged_older_than === null ? {} : { untaggedOlderThan: Number(r.untagged_older_than) }),
  };
}

export class Retention {
  constructor(
    private readonly store: RetentionMetadata,
    private readonly delivery: DeliveryMetadata,
    private readonly options: RetentionOptions,
    private readonly events: RegistryEvents = {},
  ) {}

  // --- policies --------------------------------------------------------------------------------

  async policies(): Promise<PolicyView[]> {
    return [...this.options.policies.map((p) => view(p)), ...(await this.store.policies()).map((r) => view(fromRow(r), r))];
  }

  async addPolicy(p: RetentionPolicy, actor: string | null): Promise<PolicyView> {
    const row = await this.store.addPolicy(p, actor);
    return view(fromRow(row), row);
  }

  async removePolicy(id: number): Promise<void> {
    if (!(await this.store.deletePolicy(id))) throw new RegistryError('NOT_FOUND', `retention policy ${id} does not exist (policies of the config file are changed there)`);
  }

  // --- runs ------------------------------------------------------------------------------------

  /** What the policies let go at `now`, in every repository. Nothing is changed. */
  async plan(now: number = Date.now()): Promise<RetentionPlan> {
    const policies = [...this.options.policies, ...(await this.store.policies()).map(fromRow)];
    const plan: RetentionPlan = { tags: [], manifests: [] };
    if (policies.length === 0) return plan;
    const protectedDigests = new Map<string, Set<string>>();
    for (const p of await this.delivery.protectedDigests(this.options.keepReleases)) {
      protectedDigests.set(p.repository, (protectedDigests.get(p.repository) ?? new Set()).add(p.digest));
    }
    for (const repo of await this.store.repositories()) {
      const applicable = policiesFor(policies, repo.name);
      if (applicable.length === 0) continue;
      const state = {
        repository: repo.name,
        tags: await this.store.tags(repo.id),
        manifests: await this.store.manifests(repo.id),
        protectedDigests: protectedDigests.get(repo.name) ?? new Set<string>(),
        reservedTags: new Set((await this.delivery.environments(repo.name)).map((e) => e.name)),
      };
      const p = planRetention(state, applicable, now);
      plan.tags.push(...p.tags);
      plan.manifests.push(...p.manifests);
    }
    return plan;
  }

  /**
   * Deletes what `plan` lists, tags first. Each deletion re-checks in its transaction what the plan assumed
   * (the tag still points where it did; the manifest is still untagged and unreferenced), so whatever was
   * pushed or released since wins. Returns what was deleted.
   */
  async apply(plan: RetentionPlan): Promise<RetentionPlan> {
    const ids = new Map((await this.store.repositories()).map((r) => [r.name, r.id]));
    const done: RetentionPlan = { tags: [], manifests: [] };
    for (const t of plan.tags) {
      const id = ids.get(t.repository);
      if (id === undefined || !(await this.store.deleteTagIf(id, t.tag, t.digest, RETENTION_ACTOR))) continue;
      done.tags.push(t);
      this.events.tagDeleted?.({ repository: t.repository, tag: t.tag });
    }
    for (const m of plan.manifests) {
      const id = ids.get(m.repository);
      if (id === undefined || !(await this.store.deleteUnreferencedManifest(id, m.digest))) continue;
      done.manifests.push(m);
      this.events.manifestDeleted?.({ repository: m.repository, digest: m.digest });
    }
    return done;
  }
}
