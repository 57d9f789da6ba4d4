// Account administration: users, groups, robot tokens and grants, each change validated once here and
// recorded in the audit log with the actor who made it. Used by the CLI (and any management API).
import type { Actor, AuditLog } from '../audit/audit-log.js';
import { formatScope, isRepositoryPattern, parseActionList, parseRepositoryScope } from './actions.js';
import type { AuthMetadata, Role, SubjectKind, TokenRow } from '../metadata/metadata.js';
import { DEFAULT_PASSWORD_COST, hashPassword, scryptParams } from './password.js';
import { PERSONAL_SCOPE } from './policy.js';
import { hashRobotSecret, newRobotSecret } from './robot-secret.js';

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const MIN_PASSWORD_LENGTH = 8;

export class AccountError extends Error {}

export interface UserInfo {
  name: string;
  role: Role;
  groups: string[];
  createdAt: number;
}

export interface CreatedToken {
  id: string;
  name: string;
  scope: string;
  /** ISO time, or null for a token that does not expire */
  expires: string | null;
  secret: string;
}

export interface TokenInfo {
  id: string;
  name: string;
  scope: string;
  createdAt: number;
  createdBy: string | null;
  expiresAt: number | null;
  revokedAt: number | null;
}

export interface GrantInfo {
  subject: string;
  pattern: string;
  actions: string[];
}

/** `alice` → a user, `@team-a` → a group. */
export function parseSubject(value: string): { kind: Extract<SubjectKind, 'user' | 'group'>; name: string } {
  const group = value.startsWith('@');
  const name = group ? value.slice(1) : value;
  if (!NAME.test(name)) throw new AccountError(`invalid ${group ? 'group' : 'user'} name ${JSON.stringify(name)} (lower-case letters, digits, . _ -)`);
  return { kind: group ? 'group' : 'user', name };
}

function checkName(kind: string, name: string): void {
  if (!NAME.test(name)) throw new AccountError(`invalid ${kind} name ${JSON.stringify(name)} (lower-case letters, digits, . _ -; at most 64)`);
}

function checkPassword(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) throw new AccountError(`the password must have at least ${MIN_PASSWORD_LENGTH} characters`);
}

function checkPattern(pattern: string): void {
  if (!isRepositoryPattern(pattern)) throw new AccountError(`invalid repository pattern ${JSON.stringify(pattern)} (e.g. team-a/*, myapp, *)`);
}

function actionsOf(list: string) {
  try {
    return parseActionList(list);
  } catch (e) {
    throw new AccountError((e as Error).message);
  }
}

export class Accounts {
  constructor(
    private readonly store: AuthMetadata,
    private readonly audit: AuditLog,
    private readonly actor: Actor,
    /** scrypt's cost (log2 N) for the passwords set here: config auth.passwordCost */
    private readonly passwordCost: number = DEFAULT_PASSWORD_COST,
  ) {}

  // --- users -----------------------------------------------------------------------------------

  async addUser(name: string, role: Role, password: string): Promise<void> {
    checkName('user', name);
    checkPassword(password);
    if (!(await this.store.addUser(name, role, await hashPassword(password, scryptParams(this.passwordCost))))) throw new AccountError(`user ${name} already exists`);
    await this.record('user.add', name, { role });
  }

  async setPassword(name: string, password: string): Promise<void> {
    checkPassword(password);
    if (!(await this.store.updateUser(name, { passwordHash: await hashPassword(password, scryptParams(this.passwordCost)) }))) throw new AccountError(`no user ${name}`);
    await this.record('user.passwd', name);
  }

  /**
   * Ends every access and refresh token issued to the user so far (a lost laptop, a leaked `docker login`),
   * without changing the password. Running servers refuse them within auth.policyRefresh.
   */
  async endSessions(name: string): Promise<void> {
    if (!(await this.store.bumpTokenGeneration(name))) throw new AccountError(`no user ${name}`);
    await this.record('user.sessions.end', name);
  }

  async removeUser(name: string): Promise<void> {
    if (!(await this.store.removeUser(name))) throw new AccountError(`no user ${name}`);
    await this.record('user.remove', name);
  }

  async users(): Promise<UserInfo[]> {
    const [users, memberships] = await Promise.all([this.store.users(), this.store.memberships()]);
    return users.map((u) => ({ name: u.name, role: u.role, groups: memberships.filter((m) => m.user === u.name).map((m) => m.group), createdAt: u.createdAt }));
  }

  // --- groups ----------------------------------------------------------------------------------

  async addToGroup(group: string, users: string[]): Promise<string[]> {
    checkName('group', group);
    for (const u of users) if (!(await this.store.user(u))) throw new AccountError(`no user ${u}`);
    const added = await this.store.addMembers(group, users);
    if (added.length > 0) await this.record('group.add', `@${group}`, { users: added });
    return added;
  }

  /** Removes members, or with no users the whole group (its grants too). Returns how many memberships ended. */
  async removeFromGroup(group: string, users: string[]): Promise<number> {
    const n = await this.store.removeMembers(group, users);
    await this.record('group.remove', `@${group}`, users.length > 0 ? { users } : { wholeGroup: true });
    return n;
  }

  async groups(): Promise<{ group: string; members: string[] }[]> {
    const byGroup = new Map<string, string[]>();
    for (const m of await this.store.memberships()) byGroup.set(m.group, [...(byGroup.get(m.group) ?? []), m.user]);
    return [...byGroup].map(([group, members]) => ({ group, members }));
  }

  // --- robot tokens ----------------------------------------------------------------------------

  async createToken(name: string, scopes: string[], expiresInMs?: number): Promise<CreatedToken> {
    checkName('token', name);
    if (scopes.length === 0) throw new AccountError('a token needs at least one --scope (e.g. repository:myapp/*:pull,push)');
    const parsed = scopes.map((s) => {
      try {
        return parseRepositoryScope(s);
      } catch (e) {
        throw new AccountError((e as Error).message);
      }
    });
    if ((await this.store.tokens(false)).some((t) => t.name === name)) throw new AccountError(`an active token named ${name} exists; revoke it first`);
    const { id, secret } = newRobotSecret();
    const now = Date.now();
    const scope = parsed.map(formatScope).join(' ');
    const expiresAt = expiresInMs === undefined ? null : now + expiresInMs;
    await this.store.addToken(
      { id, name, secretHash: hashRobotSecret(secret), scope, createdBy: this.actor.name, createdAt: now, expiresAt },
      parsed.flatMap((p) => p.actions.map((action) => ({ pattern: p.pattern, action }))),
    );
    await this.record('token.create', name, { scope, expiresAt });
    return { id, name, scope, expires: expiresAt === null ? null : new Date(expiresAt).toISOString(), secret };
  }

  /** A token that acts as `owner` (the user who asks for it), revocable on its own: what `wharf login` keeps. */
  async createPersonalToken(name: string, owner: string, expiresInMs?: number): Promise<CreatedToken> {
    checkName('token', name);
    if ((await this.store.tokens(false)).some((t) => t.name === name)) throw new AccountError(`an active token named ${name} exists; revoke it first`);
    const { id, secret } = newRobotSecret();
    const now = Date.now();
    const expiresAt = expiresInMs === undefined ? null : now + expiresInMs;
    await this.store.addToken({ id, name, secretHash: hashRobotSecret(secret), scope: PERSONAL_SCOPE, createdBy: owner, createdAt: now, expiresAt }, []);
    await this.record('token.create', name, { scope: `as ${owner}`, expiresAt });
    return { id, name, scope: PERSONAL_SCOPE, expires: expiresAt === null ? null : new Date(expiresAt).toISOString(), secret };
  }

  async tokens(): Promise<TokenInfo[]> {
    return (await this.store.tokens()).map((t: TokenRow) => ({
      id: t.id,
      name: t.name,
      scope: t.scope,
      createdAt: t.createdAt,
      createdBy: t.createdBy,
      expiresAt: t.expiresAt,
      revokedAt: t.revokedAt,
    }));
  }

  async revokeToken(name: string): Promise<void> {
    if ((await this.store.revokeToken(name)) === 0) throw new AccountError(`no active token named ${name}`);
    await this.record('token.revoke', name);
  }

  // --- grants ----------------------------------------------------------------------------------

  /** Grants `actions` (e.g. `pull,push` or `release:staging`) on a repository pattern to a user or @group. */
  async grant(subject: string, actions: string, pattern: string): Promise<string[]> {
    const s = parseSubject(subject);
    checkPattern(pattern);
    const list = actionsOf(actions);
    if (s.kind === 'user' && !(await this.store.user(s.name))) throw new AccountError(`no user ${s.name} (groups are written @name)`);
    const added = await this.store.addGrant(s.kind, s.name, pattern, list, this.actor.name);
    await this.record('grant.add', subject, { pattern, actions: list });
    return added;
  }

  /** Takes back `actions` (all when undefined) on exactly `pattern`; returns how many were removed. */
  async revoke(subject: string, actions: string | undefined, pattern: string): Promise<number> {
    const s = parseSubject(subject);
    checkPattern(pattern);
    const list = actions === undefined ? undefined : actionsOf(actions);
    const n = await this.store.removeGrant(s.kind, s.name, pattern, list);
    if (n === 0) throw new AccountError(`${subject} has no ${actions ?? ''} grant on ${pattern}`.replace('  ', ' '));
    await this.record('grant.remove', subject, { pattern, actions: list ?? 'all' });
    return n;
  }

  async grants(): Promise<GrantInfo[]> {
    const bySubject = new Map<string, GrantInfo>();
    for (const g of await this.store.grants()) {
      if (g.subjectKind === 'token') continue; // shown as the token's scope
      const subject = g.subjectKind === 'group' ? `@${g.subject}` : g.subject;
      const key = `${subject}\0${g.pattern}`;
      const info = bySubject.get(key) ?? { subject, pattern: g.pattern, actions: [] };
      info.actions.push(g.action);
      bySubject.set(key, info);
    }
    return [...bySubject.values()];
  }

  private record(action: string, target: string, detail?: Record<string, unknown>): Promise<void> {
    return this.audit.record({ actor: this.actor, action, target, result: 'ok', detail });
  }
}
