// Turns credentials into an identity: HTTP Basic (password or robot token secret), Bearer access tokens,
// and refresh tokens. A verified credential is remembered for a short while under a keyed hash of it
// (SHA-256 over a per-process random key and the credential, so neither the secret nor a plain hash of it
// sits in memory), which keeps pull storms from queueing behind scrypt; every remembered entry is
// re-checked against the current policy.
import * as crypto from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit-log.js';
import type { LoginLimiter } from './login-limiter.js';
import { decoyHash, verifyPassword } from './password.js';
import { ANONYMOUS, type Identity, type Policy } from './policy.js';
import type { PolicySource } from './policy-source.js';
import { robotSecretId, robotSecretMatches } from './robot-secret.js';
import { TokenError, type AccessClaim, type TokenService } from './token-service.js';

export interface Verified {
  identity: Identity;
  /** how the caller proved it: nothing, Basic credentials, or a Bearer access token */
  scheme: 'none' | 'basic' | 'bearer';
  /** for a Bearer token: the access it was issued for */
  access?: AccessClaim[];
}

/** Why credentials were refused; the HTTP layer turns it into a 401 (with its challenge) or a 429. */
export class AuthFailure extends Error {
  constructor(
    readonly reason: 'invalid_credentials' | 'invalid_token' | 'rate_limited',
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

interface CacheEntry {
  verified: Verified;
  expiresAt: number;
  /** for a password login: the hash it was checked against (a password change invalidates the entry) */
  passwordHash?: string;
}

export interface AuthenticatorOptions {
  /** how long a verified credential is remembered */
  cacheTtlMs: number;
  maxCacheEntries?: number;
}

/** One-shot SHA-256 (Node ≥ 20.12) is a third of createHmac's cost, which shows on every cached request. */
const oneShotHash = (crypto as { hash?: (alg: string, data: string, enc: 'base64') => string }).hash;
function sha256(data: string): string {
  return oneShotHash ? oneShotHash('sha256', data, 'base64') : createHash('sha256').update(data).digest('base64');
}

/** The subject of a JWT issued to a robot token (user names cannot contain ':'). */
export function tokenSubject(id: string): string {
  return `token:${id}`;
}

/** What a refresh token is bound to: the password hash for a user (a new password ends old logins). */
function bindingOf(identity: Identity, policy: Policy): string {
  if (identity.kind !== 'user') return identity.kind === 'token' ? identity.id : '';
  return createHash('sha256').update(policy.users.get(identity.name)!.passwordHash).digest('hex').slice(0, 32);
}

const ANONYMOUS_CALLER: Verified = { identity: ANONYMOUS, scheme: 'none' };

export class Authenticator {
  /** Prefix-keyed SHA-256 is a sound keyed hash for this: the cache keys never leave the process. */
  private readonly cacheKey = `${randomBytes(32).toString('base64')}\n`;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inflight = new Map<string, Promise<CacheEntry>>();

  constructor(
    private readonly policies: PolicySource,
    private readonly tokens: TokenService,
    private readonly limiter: LoginLimiter,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    private readonly options: AuthenticatorOptions,
  ) {}

  /**
   * Resolves an Authorization header (absent: anonymous). Synchronous when the credential is remembered,
   * which is nearly always on a busy server; otherwise a promise rejecting with AuthFailure.
   */
  identify(header: string | undefined, address: string, policy: Policy): Verified | Promise<Verified> {
    if (header === undefined || header === '') return ANONYMOUS_CALLER;
    const key = sha256(this.cacheKey + header);
    const hit = this.cache.get(key);
    if (hit && hit.expiresAt > Date.now() && this.stillValid(hit, policy)) return hit.verified;
    if (hit) this.cache.delete(key);

    // Concurrent requests with the same new credential share one verification.
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = this.verify(header, address, policy).finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending.then((entry) => {
      this.remember(key, entry);
      return entry.verified;
    });
  }

  /** Checks a user name and password (or robot token secret), with rate limiting; throws AuthFailure. */
  async login(username: string, password: string, address: string, via: string): Promise<{ identity: Identity; passwordHash?: string }> {
    const tokenId = robotSecretId(password);
    const limitKey = tokenId === undefined ? username : tokenSubject(tokenId);
    const retryAfter = this.limiter.blocked(limitKey, address);
    if (retryAfter !== undefined) throw new AuthFailure('rate_limited', 'too many failed logins; try again later', retryAfter);

    const policy = await this.policies.current();
    let result = await this.check(username, password, tokenId, policy);
    if (!result) {
      // The account may have been created or changed a moment ago by the CLI: look again before refusing.
      this.policies.invalidate();
      const fresh = await this.policies.current();
      const row = (p: Policy) => (tokenId === undefined ? p.users.get(username)?.passwordHash : p.tokens.get(tokenId)?.secretHash);
      if (row(fresh) !== row(policy)) result = await this.check(username, password, tokenId, fresh);
    }
    if (!result) {
      const locked = this.limiter.failed(limitKey, address);
      const actor = { name: tokenId === undefined ? username : (policy.tokens.get(tokenId)?.name ?? tokenId), kind: tokenId === undefined ? 'user' : 'token', address } as const;
      this.audit
        .record({ actor, action: 'login.failure', result: 'denied', detail: { via, ...(locked ? { locked: true } : {}) } })
        .catch((err) => this.log.error({ err }, 'audit write failed'));
      throw new AuthFailure('invalid_credentials', 'incorrect username or password');
    }
    this.limiter.succeeded(limitKey);
    return result;
  }

  /** Verifies a refresh token and that its subject still stands as it did when it was issued. */
  async refresh(refreshToken: string): Promise<Identity> {
    let verified;
    try {
      verified = await this.tokens.verifyRefresh(refreshToken);
    } catch (e) {
      throw new AuthFailure('invalid_token', `invalid refresh token: ${(e as Error).message}`);
    }
    const policy = await this.policies.current();
    const identity = this.identityOf(verified.subject, policy);
    if (!identity || identity.kind === 'anonymous' || !policy.isCurrent(identity) || bindingOf(identity, policy) !== verified.binding) {
      throw new AuthFailure('invalid_token', 'refresh token no longer valid');
    }
    return identity;
  }

  async refreshTokenFor(identity: Identity): Promise<string | undefined> {
    if (identity.kind === 'anonymous') return undefined;
    const policy = await this.policies.current();
    return this.tokens.issueRefresh(identity.kind === 'user' ? identity.name : tokenSubject(identity.id), bindingOf(identity, policy));
  }

  /** The identity a JWT subject names, if it still exists. */
  identityOf(subject: string, policy: Policy): Identity | undefined {
    if (subject === '') return ANONYMOUS;
    if (subject.startsWith('token:')) {
      const t = policy.tokens.get(subject.slice('token:'.length));
      return t && { kind: 'token', id: t.id, name: t.name };
    }
    return policy.users.has(subject) ? { kind: 'user', name: subject } : undefined;
  }

  private async verify(header: string, address: string, policy: Policy): Promise<CacheEntry> {
    const space = header.indexOf(' ');
    const scheme = header.slice(0, space).toLowerCase();
    const value = header.slice(space + 1).trim();
    if (space > 0 && scheme === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new AuthFailure('invalid_credentials', 'malformed Basic credentials');
      const { identity, passwordHash } = await this.login(decoded.slice(0, colon), decoded.slice(colon + 1), address, 'basic');
      return { verified: { identity, scheme: 'basic' }, expiresAt: Date.now() + this.options.cacheTtlMs, passwordHash };
    }
    if (space > 0 && scheme === 'bearer') {
      let token;
      try {
        token = await this.tokens.verifyAccess(value);
      } catch (e) {
        throw new AuthFailure('invalid_token', e instanceof TokenError ? `invalid token: ${e.message}` : 'invalid token');
      }
      const identity = this.identityOf(token.subject, policy);
      if (!identity || !policy.isCurrent(identity)) throw new AuthFailure('invalid_token', 'the token’s subject no longer exists');
      return { verified: { identity, scheme: 'bearer', access: token.access }, expiresAt: Math.min(token.expiresAt, Date.now() + this.options.cacheTtlMs) };
    }
    throw new AuthFailure('invalid_credentials', 'unsupported authorization scheme');
  }

  private async check(username: string, password: string, tokenId: string | undefined, policy: Policy): Promise<{ identity: Identity; passwordHash?: string } | undefined> {
    if (tokenId !== undefined) {
      const t = policy.tokens.get(tokenId);
      if (!t || !robotSecretMatches(password, t.secretHash)) return undefined;
      const identity: Identity = { kind: 'token', id: t.id, name: t.name };
      return policy.isCurrent(identity) ? { identity } : undefined;
    }
    const user = policy.users.get(username);
    const ok = await verifyPassword(password, user?.passwordHash ?? (await decoyHash()));
    return user && ok ? { identity: { kind: 'user', name: user.name }, passwordHash: user.passwordHash } : undefined;
  }

  private stillValid(entry: CacheEntry, policy: Policy): boolean {
    const { identity } = entry.verified;
    if (!policy.isCurrent(identity)) return false;
    return entry.passwordHash === undefined || (identity.kind === 'user' && policy.users.get(identity.name)?.passwordHash === entry.passwordHash);
  }

  private remember(key: string, entry: CacheEntry): void {
    if (this.cache.size >= (this.options.maxCacheEntries ?? 10_000)) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, entry);
  }
}
