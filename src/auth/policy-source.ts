// Keeps the current Policy: reloaded from the database when older than `refreshMs`, so changes made by
// `wharf user|token|grant` in another process reach a running server within that time.
import type { AuthMetadata } from '../metadata/metadata.js';
import { Policy, type PolicyGrant } from './policy.js';

export interface PolicySourceOptions {
  /** grants from the config file, added to the database ones */
  configGrants: PolicyGrant[];
  anonymousPull: string[];
  refreshMs: number;
}

export class PolicySource {
  private policy: Policy | undefined;
  private loadedAt = 0;
  private loading: Promise<Policy> | undefined;

  constructor(
    private readonly store: AuthMetadata,
    private readonly options: PolicySourceOptions,
  ) {}

  /** The policy, reloaded first when stale (concurrent callers share one reload). */
  current(): Promise<Policy> | Policy {
    if (this.policy && Date.now() - this.loadedAt < this.options.refreshMs) return this.policy;
    return (this.loading ??= this.load().finally(() => (this.loading = undefined)));
  }

  /** Drops the loaded policy, so the next check reads the database (after a change made in-process). */
  invalidate(): void {
    this.loadedAt = 0;
  }

  private async load(): Promise<Policy> {
    const started = Date.now();
    const [users, tokens, memberships, grants] = await Promise.all([this.store.users(), this.store.tokens(false), this.store.memberships(), this.store.grants()]);
    this.policy = new Policy({
      users,
      tokens,
      memberships,
      grants: [...grants, ...this.options.configGrants],
      anonymousPull: this.options.anonymousPull,
    });
    this.loadedAt = started;
    return this.policy;
  }
}
