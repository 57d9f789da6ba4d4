// Turns credentials into an identity: HTTP Basic (password or robot token secret), Bearer access tokens,
// and refresh tokens. A verified credential is remembered for a short while, which keeps pull storms from
// queueing behind scrypt and ES256: Basic credentials under a keyed hash (SHA-256 over a per-process random
// key and the header, so neither the password nor a plain hash of it sits in memory), Bearer access tokens
// under the token itself (see identify). Every remembered entry is re-checked whenever the policy changes.
import * as crypto from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Actor, AuditLog } from '../audit/audit-log.js';
import type { LoginLimiter } from './login-limiter.js';
import { decoyHash, scryptParams, verifyPassword } from './password.js';
import { ANONYMOUS, type Identity, type Policy } from './policy.js';
import type { PolicySource } from './policy-source.js';
import { robotSecretId, robotSecretMatches } from './robot-secret.js';
import { sipHash53, sipKey } from './siphash.js';
import { TokenError, type AccessClaim, type TokenService } from './token-service.js';

export interface Verified {
  identity: Identity;
  /** how the caller proved it: nothing, Basic credentials, a Bearer access token, or a browser session */
  scheme: 'none' | 'basic' | 'bearer' | 'session';
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
  /** the earliest of: the cache TTL, the access token's expiry, the robot token's expiry */
  expiresAt: number;
  /** for a password login: the hash it was checked against (a password change invalidates the entry) */
  passwordHash?: string;
  /** for a user: the token generation it was verified under (a password change or ended sessions invalidate it) */
  generation?: number;
  /** the last policy the entry was found valid under: re-checked only when the policy is replaced */
  checkedAgainst?: Policy;
  /** for an access token: the whole Authorization header, which a request's must equal */
  bearer?: string;
  /** for an access token: the key that signed it (a retired key's tokens stop answering) */
  kid?: string;
  /** for Basic credentials: the name login throttling counts them under (see recall) */
  limitKey?: string;
  /** a password login being verified again before it expires */
  renewing?: boolean;
}

/** How many trailing characters of a Bearer header find its cache entry (96 bits of the signature). */
const BEARER_KEY_LENGTH = 16;

export interface LoginResult {
  identity: Identity;
  /** for a password: the hash it was checked against */
  passwordHash?: string;
  /** for a robot token that expires: when */
  tokenExpiresAt?: number;
  /** for a user: the token generation the password was checked under */
  generation?: number;
}

export interface AuthenticatorOptions {
  /** how long a verified credential is remembered */
  cacheTtlMs: number;
  maxCacheEntries?: number;
  /** the clock remembered credentials expire by (tests move it instead of waiting) */
  now?: () => number;
  /** scrypt's cost (log2 N) of new passwords: an unknown user's name is checked against a hash of that cost */
  passwordCost?: number;
}

/** Where a credential is remembered: see Authenticator.keyOf. */
type CacheKey = string | number;

/** One-shot SHA-256 (Node ≥ 20.12) is a third of createHmac's cost, which shows on every cached request. */
const oneShotHash = (crypto as { hash?: (alg: string, data: string, enc: 'base64') => string }).hash;
function sha256(data: string): string {
  return oneShotHash ? oneShotHash('sha256', data, 'base64') : createHash('sha256').update(data).digest('base64');
}

/** The subject of a JWT issued to a robot token (user names cannot contain ':'). */
export function tokenSubject(id: string): string {
  return `token:${id}`;
}

/**
 * What a refresh token is bound to: for a user the password hash and the token generation (a new password, or
 * ended sessions, end old logins). Generation 0 (a user untouched since generations came) binds as before.
 */
function bindingOf(identity: Identity, policy: Policy): string {
  if (identity.kind !== 'user') return identity.kind === 'token' ? identity.id : '';
  const user = policy.users.get(identity.name)!;
  const bound = user.tokenGeneration === 0 ? user.passwordHash : `${user.passwordHash}\n${user.tokenGeneration}`;
  return createHash('sha256').update(bound).digest('hex').slice(0, 32);
}

/** A user's token generation in `policy` (undefined for robot tokens and anonymous callers, which have none). */
export function generationOf(identity: Identity, policy: Policy): number | undefined {
  return identity.kind === 'user' ? policy.users.get(identity.name)?.tokenGeneration : undefined;
}

const ANONYMOUS_CALLER: Verified = { identity: ANONYMOUS, scheme: 'none' };

/** `Bearer …`, the scheme in any case, without allocating. */
function isBearer(header: string): boolean {
  if (header.length < 8 || header.charCodeAt(6) !== 32) return false;
  for (let i = 0; i < 6; i++) if ((header.charCodeAt(i) | 0x20) !== 'bearer'.charCodeAt(i)) return false;
  return true;
}

/** When a robot token stops being valid by time (Infinity for users and tokens that do not expire). */
function robotExpiry(identity: Identity, policy: Policy): number {
  if (identity.kind !== 'token') return Infinity;
  return policy.tokens.get(identity.id)?.expiresAt ?? Infinity;
}

export class Authenticator {
  /** Prefix-keyed SHA-256 is a sound keyed hash for this: the cache keys never leave the process. */
  private readonly cacheKey = `${randomBytes(32).toString('base64')}\n`;
  /** The key of the SipHash that Basic credentials are remembered under. */
  private readonly sipKey = sipKey(randomBytes);
  private readonly cache = new Map<CacheKey, CacheEntry>();
  private readonly inflight = new Map<CacheKey, Promise<CacheEntry>>();
  private readonly now: () => number;
  /** how many passwords were checked with scrypt: what remembering credentials saves */
  passwordVerifications = 0;

  constructor(
    private readonly policies: PolicySource,
    private readonly tokens: TokenService,
    private readonly limiter: LoginLimiter,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    private readonly options: AuthenticatorOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /**
   * The caller an Authorization header (absent: anonymous) names, if the credential is remembered and still
   * stands — nearly always on a busy server. Synchronous and cheap: this is every request's path. Undefined
   * when the header must be verified (identify). `address` (the client's) is asked for only when a password
   * login is renewed.
   */
  recall(header: string | undefined, policy: Policy, address: () => string): Verified | undefined {
    if (header === undefined || header === '') return ANONYMOUS_CALLER;
    const bearer = isBearer(header);
    const key = this.keyOf(header, bearer);
    const hit = this.cache.get(key);
    if (hit === undefined || (bearer && hit.bearer !== header)) return undefined;
    if (!this.stillValid(hit, policy)) {
      this.cache.delete(key);
      return undefined;
    }
    // While a login delay runs, remembered Basic credentials answer only where a login would be tried: else a
    // guesser inside a delay could tell the one right password (remembered from its owner's use) from the
    // wrong ones. Verified again, they get the delay's 429 like any other attempt.
    if (hit.limitKey !== undefined && this.limiter.delaying() && this.limiter.blocked(hit.limitKey, address()) !== undefined) return undefined;
    // A password login in the last quarter of its time is verified again in the background, while it still
    // answers: otherwise every client using it would wait together for scrypt once it expired.
    if (hit.passwordHash !== undefined && !hit.renewing && hit.expiresAt - this.now() < this.options.cacheTtlMs / 4) this.renew(key, header, hit, address(), policy);
    return hit.verified;
  }

  /**
   * Resolves an Authorization header (absent: anonymous): as recall does when it can, else by verifying it,
   * as a promise rejecting with AuthFailure. `address` is the client's, for login rate limits and the audit.
   */
  identify(header: string | undefined, address: string, policy: Policy): Verified | Promise<Verified> {
    const remembered = this.recall(header, policy, () => address);
    if (remembered !== undefined) return remembered;
    const credential = header!;
    const bearer = isBearer(credential);
    const key = this.keyOf(credential, bearer);
    // Concurrent requests with the same new credential share one verification.
    const flight = bearer ? credential : key;
    let pending = this.inflight.get(flight);
    if (!pending) {
      pending = this.verify(credential, address, policy).finally(() => this.inflight.delete(flight));
      this.inflight.set(flight, pending);
    }
    return pending.then((entry) => {
      this.remember(key, bearer ? { ...entry, bearer: credential } : entry);
      return entry.verified;
    });
  }

  /**
   * Remembers an access token this server has just issued as verified: the client's first request with it
   * then skips the ES256 check, which in a pull storm waits in libuv's thread pool behind the blob reads.
   * Its claims are known without verifying: they were just signed here.
   */
  rememberIssued(token: string, kid: string, identity: Identity, access: AccessClaim[], expiresAt: number, policy: Policy): void {
    const header = `Bearer ${token}`;
    const verified: Verified = { identity, scheme: 'bearer', access };
    this.remember(this.keyOf(header, true), {
      verified,
      expiresAt: Math.min(expiresAt, this.now() + this.options.cacheTtlMs, robotExpiry(identity, policy)),
      bearer: header,
      kid,
      generation: generationOf(identity, policy),
    });
  }

  /**
   * Where a credential is remembered. An access token is remembered as itself: it lives minutes, and this
   * process holds the key that signs them, so the string tells a reader of this memory nothing it could not
   * mint itself. It is found by its last characters (the end of its ES256 signature, random) and then
   * compared whole: hashing all of its ~600 bytes, with SHA-256 or even as a Map key, would cost more than
   * the rest of the access check. Basic credentials are long-lived secrets: only their keyed hash is kept.
   */
  private keyOf(header: string, bearer: boolean): CacheKey {
    if (bearer) return header.slice(-BEARER_KEY_LENGTH);
    // 53 bits of SipHash-2-4 under a random per-process key, as a number (no string to build and hash per request).
    // Hitting another caller's entry would take about 2^53 / entries guesses, each of them a failed login the
    // limiter counts. A header with a char wider than a byte (Node's parser never makes one) takes the keyed SHA-256.
    return sipHash53(this.sipKey, header) ?? sha256(this.cacheKey + header);
  }

  /** Checks a user name and password (or robot token secret), with rate limiting; throws AuthFailure. */
  async login(username: string, password: string, address: string, via: string): Promise<LoginResult> {
    const tokenId = robotSecretId(password);
    const limitKey = tokenId === undefined ? username : tokenSubject(tokenId);
    const retryAfter = await this.limiter.check(limitKey, address);
    if (retryAfter !== undefined) throw new AuthFailure('rate_limited', `too many failed logins from this address; try again in ${retryAfter} s`, retryAfter);

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
      const delayed = await this.limiter.fail(limitKey, address);
      const actor = { name: tokenId === undefined ? username : (policy.tokens.get(tokenId)?.name ?? tokenId), kind: tokenId === undefined ? 'user' : 'token', address } as const;
      this.loginFailed(actor, { via, ...(delayed !== undefined ? { delayedSeconds: delayed } : {}) });
      throw new AuthFailure('invalid_credentials', 'incorrect username or password');
    }
    await this.limiter.succeed(limitKey, address);
    return result;
  }

  /** Verifies a refresh token (docker's stored login) and that its subject still stands as it did when it was issued. */
  async refresh(refreshToken: string, address: string): Promise<Identity> {
    let verified;
    try {
      verified = await this.tokens.verifyRefresh(refreshToken);
    } catch (e) {
      this.loginFailed({ name: 'unknown', kind: 'anonymous', address }, { via: 'refresh_token', reason: 'invalid token' });
      throw new AuthFailure('invalid_token', `invalid refresh token: ${(e as Error).message}`);
    }
    const policy = await this.policies.current();
    const identity = this.identityOf(verified.subject, policy);
    if (!identity || identity.kind === 'anonymous' || !policy.isCurrent(identity) || bindingOf(identity, policy) !== verified.binding) {
      const subject = verified.subject.startsWith('token:') ? { name: verified.subject.slice('token:'.length), kind: 'token' as const } : { name: verified.subject, kind: 'user' as const };
      this.loginFailed({ ...subject, address }, { via: 'refresh_token', reason: 'no longer valid' });
      throw new AuthFailure('invalid_token', 'refresh token no longer valid');
    }
    return identity;
  }

  /** One audit row per refused login; written in the background (the refusal does not wait for it). */
  private loginFailed(actor: Actor, detail: Record<string, unknown>): void {
    this.audit.record({ actor, action: 'login.failure', result: 'denied', detail }).catch((err) => this.log.error({ err }, 'audit write failed'));
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
      const { identity, passwordHash, tokenExpiresAt, generation } = await this.login(decoded.slice(0, colon), decoded.slice(colon + 1), address, 'basic');
      const limitKey = identity.kind === 'token' ? tokenSubject(identity.id) : decoded.slice(0, colon);
      return { verified: { identity, scheme: 'basic' }, expiresAt: Math.min(this.now() + this.options.cacheTtlMs, tokenExpiresAt ?? Infinity), passwordHash, generation, limitKey };
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
      // A token from before the user's last password change (or ended sessions) is void, however long it has
      // left. Tokens without the claim predate generations: they stand while the user is still at 0.
      const generation = generationOf(identity, policy);
      if (generation !== undefined && (token.generation ?? 0) !== generation) throw new AuthFailure('invalid_token', 'the token was revoked (the password changed or sessions were ended)');
      const expiresAt = Math.min(token.expiresAt, this.now() + this.options.cacheTtlMs, robotExpiry(identity, policy));
      return { verified: { identity, scheme: 'bearer', access: token.access }, expiresAt, generation, kid: token.kid };
    }
    throw new AuthFailure('invalid_credentials', 'unsupported authorization scheme');
  }

  private async check(username: string, password: string, tokenId: string | undefined, policy: Policy): Promise<LoginResult | undefined> {
    if (tokenId !== undefined) {
      const t = policy.tokens.get(tokenId);
      if (!t || !robotSecretMatches(password, t.secretHash)) return undefined;
      const identity: Identity = { kind: 'token', id: t.id, name: t.name };
      return policy.isCurrent(identity) ? { identity, tokenExpiresAt: t.expiresAt ?? undefined } : undefined;
    }
    const user = policy.users.get(username);
    const ok = await verifyPassword(password, user?.passwordHash ?? (await decoyHash(scryptParams(this.options.passwordCost))));
    this.passwordVerifications++;
    return user && ok ? { identity: { kind: 'user', name: user.name }, passwordHash: user.passwordHash, generation: user.tokenGeneration } : undefined;
  }

  /**
   * Whether a remembered credential still stands: not expired, and its subject unchanged in `policy`. Users,
   * tokens and passwords change only with a new policy, so that part is checked once per policy; a robot
   * token's own expiry is part of expiresAt.
   */
  private stillValid(entry: CacheEntry, policy: Policy): boolean {
    if (entry.expiresAt <= this.now()) return false;
    // Keys are retired apart from the policy (wharf keys rotate --retire): checked on every use, a Map lookup.
    if (entry.kid !== undefined && !this.tokens.trusts(entry.kid)) return false;
    if (entry.checkedAgainst === policy) return true;
    const { identity } = entry.verified;
    if (!policy.isCurrent(identity)) return false;
    if (entry.passwordHash !== undefined && !(identity.kind === 'user' && policy.users.get(identity.name)?.passwordHash === entry.passwordHash)) return false;
    if (entry.generation !== undefined && generationOf(identity, policy) !== entry.generation) return false;
    entry.checkedAgainst = policy;
    return true;
  }

  /** Verifies a remembered credential again; the new entry replaces it, or a refusal drops it. */
  private renew(key: CacheKey, header: string, entry: CacheEntry, address: string, policy: Policy): void {
    entry.renewing = true;
    this.verify(header, address, policy).then(
      (fresh) => {
        if (this.cache.get(key) === entry) this.remember(key, fresh);
      },
      () => {
        if (this.cache.get(key) === entry) this.cache.delete(key);
      },
    );
  }

  private remember(key: CacheKey, entry: CacheEntry): void {
    if (this.cache.size >= (this.options.maxCacheEntries ?? 10_000)) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, entry);
  }
}
