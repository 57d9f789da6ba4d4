// The access check as HTTP sees it: reads a request's credentials (Authorization header, session cookie, client
// address through trusted proxies, the token realm) into plain values for auth/'s decision, and remembers on the
// request who the caller was, for the audit.
import type { IncomingMessage } from 'node:http';
import { openAccess, type AccessCheck, type Action, type Credentials, type Principal, type SessionClaim } from '../auth/access.js';
import { ClientOrigin } from './client-origin.js';

// The browser session's cookies (server/session.ts sets them) and the CSRF header a change must carry.
export const SESSION_COOKIE = 'wharf_session';
export const CSRF_COOKIE = 'wharf_csrf';
export const CSRF_HEADER = 'x-csrf-token';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** One cookie's value from the Cookie header, undefined when absent. */
export function cookie(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * The session a request claims, for the access check: undefined, cheaply, when it carries no session cookie
 * (most requests, from docker and scripts, carry no cookies at all).
 */
export function sessionClaimOf(req: IncomingMessage): SessionClaim | undefined {
  if (req.headers.cookie === undefined) return undefined;
  const id = cookie(req, SESSION_COOKIE);
  if (id === undefined) return undefined;
  const changes = !SAFE_METHODS.has(req.method ?? 'GET');
  const sent = req.headers[CSRF_HEADER];
  return { id, changes, csrfHeader: changes && typeof sent === 'string' ? sent : undefined, csrfCookie: changes ? cookie(req, CSRF_COOKIE) : undefined };
}

/** The check every registry and management route calls before acting (see AccessCheck in auth/access.ts). */
export interface RequestAccess {
  authorize(req: IncomingMessage, repository: string | undefined, actions: Action[], environment?: string, explicit?: boolean): Promise<Principal>;
  /** `GET /v2/_catalog` (AccessCheck.authorizeCatalog). */
  authorizeCatalog(req: IncomingMessage): Promise<Principal>;
  /** Whether the principal may pull `repository` (filters the catalog). */
  canPull(principal: Principal, repository: string): boolean;
  /** Whether the principal may do `action` (for showing only what the server would allow); absent: yes. */
  allowed?(principal: Principal, repository: string | undefined, action: Action, environment?: string, explicit?: boolean): boolean;
}

export interface RequestAccessOptions {
  /** the client's address and scheme, through trusted proxies */
  origin: ClientOrigin;
  /** the externally visible base URL (realm = <url>/token); derived from the request when absent */
  externalUrl?: string;
}

/** Kept on the request itself (a WeakMap per request costs the garbage collector more). */
const CALLER = Symbol('wharf.caller');
type WithCaller = IncomingMessage & { [CALLER]?: Principal };

/** The caller a request was authorized as (for the audit), if it got that far. */
export function callerOf(req: IncomingMessage): Principal | undefined {
  return (req as WithCaller)[CALLER];
}

/**
 * The Authorization header, read from rawHeaders: touching `req.headers` makes Node build the whole
 * headers object, which costs more per request than the rest of the access check together.
 */
export function authorizationHeader(req: IncomingMessage): string | undefined {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 13 && name.toLowerCase() === 'authorization') return raw[i + 1];
  }
  return undefined;
}

/** One request's credentials; a class, not closures, since one is made per request. */
class RequestCredentials implements Credentials {
  readonly authorization: string | undefined;
  caller?: Principal;
  constructor(
    private readonly req: IncomingMessage,
    private readonly options: RequestAccessOptions,
  ) {
    this.authorization = authorizationHeader(req);
  }
  session(): SessionClaim | undefined {
    return sessionClaimOf(this.req);
  }
  address(): string {
    return this.options.origin.address(this.req);
  }
  realm(): string {
    if (this.options.externalUrl) return `${this.options.externalUrl.replace(/\/+$/, '')}/token`;
    return `${this.options.origin.scheme(this.req)}://${this.req.headers.host ?? 'localhost'}/token`;
  }
}

export function requestAccess(check: AccessCheck, options: RequestAccessOptions): RequestAccess {
  const access: RequestAccess = {
    async authorize(req, repository, actions, environment, explicit) {
      const credentials = new RequestCredentials(req, options);
      try {
        return await check.authorize(credentials, repository, actions, environment, explicit);
      } finally {
        if (credentials.caller !== undefined) (req as WithCaller)[CALLER] = credentials.caller;
      }
    },
    async authorizeCatalog(req) {
      const credentials = new RequestCredentials(req, options);
      try {
        return await check.authorizeCatalog(credentials);
      } finally {
        if (credentials.caller !== undefined) (req as WithCaller)[CALLER] = credentials.caller;
      }
    },
    canPull: (principal, repository) => check.canPull(principal, repository),
  };
  if (check.allowed) access.allowed = (principal, repository, action, environment, explicit) => check.allowed!(principal, repository, action, environment, explicit);
  return access;
}

/** No authentication configured: everyone may do everything (tests and local use). */
export const openRequestAccess: RequestAccess = requestAccess(openAccess, { origin: new ClientOrigin() });
