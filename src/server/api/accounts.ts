// Administration over the management API (global admin only): users, groups, grants and the audit log, so a
// hub on another machine is administered with `wharf … --server` or from the UI, not only on its data dir.
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import type { Actor, AuditLog } from '../../audit/audit-log.js';
import { AccountError, Accounts } from '../../auth/accounts.js';
import type { AuthMetadata } from '../../metadata/metadata.js';
import type { PolicySource } from '../../auth/policy-source.js';
import { RegistryError } from '../../oci/errors.js';
import type { ApiRequest, ApiRoute } from '../api.js';
import { DEFAULT_LIMIT, decodeCursor, encodeCursor, historyFilters, pageList, pageOf, pageQuery, parseQuery } from '../pagination.js';

const admin = { actions: ['admin' as const] };

export interface AdminRouteDeps {
  store: AuthMetadata;
  audit: AuditLog;
  policies: PolicySource;
  actorOf(req: IncomingMessage): Actor;
  /** scrypt's cost (log2 N) of the passwords set here: config auth.passwordCost */
  passwordCost: number;
}

const User = z.object({ name: z.string(), role: z.enum(['admin', 'member']), groups: z.array(z.string()), createdAt: z.number() });
const NewUser = z.object({ name: z.string().min(1).max(64), role: z.enum(['admin', 'member']).default('member'), password: z.string().min(1).max(1024) }).strict();
const UserChange = z.object({ password: z.string().min(1).max(1024) }).strict();
const Group = z.object({ group: z.string(), members: z.array(z.string()) });
const Members = z.object({ users: z.array(z.string().min(1).max(64)).min(1).max(1000) }).strict();
const Grant = z.object({ subject: z.string().describe('user name, or @group'), pattern: z.string(), actions: z.array(z.string()) });
const NewGrant = z
  .object({ subject: z.string().min(1).max(65), actions: z.string().min(1).max(512).describe('e.g. pull,push or release:staging'), pattern: z.string().min(1).max(256) })
  .strict();
const AuditRow = z.object({
  id: z.number(),
  at: z.number(),
  actor: z.string(),
  actorKind: z.string(),
  address: z.string().nullable(),
  action: z.string(),
  repository: z.string().nullable(),
  target: z.string().nullable(),
  result: z.string(),
  detail: z.record(z.string(), z.unknown()).nullable(),
});
const AuditQuery = pageQuery.extend({
  ...historyFilters,
  action: z.string().max(128).optional().describe('an action or its prefix: tag. matches tag.move and tag.delete'),
  repository: z.string().max(256).optional(),
});

/** Account errors are the caller's mistakes: NOT_FOUND for "no …" (an unknown user), CONFLICT for a taken name, else INVALID. */
async function accounts<T>(r: ApiRequest, deps: AdminRouteDeps, f: (a: Accounts) => Promise<T>): Promise<T> {
  try {
    return await f(new Accounts(deps.store, deps.audit, deps.actorOf(r.req), deps.passwordCost));
  } catch (e) {
    if (!(e instanceof AccountError)) throw e;
    throw new RegistryError(/^no /.test(e.message) ? 'NOT_FOUND' : e.message.includes('exists') ? 'CONFLICT' : 'INVALID', e.message);
  } finally {
    deps.policies.invalidate();
  }
}

function noContent(r: ApiRequest): undefined {
  r.res.writeHead(204).end();
  return undefined;
}

export function adminRoutes(deps: AdminRouteDeps): ApiRoute[] {
  return [
    {
      method: 'GET',
      pattern: /^\/api\/v1\/users$/,
      access: admin,
      summary: 'Users with their role and groups',
      query: pageQuery.extend({ prefix: z.string().max(64).optional() }),
      response: pageOf(User),
      async handle(r) {
        const q = parseQuery(r.url, pageQuery.extend({ prefix: z.string().max(64).optional() }));
        const users = await accounts(r, deps, (a) => a.users());
        return pageList('users', users.filter((u) => !q.prefix || u.name.startsWith(q.prefix)), (u) => u.name, q.limit, q.cursor);
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/users$/,
      access: admin,
      status: 201,
      summary: 'Create a user',
      request: NewUser,
      response: User,
      async handle(r) {
        const u = await r.body(NewUser);
        await accounts(r, deps, (a) => a.addUser(u.name, u.role, u.password));
        return { name: u.name, role: u.role, groups: [], createdAt: Date.now() };
      },
    },
    {
      method: 'PATCH',
      pattern: /^\/api\/v1\/users\/(?<user>[^/]+)$/,
      access: admin,
      summary: 'Set a user’s password (ends their sessions and logins)',
      request: UserChange,
      async handle(r) {
        const change = await r.body(UserChange);
        await accounts(r, deps, (a) => a.setPassword(r.params.user!, change.password));
        return noContent(r);
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/api\/v1\/users\/(?<user>[^/]+)$/,
      access: admin,
      summary: 'Remove a user with their memberships and grants',
      async handle(r) {
        if (r.params.user === r.principal.name) throw new RegistryError('INVALID', 'you cannot remove yourself; ask another admin');
        await accounts(r, deps, (a) => a.removeUser(r.params.user!));
        return noContent(r);
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/groups$/,
      access: admin,
      summary: 'Groups with their members',
      query: pageQuery,
      response: pageOf(Group),
      async handle(r) {
        const q = parseQuery(r.url, pageQuery);
        return pageList('groups', await accounts(r, deps, (a) => a.groups()), (g) => g.group, q.limit, q.cursor);
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/groups\/(?<group>[^/]+)\/members$/,
      access: admin,
      summary: 'Add users to a group (created on first member)',
      request: Members,
      response: z.object({ added: z.array(z.string()) }),
      async handle(r) {
        const { users } = await r.body(Members);
        return { added: await accounts(r, deps, (a) => a.addToGroup(r.params.group!, users)) };
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/api\/v1\/groups\/(?<group>[^/]+)\/members\/(?<user>[^/]+)$/,
      access: admin,
      summary: 'Remove a user from a group',
      async handle(r) {
        const n = await accounts(r, deps, (a) => a.removeFromGroup(r.params.group!, [r.params.user!]));
        if (n === 0) throw new RegistryError('NOT_FOUND', `${r.params.user} is not in @${r.params.group}`);
        return noContent(r);
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/api\/v1\/groups\/(?<group>[^/]+)$/,
      access: admin,
      summary: 'Remove a group with its grants',
      async handle(r) {
        await accounts(r, deps, (a) => a.removeFromGroup(r.params.group!, []));
        return noContent(r);
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/grants$/,
      access: admin,
      summary: 'Grants of users and groups (tokens carry theirs as scope)',
      query: pageQuery.extend({ subject: z.string().max(65).optional() }),
      response: pageOf(Grant),
      async handle(r) {
        const q = parseQuery(r.url, pageQuery.extend({ subject: z.string().max(65).optional() }));
        const grants = (await accounts(r, deps, (a) => a.grants())).filter((g) => q.subject === undefined || g.subject === q.subject);
        return pageList('grants', grants, (g) => `${g.subject}\0${g.pattern}`, q.limit, q.cursor);
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/grants$/,
      access: admin,
      status: 201,
      summary: 'Grant actions on a repository pattern to a user or @group',
      request: NewGrant,
      response: z.object({ added: z.array(z.string()) }),
      async handle(r) {
        const g = await r.body(NewGrant);
        return { added: await accounts(r, deps, (a) => a.grant(g.subject, g.actions, g.pattern)) };
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/api\/v1\/grants$/,
      access: admin,
      summary: 'Take back actions (all when absent) on exactly a pattern',
      query: z.object({ subject: z.string().min(1).max(65), pattern: z.string().min(1).max(256), actions: z.string().max(512).optional() }),
      async handle(r) {
        const q = parseQuery(r.url, z.object({ subject: z.string().min(1).max(65), pattern: z.string().min(1).max(256), actions: z.string().max(512).optional() }));
        await accounts(r, deps, (a) => a.revoke(q.subject, q.actions, q.pattern));
        return noContent(r);
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/audit$/,
      access: admin,
      summary: 'The audit log, newest first, with filters',
      query: AuditQuery,
      response: pageOf(AuditRow),
      async handle(r) {
        const q = parseQuery(r.url, AuditQuery);
        const before = decodeCursor('audit', q.cursor, z.number().int().positive());
        const limit = q.limit ?? DEFAULT_LIMIT;
        const rows = await deps.audit.page({
          before,
          limit: limit + 1,
          actor: q.actor,
          actionPrefix: q.action,
          repository: q.repository,
          since: q.since,
          until: q.until,
        });
        const items = rows.slice(0, limit);
        return { items, next: rows.length > limit ? encodeCursor('audit', items[items.length - 1]!.id) : null };
      },
    },
  ];
}
