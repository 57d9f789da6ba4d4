// The access policy as data: who exists, which tokens are live, who is in which group, and which grants
// (from the database and the config file) allow what on which repository globs. Pure: decisions only.
import { matchesGlob } from '../oci/pattern.js';
import type { Action } from '../server/access.js';
import { covers } from './actions.js';
import type { Membership, SubjectKind, TokenRow, UserRow } from './auth-store.js';

export type Identity = { kind: 'anonymous' } | { kind: 'user'; name: string } | { kind: 'token'; id: string; name: string };

export const ANONYMOUS: Identity = { kind: 'anonymous' };

export interface PolicyGrant {
  subjectKind: SubjectKind;
  subject: string;
  pattern: string;
  action: string;
}

export interface PolicyData {
  users: UserRow[];
  /** tokens not revoked (expired ones are refused by time) */
  tokens: TokenRow[];
  memberships: Membership[];
  grants: PolicyGrant[];
  /** repository globs anyone may pull without credentials */
  anonymousPull: string[];
}

export class Policy {
  readonly users = new Map<string, UserRow>();
  readonly tokens = new Map<string, TokenRow>();
  private readonly groupsOf = new Map<string, string[]>();
  private readonly grantsOf = new Map<string, { pattern: string; action: string }[]>();
  private readonly anonymousPull: string[];

  constructor(data: PolicyData) {
    for (const u of data.users) this.users.set(u.name, u);
    for (const t of data.tokens) this.tokens.set(t.id, t);
    for (const m of data.memberships) this.groupsOf.set(m.user, [...(this.groupsOf.get(m.user) ?? []), m.group]);
    for (const g of data.grants) {
      const key = `${g.subjectKind}:${g.subject}`;
      this.grantsOf.set(key, [...(this.grantsOf.get(key) ?? []), { pattern: g.pattern, action: g.action }]);
    }
    this.anonymousPull = data.anonymousPull;
  }

  /** Whether the identity still stands: the user exists, the token is neither revoked nor expired. */
  isCurrent(identity: Identity, now = Date.now()): boolean {
    if (identity.kind === 'user') return this.users.has(identity.name);
    if (identity.kind === 'token') {
      const t = this.tokens.get(identity.id);
      return t !== undefined && (t.expiresAt === null || t.expiresAt > now);
    }
    return true;
  }

  /**
   * Whether the identity may do `action` on `repository`, or registry-wide when repository is undefined
   * (which only a grant on `*` or the admin role gives). Anonymous callers may only ever pull.
   */
  allows(identity: Identity, repository: string | undefined, action: Action, environment?: string): boolean {
    if (identity.kind === 'anonymous') {
      return action === 'pull' && repository !== undefined && this.anonymousPull.some((p) => matchesGlob(p, repository));
    }
    if (!this.isCurrent(identity)) return false;
    if (identity.kind === 'user' && this.users.get(identity.name)!.role === 'admin') return true;
    const subjects = identity.kind === 'user' ? [`user:${identity.name}`, ...(this.groupsOf.get(identity.name) ?? []).map((g) => `group:${g}`)] : [`token:${identity.id}`];
    for (const subject of subjects) {
      for (const g of this.grantsOf.get(subject) ?? []) {
        if (!covers(g.action, action, environment)) continue;
        if (repository === undefined ? g.pattern === '*' : matchesGlob(g.pattern, repository)) return true;
      }
    }
    return false;
  }
}
