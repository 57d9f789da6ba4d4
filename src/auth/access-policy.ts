// The access decision over plain credentials: who is calling (Basic, Bearer, session or nobody), and may they
// do this? No or bad credentials → 401 with the Bearer challenge Distribution sends (realm, service, scope);
// a Bearer token issued for less than this request needs → 401 insufficient_scope (the client fetches a
// better token) if the caller could get one, else 403 DENIED; a known caller without the grant → 403.
import { RegistryError } from '../oci/errors.js';
import { registryScope, type AccessCheck, type Action, type Credentials, type Principal, type SessionClaim } from './access.js';
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
    readonly credential?: Principal['credential'],
    /** what a Bearer access token claims (absent for every other credential: their grants alone decide) */
    readonly claims?: AccessClaim[],
  ) {
    this.kind = identity.kind;
    // What a personal token does is its maker's doing: releases, tag moves and the audit name the user.
    this.name = identity.kind === 'anonymous' ? null : (policy.makerOf(identity) ?? identity.name);
  }
}

export interface AccessPolicyOptions {
  service: string;
}

/**
 * A second source of credentials beside the Authorization header: the browser's session. The session's user,
 * or a rejection (AuthFailure for a dead session, RegistryError DENIED for a change without its CSRF token).
 */
export interface SessionCredential {
  verify(claim: SessionClaim, policy: Policy): Promise<Identity>;
}

export class AccessPolicy implements AccessCheck {
  constructor(
    private readonly policies: PolicySource,
    private readonly authn: Authenticator,
    private readonly options: AccessPolicyOptions,
    private readonly sessions?: SessionCredential,
  ) {}

  async authorize(credentials: Credentials, repository: string | undefined, actions: Action[], environment?: string, explicit = false): Promise<Principal> {
    // Both are plain values on the hot path (fresh policy, remembered credential): no await then, and no
    // client address either (only logins and the audit of changes need it).
    const current = this.policies.current();
    const policy = current instanceof Policy ? current : await current;
    const header = credentials.authorization;
    const claim = header === undefined && this.sessions !== undefined ? credentials.session() : undefined;
    const session = claim === undefined ? undefined : this.sessions!.verify(claim, policy);
    let verified = session === undefined ? this.authn.recall(header, policy, () => credentials.address()) : undefined;
    if (session !== undefined) {
      try {
        verified = { identity: await session, scheme: 'session' };
      } catch (e) {
        if (!(e instanceof AuthFailure)) throw e;
        throw this.challenge(credentials, repository, actions, e.message, 'invalid_token');
      }
    } else if (verified === undefined) {
      try {
        verified = await this.authn.identify(header, credentials.address(), policy);
      } catch (e) {
        if (!(e instanceof AuthFailure)) throw e;
        if (e.reason === 'rate_limited') throw rateLimited(e);
        throw this.challenge(credentials, repository, actions, e.message, e.reason === 'invalid_token' ? 'invalid_token' : undefined);
      }
    }
    const { identity } = verified;
    const caller = new Caller(identity, policy, verified.scheme, verified.access);
    credentials.caller = caller;

    const access = verified.access;
    if (repository === undefined) {
      // The base endpoint and the catalog only need a caller who proved something; anonymous callers with
      // a token (for public repositories) count, bare anonymous requests get the challenge.
      if (identity.kind === 'anonymous' && (verified.scheme === 'none' || actions.length > 0)) throw this.challenge(credentials, undefined, actions, 'authentication required');
      if (!actions.every((a) => policy.allows(identity, undefined, a, environment))) throw denied(undefined, actions);
      // A registry-wide action needs its own claim: an admin's token issued to pull one repository (or for
      // nothing at all, as docker's login asks) is not an admin's credential.
      if (access && !actions.every((a) => registryClaimCovers(access, a))) {
        throw this.challenge(credentials, undefined, actions, 'the token does not grant this access', 'insufficient_scope');
      }
      return caller;
    }
    const allowed = actions.every((a) => policy.allows(identity, repository, a, environment));
    if (identity.kind === 'anonymous' && (!allowed || actions.length === 0)) throw this.challenge(credentials, repository, actions, 'authentication required', undefined, environment);
    if (!allowed) throw denied(repository, actions);
    if (explicit && environment !== undefined && !policy.grantsExplicitly(identity, repository, `release:${environment}`)) {
      throw new RegistryError(
        'DENIED',
        `${repository}/${environment} is protected: only users and tokens granted release:${environment} on it may change it (the admin role is not enough)`,
        accessDetail(repository, actions),
      );
    }
    if (access && !actions.every((a) => claimCovers(access, repository, a, environment))) {
      throw this.challenge(credentials, repository, actions, 'the token does not grant this access', 'insufficient_scope', environment);
    }
    return caller;
  }

  async authorizeCatalog(credentials: Credentials): Promise<Principal> {
    let caller: Principal;
    try {
      caller = await this.authorize(credentials, undefined, []);
    } catch (e) {
      // The challenge names the scope to fetch, so a client comes back with a token that may list.
      if (e instanceof RegistryError && e.code === 'UNAUTHORIZED' && e.headers?.['WWW-Authenticate']) {
        e.headers['WWW-Authenticate'] = withScope(e.headers['WWW-Authenticate'], CATALOG_SCOPE);
      }
      throw e;
    }
    const claims = caller instanceof Caller ? caller.claims : undefined;
    if (claims && !claims.some((c) => c.type === 'registry' && c.name === 'catalog' && c.actions.includes('*'))) {
      const err = this.challenge(credentials, undefined, [], `the token does not grant listing the catalog (${CATALOG_SCOPE})`, 'insufficient_scope');
      err.headers = { 'WWW-Authenticate': withScope(err.headers!['WWW-Authenticate']!, CATALOG_SCOPE) };
      throw err;
    }
    return caller;
  }

  canPull(principal: Principal, repository: string): boolean {
    return principal instanceof Caller && principal.policy.allows(principal.identity, repository, 'pull');
  }

  allowed(principal: Principal, repository: string | undefined, action: Action, environment?: string, explicit = false): boolean {
    if (!(principal instanceof Caller) || !principal.policy.allows(principal.identity, repository, action, environment)) return false;
    // The same rule as authorize's for a protected environment, so the UI offers what the server would accept.
    if (explicit && repository !== undefined && environment !== undefined) return principal.policy.grantsExplicitly(principal.identity, repository, `release:${environment}`);
    return true;
  }

  /** The 401 with Distribution's challenge; its scope names what a token for this request must claim. */
  private challenge(credentials: Credentials, repository: string | undefined, actions: Action[], message: string, error?: string, environment?: string): RegistryError {
    let value = `Bearer realm=${quote(credentials.realm())},service=${quote(this.options.service)}`;
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

/** The scope a token needs to list the catalog, as Distribution names it. */
const CATALOG_SCOPE = 'registry:catalog:*';

/** A Bearer challenge with `scope` added (before its `error`, where Distribution puts it). */
function withScope(challenge: string, scope: string): string {
  if (challenge.includes(',scope=')) return challenge;
  const at = challenge.indexOf(',error=');
  const part = `,scope=${quote(scope)}`;
  return at < 0 ? challenge + part : challenge.slice(0, at) + part + challenge.slice(at);
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
