// Self-service tokens over the management API: a user makes, lists and revokes their own tokens (a global admin
// sees and revokes everyone's). Without a scope a token acts as its maker (what `wharf login` keeps); a scoped robot
// token is for CI and only an admin gives one, since its grants are its own and could reach past the maker's.
//   POST   /api/v1/tokens         {name, scope?: string[], expires?: "30d"} → 201 {id, name, secret, scope, createdAt, expiresAt}
//   GET    /api/v1/tokens         → {items: [{id, name, scope, createdAt, createdBy, expiresAt, revokedAt, state}], next} (?limit=&cursor=)
//   DELETE /api/v1/tokens/{name}  → 204
import { z } from 'zod';
import type { AuditLog } from '../../audit/audit-log.js';
import { parseDuration } from '../../config.js';
import { RegistryError } from '../../oci/errors.js';
import type { RequestAccess } from '../access.js';
import type { ApiRequest, ApiRoute } from '../api.js';
import { AccountError, Accounts } from '../../auth/accounts.js';
import type { AuthMetadata, TokenRow } from '../../metadata/metadata.js';
import type { Caller } from '../../auth/access-policy.js';
import { PERSONAL_SCOPE } from '../../auth/policy.js';
import type { PolicySource } from '../../auth/policy-source.js';
import { pageList, pageOf, pageQuery, parseQuery } from '../pagination.js';

const createBody = z
  .object({
    name: z.string().min(1).max(64),
    scope: z.array(z.string().min(1).max(512)).max(64).optional(),
    expires: z.string().max(32).optional(),
  })
  .strict();

const TokenItem = z.object({
  id: z.string(),
  name: z.string(),
  /** empty: a personal token, acting as its maker */
  scope: z.array(z.string()),
  createdAt: z.string().nullable(),
  createdBy: z.string().nullable(),
  expiresAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  state: z.enum(['active', 'revoked', 'expired']),
});

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function shown(t: TokenRow, now = Date.now()) {
  return {
    id: t.id,
    name: t.name,
    scope: t.scope === PERSONAL_SCOPE ? [] : t.scope.split(' '),
    createdAt: iso(t.createdAt),
    createdBy: t.createdBy,
    expiresAt: iso(t.expiresAt),
    revokedAt: iso(t.revokedAt),
    state: t.revokedAt !== null ? 'revoked' : t.expiresAt !== null && t.expiresAt <= now ? 'expired' : 'active',
  };
}

export function tokenRoutes(store: AuthMetadata, audit: AuditLog, policies: PolicySource, access: RequestAccess): ApiRoute[] {
  /** The user a call acts for: the user who logged in, or the maker of the personal token it sends. */
  async function actingUser(r: ApiRequest): Promise<string> {
    // A Bearer access token carries claims (docker's, say, for pulling one repository): managing tokens is
    // beyond any claim it can hold, and a personal token minted from it would act as the whole user.
    if (r.principal.credential === 'bearer') {
      throw new RegistryError('DENIED', 'an access token cannot manage tokens: sign in with a password');
    }
    if (r.principal.kind === 'user' && r.principal.name) return r.principal.name;
    if (r.principal.kind === 'token') {
      // A personal token's principal bears its maker's name; the token itself is the identity.
      const identity = (r.principal as Partial<Caller>).identity;
      const tokenName = identity?.kind === 'token' ? identity.name : r.principal.name;
      const t = (await store.tokens(false)).find((x) => x.name === tokenName);
      if (t && t.scope === PERSONAL_SCOPE && t.createdBy) return t.createdBy;
      throw new RegistryError('DENIED', 'a robot token cannot manage tokens');
    }
    throw new RegistryError('UNAUTHORIZED', 'authentication required');
  }
  const isAdmin = async (r: ApiRequest) =>
    access.authorize(r.req, undefined, ['admin']).then(
      () => true,
      () => false,
    );
  const accounts = (r: ApiRequest) => new Accounts(store, audit, r.actor);
  const refused = (e: unknown): never => {
    if (e instanceof AccountError) throw new RegistryError(e.message.includes('exists') ? 'CONFLICT' : 'INVALID', e.message);
    throw e;
  };

  return [
    {
      method: 'POST',
      pattern: /^\/api\/v1\/tokens$/,
      access: 'handler',
      status: 201,
      summary: 'Make a token: one that acts as you, or (admins) a robot token with its own scope; the secret is shown once',
      request: createBody,
      response: TokenItem.extend({ secret: z.string() }),
      handle: async (r) => {
        const owner = await actingUser(r);
        // A token making tokens would let a leaked one outlive its own revocation.
        if (r.principal.kind !== 'user') throw new RegistryError('DENIED', 'a token cannot make tokens: log in with a password');
        const body = await r.body(createBody);
        let expiresIn: number | undefined;
        try {
          expiresIn = body.expires === undefined ? undefined : parseDuration(body.expires);
        } catch (e) {
          throw new RegistryError('INVALID', `expires: ${(e as Error).message}`);
        }
        const scoped = body.scope !== undefined && body.scope.length > 0;
        if (scoped && !(await isAdmin(r))) throw new RegistryError('DENIED', 'only an admin gives scoped robot tokens; leave out scope for a token that acts as you');
        const created = await (scoped ? accounts(r).createToken(body.name, body.scope!, expiresIn) : accounts(r).createPersonalToken(body.name, owner, expiresIn)).catch(refused);
        policies.invalidate();
        const row = (await store.tokens(false)).find((t) => t.id === created.id)!;
        return { ...shown(row), secret: created.secret };
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/tokens$/,
      access: 'handler',
      summary: "The caller's tokens (every token, for a global admin), by name, then id",
      query: pageQuery,
      response: pageOf(TokenItem),
      handle: async (r) => {
        const user = await actingUser(r);
        const all = await isAdmin(r);
        const now = Date.now();
        const q = parseQuery(r.url, pageQuery);
        const mine = (await store.tokens()).filter((t) => all || t.createdBy === user).map((t) => shown(t, now));
        // A revoked token keeps its name and a new one may take it, so names repeat: the page key adds the id,
        // or a page ending between two same-named tokens would skip the next. NUL sorts before every character a
        // token name may hold (checkName), so "ci" and its ids still come before "ci-2".
        return pageList('tokens', mine, (t) => `${t.name}\0${t.id}`, q.limit, q.cursor);
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/api\/v1\/tokens\/(?<name>[^/]+)$/,
      access: 'handler',
      summary: 'Revoke your active token of that name (an admin: anyone’s)',
      handle: async (r) => {
        const user = await actingUser(r);
        const name = r.params.name!;
        const t = (await store.tokens(false)).find((x) => x.name === name);
        // Someone else's token is as absent as no token: its name is not the caller's to learn.
        if (!t || (t.createdBy !== user && !(await isAdmin(r)))) throw new RegistryError('NOT_FOUND', `no active token named ${name}`);
        await accounts(r).revokeToken(name).catch(refused);
        policies.invalidate();
        r.res.writeHead(204).end();
        return undefined;
      },
    },
  ];
}
