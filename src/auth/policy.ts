// The access policy as data: who exists, which tokens are live, who is in which group, and which grants
// (from the database and the config file) allow what on which repository globs. Pure: decisions only.
// A decision is taken on every registry request, so each subject's grants (its own and its groups') are
// gathered, with their globs compiled, once per policy and subject, not per request.
import { globToRegExp } from '../oci/pattern.js';
import type { Action } from './access.js';
import { covers } from './actions.js';
import type { Membership, SubjectKind, TokenRow, UserRow } from '../metadata/metadata.js';

/** The scope text of a personal token: it has no grants of its own and acts as its creator (see allows). */
export const PERSONAL_SCOPE = '';

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

/** A grant as decisions use it: the glob compiled. */
interface CompiledGrant {
  pattern: string;
  glob: RegExp;
  action: string;
}

export class Policy {
  readonly users = new Map<string, UserRow>();
  readonly tokens = new Map<string, TokenRow>();
  private readonly groupsOf = new Map<string, string[]>();
  private readonly grantsOf = new Map<string, { pattern: string; action: string }[]>();
  private readonly anonymousPull: RegExp[];
  /** every grant reaching a user (its own and its groups'), gathered on first use */
  private readonly userGrants = new Map<string, CompiledGrant[]>();
  private readonly tokenGrants = new Map<string, CompiledGrant[]>();

  constructor(data: PolicyData) {
    for (const u of data.users) this.users.set(u.name, u);
    for (const t of data.tokens) this.tokens.set(t.id, t);
    for (const m of data.memberships) this.groupsOf.set(m.user, [...(this.groupsOf.get(m.user) ?? []), m.group]);
    for (const g of data.grants) {
      const key = `${g.subjectKind}:${g.subject}`;
      this.grantsOf.set(key, [...(this.grantsOf.get(key) ?? []), { pattern: g.pattern, action: g.action }]);
    }
    this.anonymousPull = data.anonymousPull.map(globToRegExp);
  }

  /** The user a personal token acts as (see allows); undefined for any other identity. */
  makerOf(identity: Identity): string | undefined {
    if (identity.kind !== 'token') return undefined;
    const t = this.tokens.get(identity.id);
    return t !== undefined && t.scope === PERSONAL_SCOPE && t.createdBy !== null ? t.createdBy : undefined;
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
      return action === 'pull' && repository !== undefined && this.anonymousPull.some((glob) => glob.test(repository));
    }
    let grants: CompiledGrant[];
    if (identity.kind === 'user') {
      const user = this.users.get(identity.name);
      if (user === undefined) return false;
      if (user.role === 'admin') return true;
      grants = this.grantsOfUser(identity.name);
    } else {
      if (!this.isCurrent(identity)) return false;
      // A personal token (no scope of its own, made by `wharf login` or POST /api/v1/tokens without a scope) acts
      // as the user who made it: never more than that user may do now, and nothing once the user is removed.
      const t = this.tokens.get(identity.id);
      if (t !== undefined && t.scope === PERSONAL_SCOPE && t.createdBy !== null) return this.allows({ kind: 'user', name: t.createdBy }, repository, action, environment);
      grants = this.grantsOfToken(identity.id);
    }
    for (const g of grants) {
      if (!covers(g.action, action, environment)) continue;
      if (repository === undefined ? g.pattern === '*' : g.glob.test(repository)) return true;
    }
    return false;
  }

  /**
   * Whether a grant of exactly `action` (e.g. `release:production`) on a glob matching `repository` reaches the
   * identity — through its own or its groups' grants, never through the admin role (protected environments).
   */
  grantsExplicitly(identity: Identity, repository: string, action: string): boolean {
    let grants: CompiledGrant[];
    if (identity.kind === 'user') {
      if (!this.users.has(identity.name)) return false;
      grants = this.grantsOfUser(identity.name);
    } else if (identity.kind === 'token') {
      if (!this.isCurrent(identity)) return false;
      // A personal token acts as its maker here too (see allows).
      const t = this.tokens.get(identity.id);
      if (t !== undefined && t.scope === PERSONAL_SCOPE && t.createdBy !== null) return this.grantsExplicitly({ kind: 'user', name: t.createdBy }, repository, action);
      grants = this.grantsOfToken(identity.id);
    } else {
      return false;
    }
    return grants.some((g) => g.action === action && g.glob.test(repository));
  }

  private grantsOfUser(name: string): CompiledGrant[] {
    let grants = this.userGrants.get(name);
    if (grants === undefined) {
      const subjects = [`user:${name}`, ...(this.groupsOf.get(name) ?? []).map((g) => `group:${g}`)];
      grants = subjects.flatMap((subject) => this.compiled(subject));
      this.userGrants.set(name, grants);
    }
    return grants;
  }

  private grantsOfToken(id: string): CompiledGrant[] {
    let grants = this.tokenGrants.get(id);
    if (grants === undefined) {
      grants = this.compiled(`token:${id}`);
      this.tokenGrants.set(id, grants);
    }
    return grants;
  }

  private compiled(subject: string): CompiledGrant[] {
    return (this.grantsOf.get(subject) ?? []).map((g) => ({ ...g, glob: globToRegExp(g.pattern) }));
  }
}
