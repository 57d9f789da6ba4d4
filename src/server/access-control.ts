// Access control served over HTTP: the request-facing access check (with the client's address through trusted
// proxies), the Docker /token endpoint, who a request's caller is for the audit, and the management routes of
// access control itself (browser sessions, tokens, users, groups, grants, audit, signing keys).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Actor } from '../audit/audit-log.js';
import type { Auth } from '../auth/access-control.js';
import type { Config } from '../config.js';
import { callerOf, requestAccess, type RequestAccess } from './access.js';
import type { ApiRoute } from './api.js';
import { adminRoutes } from './api/accounts.js';
import { tokenRoutes } from './api/tokens.js';
import { keyRoutes } from './api/keys.js';
import { ClientOrigin } from './client-origin.js';
import { openSessionRoute, sessionRoutes } from './session.js';
import { tokenEndpoint } from './token.js';

export interface ServedAuth {
  access: RequestAccess;
  /** GET/POST /token; absent when auth is disabled */
  tokenEndpoint?: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>;
  /** who made a request, for the audit log */
  actorOf(req: IncomingMessage): Actor;
  /** the management-API routes of access control itself: browser sessions, users, groups, grants, audit */
  routes: ApiRoute[];
}

export function serveAuth(auth: Auth, config: Config, log: Logger): ServedAuth {
  const origin = new ClientOrigin(config.trustedProxies);
  const access = requestAccess(auth.access, { origin, externalUrl: config.externalUrl });
  const actorOf = (req: IncomingMessage): Actor => {
    const caller = callerOf(req);
    const address = origin.address(req);
    if (!caller || caller.kind === 'anonymous') return { name: 'anonymous', kind: 'anonymous', address };
    return { name: caller.name ?? 'anonymous', kind: caller.kind, address };
  };
  const services = auth.services;
  if (!services) return { access, actorOf, routes: [openSessionRoute()] };
  const { store, policies, authn, tokens, sessions, isAdmin } = services;
  return {
    access,
    actorOf,
    tokenEndpoint: tokenEndpoint({ authn, policies, tokens, origin, log }),
    routes: [...tokenRoutes(store, auth.audit, policies, access), ...sessionRoutes({ sessions, origin, isAdmin }), ...adminRoutes({ store, audit: auth.audit, policies, actorOf, passwordCost: config.auth.passwordCost }), ...keyRoutes(tokens)],
  };
}
