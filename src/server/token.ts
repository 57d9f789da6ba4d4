// GET/POST /token: the Docker token endpoint. GET takes Basic credentials (or none, for public pulls) and
// `scope` parameters; POST takes the OAuth2 form Distribution documents (grant_type=password or
// refresh_token). The answer grants the intersection of what was asked and what the caller may do.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { RegistryError } from '../oci/errors.js';
import { isValidRepositoryName } from '../oci/reference.js';
import { readBody } from './request-body.js';
import { sendError } from './http-errors.js';
import { ACTIONS, isGrantedAction, REGISTRY_CLAIM_TYPE, splitGrantedAction, type GrantedAction } from '../auth/actions.js';
import type { Action } from '../auth/access.js';
import { AuthFailure, generationOf, tokenSubject, type Authenticator } from '../auth/authenticator.js';
import { rateLimited } from '../auth/access-policy.js';
import type { ClientOrigin } from './client-origin.js';
import type { Identity, Policy } from '../auth/policy.js';
import type { PolicySource } from '../auth/policy-source.js';
import type { AccessClaim, TokenService } from '../auth/token-service.js';

const MAX_FORM_BYTES = 64 * 1024;
const MAX_SCOPES = 32;

export interface TokenEndpointDeps {
  authn: Authenticator;
  policies: PolicySource;
  tokens: TokenService;
  origin: ClientOrigin;
  log: Logger;
}

/**
 * Grants each requested `type:name:actions` scope as far as the policy allows. Repository names never
 * contain ':', so the name ends at the second colon and actions may carry one (`release:staging`).
 */
export function grantScopes(requested: string[], identity: Identity, policy: Policy): AccessClaim[] {
  const out: AccessClaim[] = [];
  for (const scope of requested.slice(0, MAX_SCOPES)) {
    const m = /^([a-z()]+):([^:]+):(.*)$/.exec(scope);
    if (!m) continue;
    const [, type, name, list] = m as unknown as [string, string, string, string];
    if (type === 'registry' && name === 'catalog') {
      // Listing is filtered per caller anyway, so anyone may ask.
      out.push({ type, name, actions: ['*'] });
      continue;
    }
    if (type === REGISTRY_CLAIM_TYPE) {
      // Registry-wide administration is never implied by another scope (nor by `*` on a repository): a client
      // gets it only by asking for `wharf:admin:*`, and only when it holds the action registry-wide.
      if (list === '*' && (ACTIONS as readonly string[]).includes(name) && policy.allows(identity, undefined, name as Action)) out.push({ type, name, actions: ['*'] });
      continue;
    }
    if (type !== 'repository' || !isValidRepositoryName(name)) continue;
    const wanted = new Set(list.split(',').flatMap((a): readonly GrantedAction[] => (a === '*' ? ACTIONS : isGrantedAction(a) ? [a] : [])));
    const actions = [...wanted].filter((a) => {
      const { action, environment } = splitGrantedAction(a);
      return policy.allows(identity, name, action, environment);
    });
    if (actions.length > 0) out.push({ type, name, actions });
  }
  return out;
}

export function tokenEndpoint({ authn, policies, tokens, origin, log }: TokenEndpointDeps) {
  const service = tokens.options.service;

  const checkService = (requested: string | null) => {
    if (requested !== null && requested !== '' && requested !== service) {
      throw new RegistryError('INVALID', `this token service issues tokens for service ${JSON.stringify(service)}, not ${JSON.stringify(requested)}`);
    }
  };

  const respond = async (res: ServerResponse, identity: Identity, scopes: string[], withRefresh: boolean) => {
    const policy = await policies.current();
    const access = grantScopes(scopes, identity, policy);
    const subject = identity.kind === 'anonymous' ? '' : identity.kind === 'user' ? identity.name : tokenSubject(identity.id);
    const issued = await tokens.issueAccess(subject, access, Date.now(), generationOf(identity, policy));
    // The token's exp, to the second it was written in.
    const expiresAt = (Math.floor(Date.parse(issued.issuedAt) / 1000) + issued.expiresIn) * 1000;
    authn.rememberIssued(issued.token, issued.kid, identity, access, expiresAt, policy);
    const body: Record<string, unknown> = {
      token: issued.token,
      access_token: issued.token,
      expires_in: issued.expiresIn,
      issued_at: issued.issuedAt,
      scope: access.map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`).join(' '),
    };
    if (withRefresh) {
      const refresh = await authn.refreshTokenFor(identity);
      if (refresh !== undefined) body.refresh_token = refresh;
    }
    const json = JSON.stringify(body);
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(json), 'Cache-Control': 'no-store' });
    res.end(json);
  };

  const get = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    req.resume();
    checkService(url.searchParams.get('service'));
    const header = req.headers.authorization;
    if (header !== undefined && !/^basic /i.test(header)) throw new AuthFailure('invalid_credentials', 'the token endpoint takes Basic credentials');
    const { identity } = await authn.identify(header, origin.address(req), await policies.current());
    const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
    await respond(res, identity, scopes, url.searchParams.get('offline_token') === 'true');
  };

  const post = async (req: IncomingMessage, res: ServerResponse) => {
    if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      req.resume();
      throw new RegistryError('INVALID', 'expected an application/x-www-form-urlencoded body');
    }
    const form = new URLSearchParams((await readBody(req, MAX_FORM_BYTES)).toString('utf8'));
    checkService(form.get('service'));
    const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
    const grant = form.get('grant_type');
    if (grant === 'password') {
      const { identity } = await authn.login(form.get('username') ?? '', form.get('password') ?? '', origin.address(req), 'oauth2-password');
      return respond(res, identity, scopes, form.get('access_type') === 'offline');
    }
    if (grant === 'refresh_token') {
      const identity = await authn.refresh(form.get('refresh_token') ?? '', origin.address(req));
      return respond(res, identity, scopes, false);
    }
    throw new RegistryError('INVALID', `unsupported grant_type ${JSON.stringify(grant)}`);
  };

  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    try {
      if (req.method === 'GET') return await get(req, res, url);
      if (req.method === 'POST') return await post(req, res);
      req.resume();
      throw new RegistryError('UNSUPPORTED', `method ${req.method} not allowed on /token`);
    } catch (e) {
      if (!req.readableEnded) req.resume();
      sendError(res, e instanceof AuthFailure ? toHttp(e, service) : e, log);
    }
  };
}

function toHttp(e: AuthFailure, service: string): RegistryError {
  if (e.reason === 'rate_limited') return rateLimited(e);
  const err = new RegistryError('UNAUTHORIZED', e.message);
  err.headers = { 'WWW-Authenticate': `Basic realm="${service}"` };
  return err;
}
