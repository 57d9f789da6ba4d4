// Which tag writes are allowed: version-looking tags are immutable by default (configurable per repository
// pattern), and tags named after an environment are reserved for that environment's current release.
import { RegistryError } from '../oci/errors.js';
import { matchesGlob } from '../oci/pattern.js';
import type { DeliveryMetadata, TagGuard } from '../metadata/metadata.js';

export interface ImmutableTagRule {
  /** repository glob, e.g. `team-a/*` */
  repositories: string;
  /** regular expression over the tag */
  tags: string;
  immutable: boolean;
}

/** 1.4.2, v1.4.2, 1.4.2-rc.1, 1.4.2+build.5 */
export const VERSION_TAG = '^v?\\d+\\.\\d+\\.\\d+(?:[-+][0-9A-Za-z.+-]+)?$';

export const DEFAULT_IMMUTABLE_RULES: ImmutableTagRule[] = [{ repositories: '*', tags: VERSION_TAG, immutable: true }];

export function isVersionTag(tag: string): boolean {
  return new RegExp(VERSION_TAG).test(tag);
}

export class TagRules {
  private readonly compiled: { repositories: string; tags: RegExp; immutable: boolean }[];

  constructor(
    private readonly store: DeliveryMetadata,
    rules: ImmutableTagRule[] = DEFAULT_IMMUTABLE_RULES,
  ) {
    this.compiled = rules.map((r) => ({ repositories: r.repositories, tags: new RegExp(r.tags), immutable: r.immutable }));
  }

  /** First matching rule decides. */
  isImmutable(repository: string, tag: string): boolean {
    const rule = this.compiled.find((r) => matchesGlob(r.repositories, repository) && r.tags.test(tag));
    return rule?.immutable ?? false;
  }

  /** Environment tags move only with releases; not even an admin override moves them by hand. */
  readonly reservedGuard: TagGuard = async ({ repositoryId, tag, tx }) => {
    if (await this.store.isEnvironmentTag(repositoryId, tag, tx)) {
      throw new RegistryError('DENIED', `tag ${tag} is reserved: it follows the current release of environment ${tag}`);
    }
  };

  /** The guard the registry runs on every push and delete of a tag (arrow: handed around detached). */
  readonly guard: TagGuard = async (change) => {
    await this.reservedGuard(change);
    const { repository, tag, digest, current } = change;
    if (current !== null && this.isImmutable(repository, tag)) {
      throw new RegistryError('DENIED', digest === null ? `tag ${tag} is immutable and cannot be deleted` : `tag ${tag} is immutable`);
    }
  };
}
