// AuthStore: users, group memberships, robot tokens and grants in the metadata database (Kysely, so the
// same queries run on SQLite and PostgreSQL). No policy here, only rows.
import { randomInt } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database, GrantsTable, RobotTokensTable, UsersTable } from './schema.js';
import { precompile } from './precompiled.js';

export type Role = UsersTable['role'];
export type SubjectKind = GrantsTable['subject_kind'];

export interface UserRow {
  name: string;
  role: Role;
  passwordHash: string;
  createdAt: number;
  updatedAt: number;
  /** the `gen` claim every token issued to the user must carry (see Accounts.setPassword, endSessions) */
  tokenGeneration: number;
}

export interface TokenRow {
  id: string;
  name: string;
  secretHash: string;
  scope: string;
  createdBy: string | null;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
}

export interface GrantRow {
  subjectKind: SubjectKind;
  subject: string;
  pattern: string;
  action: string;
  createdBy: string | null;
  createdAt: number;
}

export interface Membership {
  group: string;
  user: string;
}

const USER_COLUMNS = ['name', 'role', 'password_hash', 'created_at', 'updated_at', 'token_generation'] as const;

const toUser = (r: { name: string; role: Role; password_hash: string; created_at: number; updated_at: number; token_generation: number }): UserRow => ({
  name: r.name,
  role: r.role,
  passwordHash: r.password_hash,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
  tokenGeneration: Number(r.token_generation),
});

/**
 * A new user's first token generation: random, so that a user removed and made again under the same name
 * does not accept the tokens of the one before (the row, and its counter, are gone).
 */
function firstGeneration(): number {
  return randomInt(1, 2 ** 31);
}

const toToken = (r: RobotTokensTable): TokenRow => ({
  id: r.id,
  name: r.name,
  secretHash: r.secret_hash,
  scope: r.scope,
  createdBy: r.created_by,
  createdAt: Number(r.created_at),
  expiresAt: r.expires_at === null ? null : Number(r.expires_at),
  revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
});

export class AuthStore {
  /**
   * The four reads the access policy is built from (auth/policy-source.ts), again every `auth.policyRefresh` while
   * requests come: compiled once, and prepared on PostgreSQL.
   */
  private readonly policy;

  constructor(private readonly db: Kysely<Database>) {
    this.policy = {
      users: precompile(db, 'policy_users', () => db.selectFrom('users').select(USER_COLUMNS).orderBy('name'), 0),
      activeTokens: precompile(db, 'policy_tokens', () => db.selectFrom('robot_tokens').selectAll().where('revoked_at', 'is', null).orderBy('created_at'), 0),
      memberships: precompile(db, 'policy_memberships', () => db.selectFrom('group_members').select(['group_name', 'user_name']).orderBy('group_name').orderBy('user_name'), 0),
      grants: precompile(db, 'policy_grants', () => db.selectFrom('grants').selectAll().orderBy('subject_kind').orderBy('subject').orderBy('pattern').orderBy('action'), 0),
    };
  }

  // --- users -----------------------------------------------------------------------------------

  async users(): Promise<UserRow[]> {
    return (await this.policy.users()).map(toUser);
  }

  async user(name: string): Promise<UserRow | undefined> {
    const r = await this.db.selectFrom('users').select(USER_COLUMNS).where('name', '=', name).executeTakeFirst();
    return r && toUser(r);
  }

  async userCount(): Promise<number> {
    const r = await this.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** False when the name is taken. */
  async addUser(name: string, role: Role, passwordHash: string): Promise<boolean> {
    const now = Date.now();
    const r = await this.db
      .insertInto('users')
      .values({ name, role, password_hash: passwordHash, created_at: now, updated_at: now, token_generation: firstGeneration() })
      .onConflict((oc) => oc.column('name').doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /** A new password also moves the user's token generation on: every token issued before stops working. */
  async updateUser(name: string, change: { passwordHash?: string; role?: Role }): Promise<boolean> {
    const r = await this.db
      .updateTable('users')
      .set({
        updated_at: Date.now(),
        ...(change.passwordHash === undefined ? {} : { password_hash: change.passwordHash, token_generation: sql<number>`token_generation + 1` }),
        ...(change.role === undefined ? {} : { role: change.role }),
      })
      .where('name', '=', name)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Moves the user's token generation on (ends every token issued so far); false when there is no such user. */
  async bumpTokenGeneration(name: string): Promise<boolean> {
    const r = await this.db
      .updateTable('users')
      .set({ token_generation: sql<number>`token_generation + 1`, updated_at: Date.now() })
      .where('name', '=', name)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Removes the user with its memberships and grants, so a later user of the same name starts clean. */
  async removeUser(name: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('group_members').where('user_name', '=', name).execute();
      await trx.deleteFrom('grants').where('subject_kind', '=', 'user').where('subject', '=', name).execute();
      const r = await trx.deleteFrom('users').where('name', '=', name).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  // --- groups ----------------------------------------------------------------------------------

  async memberships(): Promise<Membership[]> {
    return (await this.policy.memberships()).map((r) => ({ group: r.group_name, user: r.user_name }));
  }

  /** Returns the users newly added. */
  async addMembers(group: string, users: string[]): Promise<string[]> {
    const added: string[] = [];
    for (const user of users) {
      const r = await this.db
        .insertInto('group_members')
        .values({ group_name: group, user_name: user, created_at: Date.now() })
        .onConflict((oc) => oc.columns(['group_name', 'user_name']).doNothing())
        .executeTakeFirst();
      if (Number(r.numInsertedOrUpdatedRows ?? 0) > 0) added.push(user);
    }
    return added;
  }

  /** Removes the given members, or the whole group (members and grants) when `users` is empty. */
  async removeMembers(group: string, users: string[]): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      let q = trx.deleteFrom('group_members').where('group_name', '=', group);
      if (users.length > 0) q = q.where('user_name', 'in', users);
      const r = await q.executeTakeFirst();
      if (users.length === 0) await trx.deleteFrom('grants').where('subject_kind', '=', 'group').where('subject', '=', group).execute();
      return Number(r.numDeletedRows);
    });
  }

  // --- robot tokens ----------------------------------------------------------------------------

  async tokens(includeRevoked = true): Promise<TokenRow[]> {
    if (!includeRevoked) return (await this.policy.activeTokens()).map(toToken);
    return (await this.db.selectFrom('robot_tokens').selectAll().orderBy('created_at').execute()).map(toToken);
  }

  /** Stores a token with its scopes as grants, in one transaction. */
  async addToken(t: Omit<TokenRow, 'revokedAt'>, grants: { pattern: string; action: string }[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('robot_tokens')
        .values({
          id: t.id,
          name: t.name,
          secret_hash: t.secretHash,
          scope: t.scope,
          created_by: t.createdBy,
          created_at: t.createdAt,
          expires_at: t.expiresAt,
          revoked_at: null,
        })
        .execute();
      for (const g of grants) {
        await trx
          .insertInto('grants')
          .values({ subject_kind: 'token', subject: t.id, pattern: g.pattern, action: g.action, created_by: t.createdBy, created_at: t.createdAt })
          .onConflict((oc) => oc.columns(['subject_kind', 'subject', 'pattern', 'action']).doNothing())
          .execute();
      }
    });
  }

  /** Revokes the active tokens of that name; returns how many. */
  async revokeToken(name: string): Promise<number> {
    const r = await this.db.updateTable('robot_tokens').set({ revoked_at: Date.now() }).where('name', '=', name).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  // --- grants ----------------------------------------------------------------------------------

  async grants(): Promise<GrantRow[]> {
    const rows = await this.policy.grants();
    return rows.map((r) => ({
      subjectKind: r.subject_kind,
      subject: r.subject,
      pattern: r.pattern,
      action: r.action,
      createdBy: r.created_by,
      createdAt: Number(r.created_at),
    }));
  }

  /** Returns the actions newly granted (already granted ones are left as they are). */
  async addGrant(subjectKind: SubjectKind, subject: string, pattern: string, actions: string[], createdBy: string | null): Promise<string[]> {
    const added: string[] = [];
    await this.db.transaction().execute(async (trx) => {
      for (const action of actions) {
        const r = await trx
          .insertInto('grants')
          .values({ subject_kind: subjectKind, subject, pattern, action, created_by: createdBy, created_at: Date.now() })
          .onConflict((oc) => oc.columns(['subject_kind', 'subject', 'pattern', 'action']).doNothing())
          .executeTakeFirst();
        if (Number(r.numInsertedOrUpdatedRows ?? 0) > 0) added.push(action);
      }
    });
    return added;
  }

  /** Removes the given actions (all actions when `actions` is undefined) on exactly that pattern. */
  async removeGrant(subjectKind: SubjectKind, subject: string, pattern: string, actions?: string[]): Promise<number> {
    let q = this.db.deleteFrom('grants').where('subject_kind', '=', subjectKind).where('subject', '=', subject).where('pattern', '=', pattern);
    if (actions !== undefined) q = q.where('action', 'in', actions);
    const r = await q.executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
