// The AccessCheck the HTTP layer calls: who is calling (Basic, Bearer or nobody), and may they do this?
// No or bad credentials → 401 with the Bearer challenge Distribution sends (realm, service, scope);
// a Bearer token issued for less than this request needs → 401 insufficient_scope (the client fetches a
// better token) if the caller could get one, else 403 DENIED; a known caller without the grant → 403.
import type { IncomingMessage } from 'node:http';
import { RegistryError } from '../oci/errors.js';
import { registryScope, type AccessCheck, type Action, type Principal } from '../server/access.js';
import type { ClientOrigin } from '../server/client-origin.js';
import { covers, REGISTRY_CLAIM_TYPE } from './actions.js';
import { AuthFailure, type Authenticator } from './authenticator.js';
import { Policy, type Identity } from './policy.js';
import type { PolicySource } from './policy-source.js';
import type { AccessClaim } from './token-service.js';

/** The principal handed to route handlers, carrying what canPull and the audit need. */
export class Caller implements Principal {
  readonly name: string | null;
  readonly kind: Principal['kind'];
  constructor(
    readonly identity: Identity,
    readonly policy: Policy,
  ) {
    this.kind = identity.kind;
    // What a personal token does is its maker's doing: releases, tag moves and the audit name the user.
    this.name = identity.kind === 'anonymous' ? null : (policy.makerOf(identity) ?? identity.name);
  }
}

export interface AccessPolicyOptions {
  service: string;
  /** the externally visible base URL (realm = <url>/token); derived from the request when absent */
  externalUrl?: string;
  /** the client's address and scheme, through trusted proxies */
  origin: ClientOrigin;
}

/** Kept on the request itself (a WeakMap per request costs the garbage collector more). */
const CALLER = Symbol('wharf.caller');
type WithCaller = IncomingMessage & { [CALLER]?: Caller };

/** The caller a request was authorized as (for the audit), if it got that far. */
export function callerOf(req: IncomingMessage): Caller | undefined {
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

/**
 * A second source of credentials beside the Authorization header: the browser's session cookie. Undefined,
 * synchronously, when the request carries none; else the session's user, or a rejection (AuthFailure for a
 * dead session, RegistryError DENIED for a change without its CSRF token).
 */
export interface SessionCredential {
  verify(req: IncomingMessage, policy: Policy): Promise<Identity> | undefined;
}

export class AccessPolicy implements AccessCheck {
  constructor(
    private readonly policies: PolicySource,
    private readonly authn: Authenticator,
    private readonly options: AccessPolicyOptions,
    private readonly sessions?: SessionCredential,
  ) {}

  async authorize(req: IncomingMessage, repository: string | undefined, actions: Action[], environment?: string, explicit = false): Promise<Principal> {
    // Both are plain values on the hot path (fresh policy, remembered credential): no await then, and no
    // client address either (only logins and the audit of changes need it).
    const current = this.policies.current();
    const policy = current instanceof Policy ? current : await current;
    const header = authorizationHeader(req);
    const session = header === undefined ? this.sessions?.verify(req, policy) : undefined;
    let verified = session === undefined ? this.authn.recall(header, policy, () => this.options.origin.address(req)) : undefined;
    if (session !== undefined) {
      try {
        verified = { identity: await session, scheme: 'session' };
      } catch (e) {
        if (!(e instanceof AuthFailure)) throw e;
        throw this.challenge(req, repository, actions, e.message, 'invalid_token');
      }
    } else if (verified === undefined) {
      try {
        verified = await this.authn.identify(header, this.options.origin.address(req), policy);
      } catch (e) {
        if (!(e instanceof AuthFailure)) throw e;
        if (e.reason === 'rate_limited') throw rateLimited(e);
        throw this.challenge(req, repository, actions, e.message, e.reason === 'invalid_token' ? 'invalid_token' : undefined);
      }
    }
    const { identity } = verified;
    const caller = new Caller(identity, policy);
    (req as WithCaller)[CALLER] = caller;

    const access = verified.access;
    if (repository === undefined) {
      // The base endpoint and the catalog only need a caller who proved something; anonymous callers with
      // a token (for public repositories) count, bare anonymous requests get the challenge.
      if (identity.kind === 'anonymous' && (verified.scheme === 'none' || actions.length > 0)) throw this.challenge(req, undefined, actions, 'authentication required');
      if (!actions.every((a) => policy.allows(identity, undefined, a, environment))) throw denied(undefined, actions);
      // A registry-wide action needs its own claim: an admin's token issued to pull one repository (or for
      // nothing at all, as docker's login asks) is not an admin's credential.
      if (access && !actions.every((a) => registryClaimCovers(access, a))) {
        throw this.challenge(req, undefined, actions, 'the token does not grant this access', 'insufficient_scope');
      }
      return caller;
    }
    const allowed = actions.every((a) => policy.allows(identity, repository, a, environment));
    if (identity.kind === 'anonymous' && (!allowed || actions.length === 0)) throw this.challenge(req, repository, actions, 'authentication required', undefined, environment);
    if (!allowed) throw denied(repository, actions);
    if (explicit && environment !== undefined && !policy.grantsExplicitly(identity, repository, `release:${environment}`)) {
      throw new RegistryError(
        'DENIED',
        `${repository}/${environment} is protected: only users and tokens granted release:${environment} on it may change it (the admin role is not enough)`,
        accessDetail(repository, actions),
      );
    }
    if (access && !actions.every((a) => claimCovers(access, repository, a, environment))) {
      throw this.challenge(req, repository, actions, 'the token does not grant this access', 'insufficient_scope', environment);
    }
    return caller;
  }

  canPull(principal: Principal, repository: string): boolean {
    return principal instanceof Caller && principal.policy.allows(principal.identity, repository, 'pull');
  }

  allowed(principal: Principal, repository: string | undefined, action: Action, environment?: string): boolean {
    return principal instanceof Caller && principal.policy.allows(principal.identity, repository, action, environment);
  }

  /** The realm clients fetch tokens from. */
  realm(req: IncomingMessage): string {
    if (this.options.externalUrl) return `${this.options.externalUrl.replace(/\/+$/, '')}/token`;
    return `${this.options.origin.scheme(req)}://${req.headers.host ?? 'localhost'}/token`;
  }

  /** The 401 with Distribution's challenge; its scope names what a token for this request must claim. */
  private challenge(req: IncomingMessage, repository: string | undefined, actions: Action[], message: string, error?: string, environment?: string): RegistryError {
    let value = `Bearer realm=${quote(this.realm(req))},service=${quote(this.options.service)}`;
    // A release to one environment asks for just that (`release:staging`): a CI token holding only that grant
    // would be refused `release` as a whole.
    const asked = actions.map((a) => (a === 'release' && environment !== undefined ? `release:${environment}` : a));
    if (repository !== undefined && actions.length > 0) value += `,scope=${quote(`repository:${repository}:${asked.join(',')}`)}`;
    if (repository === undefined && actions.length > 0) value += `,scope=${quote(actions.map(registryScope).join(' '))}`;
    if (error) value += `,error=${quote(error)}`;
    const err = new RegistryError('UNAUTHORIZED', message, accessDetail(repository, actions));
    err.headers = { 'WWW-Authenticate': value };
    return err;
  }
}

function claimCovers(access: AccessClaim[], repository: string, action: Action, environment?: string): boolean {
  return access.some((c) => c.type === 'repository' && c.name === repository && c.actions.some((g) => covers(g, action, environment)));
}

/** `wharf:admin:*` covers every registry-wide action, `wharf:<action>:*` that one (see registryScope). */
function registryClaimCovers(access: AccessClaim[], action: Action): boolean {
  return access.some((c) => c.type === REGISTRY_CLAIM_TYPE && (c.name === action || c.name === 'admin') && c.actions.includes('*'));
}

function denied(repository: string | undefined, actions: Action[]): RegistryError {
  return new RegistryError('DENIED', 'requested access to the resource is denied', accessDetail(repository, actions));
}

export function rateLimited(e: AuthFailure): RegistryError {
  const err = new RegistryError('TOOMANYREQUESTS', e.message);
  err.retryAfterSeconds = e.retryAfterSeconds ?? 60;
  return err;
}

function accessDetail(repository: string | undefined, actions: Action[]): unknown {
  if (repository === undefined) return null;
  return actions.map((a) => ({ Type: 'repository', Name: repository, Action: a }));
}

function quote(s: string): string {
  return `"${s.replace(/["\\]/g, '\\$&')}"`;
}
