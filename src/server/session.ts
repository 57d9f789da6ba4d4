// Browser sessions over HTTP: POST /api/v1/session exchanges a password for an HttpOnly, SameSite=Strict
// session cookie (Secure over TLS) and a CSRF token; GET tells the page who is signed in; DELETE signs out.
// Every state-changing request made with the cookie must carry the CSRF token in X-CSRF-Token, equal to the
// readable wharf_csrf cookie (double submit) and to the token derived from the session id (read as a SessionClaim
// in server/access.ts, checked by auth/sessions.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Principal } from '../auth/access.js';
import { AuthFailure } from '../auth/authenticator.js';
import { csrfTokenOf, type Sessions } from '../auth/sessions.js';
import { RegistryError } from '../oci/errors.js';
import type { ApiRoute } from './api.js';
import type { ClientOrigin } from './client-origin.js';
import { cookie, SESSION_COOKIE, CSRF_COOKIE } from './access.js';
import { rateLimited } from '../auth/access-policy.js';

const SignIn = z.object({ username: z.string().min(1).max(256), password: z.string().min(1).max(1024) });

export const SessionInfo = z.object({
  user: z.string().nullable(),
  kind: z.enum(['user', 'token', 'anonymous']),
  /** whether the caller may administer the hub (users, grants, webhooks, GC) */
  admin: z.boolean(),
  /** the CSRF token to send as X-CSRF-Token (only for a session) */
  csrf: z.string().optional(),
  expiresAt: z.string().optional(),
});

function setCookies(res: ServerResponse, secure: boolean, id: string, csrf: string, maxAgeSeconds: number): void {
  const common = `Path=/; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
  res.setHeader('Set-Cookie', [`${SESSION_COOKIE}=${id}; HttpOnly; ${common}`, `${CSRF_COOKIE}=${csrf}; ${common}`]);
}

export interface SessionRouteDeps {
  sessions: Sessions;
  origin: ClientOrigin;
  /** whether a principal may administer the hub (registry-wide admin) */
  isAdmin(principal: Principal): boolean;
}

export function sessionRoutes({ sessions, origin, isAdmin }: SessionRouteDeps): ApiRoute[] {
  return [
    {
      method: 'POST',
      pattern: /^\/api\/v1\/session$/,
      access: 'public',
      status: 201,
      summary: 'Sign in: exchange a user name and password for a session cookie',
      request: SignIn,
      response: SessionInfo,
      async handle(r) {
        const { username, password } = await r.body(SignIn);
        let signed;
        try {
          signed = await sessions.signIn(username, password, origin.address(r.req));
        } catch (e) {
          if (!(e instanceof AuthFailure)) throw e;
          if (e.reason === 'rate_limited') throw rateLimited(e);
          // No WWW-Authenticate: a browser must not answer this with its own password dialog.
          throw new RegistryError('UNAUTHORIZED', e.message);
        }
        setCookies(r.res, origin.scheme(r.req) === 'https', signed.id, signed.csrf, Math.floor((signed.expiresAt - Date.now()) / 1000));
        const policy = await sessions.policy();
        return {
          user: signed.user,
          kind: 'user',
          admin: policy.allows({ kind: 'user', name: signed.user }, undefined, 'admin'),
          csrf: signed.csrf,
          expiresAt: new Date(signed.expiresAt).toISOString(),
        };
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/session$/,
      access: 'handler',
      summary: 'Who is signed in (any credential), and the session’s CSRF token',
      response: SessionInfo,
      async handle(r) {
        const id = cookie(r.req, SESSION_COOKIE);
        const viaSession = r.req.headers.authorization === undefined && id !== undefined;
        return {
          user: r.principal.name,
          kind: r.principal.kind,
          admin: isAdmin(r.principal),
          ...(viaSession ? { csrf: csrfTokenOf(id) } : {}),
        };
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/api\/v1\/session$/,
      access: 'handler',
      status: 204,
      summary: 'Sign out: the session is revoked on the server and its cookies cleared',
      audit: { action: 'session.delete' },
      async handle(r) {
        const id = cookie(r.req, SESSION_COOKIE);
        if (id !== undefined) await sessions.signOut(id);
        setCookies(r.res, origin.scheme(r.req) === 'https', '', '', 0);
        r.res.writeHead(204);
        r.res.end();
        return undefined;
      },
    },
  ];
}

/**
 * With authentication off there is nobody to sign in: the page asks who it is and is told everyone may do
 * everything (as the server then allows).
 */
export function openSessionRoute(): ApiRoute {
  return {
    method: 'GET',
    pattern: /^\/api\/v1\/session$/,
    access: 'public',
    summary: 'Who is signed in (authentication is off: nobody, with every right)',
    response: SessionInfo,
    handle: async () => ({ user: null, kind: 'anonymous', admin: true }),
  };
}
