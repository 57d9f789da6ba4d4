// Browser sessions: a password exchanged once for a random session id the browser keeps in a cookie. Only the
// id's SHA-256 is stored; a session ends at its expiry, at sign-out, or when its user is removed or changes
// password (it is bound to the password hash, as refresh tokens are). A CSRF token is derived from the id.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuditLog } from '../audit/audit-log.js';
import { RegistryError } from '../oci/errors.js';
import type { SessionClaim } from './access.js';
import type { SessionCredential } from './access-policy.js';
import type { SessionMetadata } from '../metadata/metadata.js';
import { AuthFailure, type Authenticator } from './authenticator.js';
import type { Identity, Policy } from './policy.js';
import type { PolicySource } from './policy-source.js';

export interface SessionOptions {
  /** how long a session lasts from sign-in */
  ttlMs: number;
}

export interface SignedIn {
  /** the cookie value: 256 random bits, never stored */
  id: string;
  csrf: string;
  user: string;
  expiresAt: number;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');

/** What a session is bound to: a new password, or a new token generation (`wharf user logout`), ends it. */
export const userBinding = (user: { passwordHash: string; tokenGeneration?: number }) => sha256(`session\n${user.passwordHash}\n${user.tokenGeneration ?? 0}`).slice(0, 32);

/** The CSRF token of a session: derived, so it needs no storage, and tells nothing about the id. */
export const csrfTokenOf = (id: string) => sha256(`csrf\n${id}`);

const ID = /^[A-Za-z0-9_-]{43}$/;

function sameSecret(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class Sessions implements SessionCredential {
  private lastSweep = 0;

  constructor(
    private readonly store: SessionMetadata,
    private readonly authn: Authenticator,
    private readonly policies: PolicySource,
    private readonly audit: AuditLog,
    private readonly options: SessionOptions,
  ) {}

  /** Checks the password (rate-limited, failures audited by the authenticator) and opens a session. Users only. */
  async signIn(username: string, password: string, address: string): Promise<SignedIn> {
    const { identity, passwordHash } = await this.authn.login(username, password, address, 'session');
    const user = identity.kind === 'user' ? (await this.policies.current()).users.get(identity.name) : undefined;
    if (identity.kind !== 'user' || passwordHash === undefined || !user) throw new AuthFailure('invalid_credentials', 'sign in with a user name and password; scripts use tokens');
    const id = randomBytes(32).toString('base64url');
    const now = Date.now();
    const expiresAt = now + this.options.ttlMs;
    await this.store.add({ idHash: sha256(id), user: identity.name, binding: userBinding({ ...user, passwordHash }), address, createdAt: now, expiresAt });
    this.sweep(now);
    // The sign-in is the user's own act (the request carried no credential the API's audit could name).
    await this.audit.record({ actor: { name: identity.name, kind: 'user', address }, action: 'session.create', target: identity.name, result: 'ok' });
    return { id, csrf: csrfTokenOf(id), user: identity.name, expiresAt };
  }

  /** The user a session id stands for, if the session is live and its user unchanged. */
  async resolve(id: string, policy: Policy): Promise<Identity | undefined> {
    if (!ID.test(id)) return undefined;
    const row = await this.store.find(sha256(id));
    if (!row || row.expiresAt <= Date.now()) return undefined;
    const user = policy.users.get(row.user);
    if (!user || userBinding(user) !== row.binding) return undefined;
    return { kind: 'user', name: user.name };
  }

  /**
   * A session as a credential of the access check: its user, if it is live and, for a request that changes
   * something, carries the CSRF token in both the header and the readable cookie.
   */
  async verify(claim: SessionClaim, policy: Policy): Promise<Identity> {
    const identity = await this.resolve(claim.id, policy);
    if (!identity) throw new AuthFailure('invalid_token', 'the session has ended: sign in again');
    if (claim.changes) {
      const token = csrfTokenOf(claim.id);
      if (!sameSecret(claim.csrfHeader, token) || !sameSecret(claim.csrfCookie, token)) {
        throw new RegistryError('DENIED', 'missing or wrong CSRF token (X-CSRF-Token): reload the page');
      }
    }
    return identity;
  }

  async signOut(id: string): Promise<boolean> {
    if (!ID.test(id)) return false;
    return this.store.remove(sha256(id));
  }

  /** The policy sessions are checked against (the same one every other credential is). */
  policy(): Promise<Policy> | Policy {
    return this.policies.current();
  }

  /** Expired rows are removed now and then, as sign-ins happen. */
  private sweep(now: number): void {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    void this.store.removeExpired(now).catch(() => undefined);
  }
}
