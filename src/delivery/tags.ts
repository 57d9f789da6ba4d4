// Tag history and restore: what a tag pointed to, when and by whom, and moving it back (itself recorded).
import { RegistryError } from '../oci/errors.js';
import type { RegistryMetadata, TagChange } from '../metadata/metadata.js';
import type { HistoryMatch } from '../metadata/records.js';
import type { TagRules } from './tag-rules.js';

export interface TagMove {
  repository: string;
  tag: string;
  digest: string;
  previous: string | null;
}

export class TagHistory {
  constructor(
    private readonly meta: RegistryMetadata,
    private readonly rules: TagRules,
    /** told of every move made here (webhooks' tag.moved) */
    private readonly moved?: (m: TagMove & { actor: string | null }) => void,
  ) {}

  async history(repository: string, tag?: string, page?: { before?: number; limit?: number } & HistoryMatch): Promise<TagChange[]> {
    if ((await this.meta.repositoryId(repository)) === null) throw new RegistryError('NAME_UNKNOWN', `repository ${repository} not known to registry`);
    return this.meta.tagHistory(repository, tag, page);
  }

  /**
   * Moves `tag` to `to`, or to what it pointed at time `at`. `force` (admins only, checked by the caller)
   * overrides immutability; the history row then names the override.
   */
  async restore(repository: string, tag: string, target: { to?: string; at?: number }, actor: string | null, force = false): Promise<TagMove> {
    let digest = target.to;
    if (digest === undefined) {
      if (target.at === undefined) throw new RegistryError('INVALID', 'give a digest (to) or a time (at)');
      const at = target.at;
      const change = (await this.history(repository, tag)).find((c) => c.at <= at);
      if (!change?.newDigest) throw new RegistryError('NOT_FOUND', `tag ${repository}:${tag} did not exist at ${new Date(at).toISOString()}`);
      digest = change.newDigest;
    }
    const who = force ? `${actor ?? 'anonymous'} (override)` : actor;
    const { previous } = await this.meta.moveTag(repository, tag, digest, who, force ? this.rules.reservedGuard : this.rules.guard);
    if (previous !== digest) this.moved?.({ repository, tag, digest, previous, actor: who });
    return { repository, tag, digest, previous };
  }
}
