// The token service of the Docker token flow: short-lived ES256 JWTs (Distribution's claim set, with the
// key id in the header) and refresh tokens for `docker login`, signed by the current one of the signing keys every
// instance shares in the database. Rotation (`wharf keys rotate`) makes a new current key; the keys before it still
// verify the tokens they signed until those have expired, or until they are retired. Verification trusts only
// those keys, by id, and refuses other algorithms (so `alg: none`), other audiences and issuers, and tokens
// outside their validity window.
import { createPrivateKey, createPublicKey, randomBytes, sign as cryptoSign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, jwtVerify, type JWK, type JWTPayload } from 'jose';
import type { NewSigningKey, SigningKeyMetadata, SigningKeyRow } from '../metadata/metadata.js';

const ALG = 'ES256';
/** Leeway for clocks of clients and servers that disagree a little. */
const CLOCK_TOLERANCE_S = 5;
const MAX_TOKEN_LENGTH = 16 * 1024;
/** How often a token naming a key this instance does not know makes it read the keys again (at most). */
const UNKNOWN_KID_RELOAD_MS = 250;

/** One entry of the `access` claim, as Distribution defines it. */
export interface AccessClaim {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenServiceOptions {
  service: string;
  issuer: string;
  accessTtlMs: number;
  refreshTtlMs: number;
  /**
   * How stale this instance's view of the keys may be: a rotation or retirement made through another instance (or
   * the CLI) is in force here within this (default 1 s). A token of a key made since is verified at once.
   */
  keyRefreshMs?: number;
}

export interface IssuedToken {
  token: string;
  expiresIn: number;
  issuedAt: string;
  /** the key that signed it */
  kid: string;
}

export interface VerifiedAccess {
  /** '' for an anonymous token */
  subject: string;
  access: AccessClaim[];
  expiresAt: number;
  /** the subject's token generation when it was issued (users only; absent in tokens from before generations) */
  generation?: number;
  /** the key that signed it */
  kid: string;
}

export interface VerifiedRefresh {
  subject: string;
  /** what the token is bound to (a fingerprint of the password hash), checked by the caller */
  binding: string;
  expiresAt: number;
}

/** A signing key as `wharf keys list` shows it (never its private half). */
export interface SigningKeyInfo {
  kid: string;
  algorithm: string;
  /** signing: signs new tokens; verifying: only verifies the tokens it signed; retired: trusted no more */
  state: 'signing' | 'verifying' | 'retired';
  createdAt: number;
  supersededAt: number | null;
  /** when its tokens stop being accepted (null while it signs); retiredAt once retired */
  trustedUntil: number | null;
  retiredAt: number | null;
}

interface KeySet {
  kid: string;
  privateKey: KeyObject;
  /** by kid: the public key, and until when its tokens are accepted */
  trusted: Map<string, { key: KeyObject; until: number }>;
  loadedAt: number;
}

/** The key file of data directories from before the keys moved into the database: imported as the first key. */
interface LegacyKeyFile {
  kid: string;
  alg: typeof ALG;
  privateJwk: JWK;
}

export class TokenError extends Error {}

export class TokenService {
  private set: KeySet;
  private loading: Promise<KeySet> | undefined;
  /** when a token of an unknown key last made this instance read the keys */
  private forcedAt = 0;
  private readonly refreshMs: number;
  /** public keys by kid, made once: rows are re-read every refresh, keys are not re-parsed */
  private readonly publicKeys = new Map<string, KeyObject>();

  private constructor(
    private readonly store: SigningKeyMetadata,
    readonly options: TokenServiceOptions,
    rows: SigningKeyRow[],
    /** the key file an older Wharf kept in the data directory (imported as the first key) */
    private readonly legacyFile: string,
  ) {
    this.refreshMs = options.keyRefreshMs ?? 1_000;
    this.set = this.keySet(rows, Date.now());
  }

  /**
   * The keys of the database, made on first use: from `<dataDir>/auth/signing-key.json` when an older Wharf left
   * one there (tokens it issued stay valid), else generated. Of several instances starting at once, one key wins.
   */
  static async open(store: SigningKeyMetadata, dataDir: string, options: TokenServiceOptions): Promise<TokenService> {
    const legacyFile = join(dataDir, 'auth', 'signing-key.json');
    let rows = await store.keys();
    if (rows.length === 0) {
      await store.createFirst((await legacyKey(legacyFile)) ?? (await newKey()));
      rows = await store.keys();
    }
    return new TokenService(store, options, rows, legacyFile);
  }

  /** How long after a key stops signing its tokens can still be valid: the longest token lifetime. */
  private get lifetimeMs(): number {
    return Math.max(this.options.accessTtlMs, this.options.refreshTtlMs) + CLOCK_TOLERANCE_S * 1000;
  }

  private keySet(rows: SigningKeyRow[], now: number): KeySet {
    const trusted = new Map<string, { key: KeyObject; until: number }>();
    let signing: SigningKeyRow | undefined;
    for (const row of rows) {
      const until = this.trustedUntil(row);
      if (until !== null && until <= now) continue;
      let key = this.publicKeys.get(row.kid);
      if (!key) {
        key = createPublicKey({ key: JSON.parse(row.public_jwk) as JsonWebKey, format: 'jwk' });
        this.publicKeys.set(row.kid, key);
      }
      trusted.set(row.kid, { key, until: until ?? Infinity });
      if (row.private_jwk !== null && row.retired_at === null && (!signing || row.seq > signing.seq)) signing = row;
    }
    if (!signing) throw new Error('no token signing key: run `wharf keys rotate` to make one');
    const privateKey = createPrivateKey({ key: JSON.parse(signing.private_jwk!) as JsonWebKey, format: 'jwk' });
    return { kid: signing.kid, privateKey, trusted, loadedAt: now };
  }

  /** Until when tokens of `row` are accepted: null while it signs. */
  private trustedUntil(row: SigningKeyRow): number | null {
    if (row.retired_at !== null) return row.retired_at;
    return row.superseded_at === null ? null : row.superseded_at + this.lifetimeMs;
  }

  /** The keys, read again first when older than the refresh interval (concurrent callers share one read). */
  private keys(force = false): KeySet | Promise<KeySet> {
    const now = Date.now();
    if (force) {
      // A flood of made-up key ids costs the database at most one read per UNKNOWN_KID_RELOAD_MS.
      if (now - this.forcedAt < UNKNOWN_KID_RELOAD_MS) return this.loading ?? this.set;
      this.forcedAt = now;
    } else if (now - this.set.loadedAt < this.refreshMs) return this.set;
    // The database unreachable for a moment: verify and sign with the keys known (read again at the next call).
    return (this.loading ??= this.store
      .keys()
      .then(
        (rows) => (this.set = this.keySet(rows, Date.now())),
        () => this.set,
      )
      .finally(() => (this.loading = undefined)));
  }

  /**
   * Whether tokens of key `kid` are still accepted, as far as this instance knows now (synchronous: remembered
   * credentials are checked with it on every request). A stale view is read again in the background.
   */
  trusts(kid: string): boolean {
    const now = Date.now();
    if (now - this.set.loadedAt >= this.refreshMs && !this.loading) void Promise.resolve(this.keys()).catch(() => undefined);
    const entry = this.set.trusted.get(kid);
    return entry !== undefined && entry.until > now;
  }

  /** Every key, oldest first, with its state. */
  async list(): Promise<SigningKeyInfo[]> {
    const now = Date.now();
    const rows = await this.store.keys();
    const current = this.keySet(rows, now).kid;
    return rows.map((row) => {
      const until = this.trustedUntil(row);
      return {
        kid: row.kid,
        algorithm: row.algorithm,
        state: row.kid === current ? 'signing' : until !== null && until <= now ? 'retired' : 'verifying',
        createdAt: row.created_at,
        supersededAt: row.superseded_at,
        trustedUntil: until,
        retiredAt: row.retired_at,
      };
    });
  }

  /**
   * Makes a new key the signing key for every instance; the previous ones keep verifying their tokens until those
   * expire, or (`retire`) stop at once: every token and `docker login` issued so far is then refused.
   */
  async rotate(retire = false): Promise<SigningKeyInfo> {
    const key = await newKey();
    await this.store.rotate(key, retire);
    this.set = this.keySet(await this.store.keys(), Date.now());
    // The imported key's private half is wiped in the database now: its file must not keep it either.
    await rm(this.legacyFile, { force: true });
    return (await this.list()).find((k) => k.kid === key.kid)!;
  }

  /**
   * An access token for the registry (`aud` = service). `generation` (a user's, as the `gen` claim) ties it to
   * the user's current password: see Authenticator. `now` lets tests mint expired or future tokens.
   */
  async issueAccess(subject: string, access: AccessClaim[], now = Date.now(), generation?: number): Promise<IssuedToken> {
    const set = await this.keys();
    const token = this.sign(set, generation === undefined ? { access } : { access, gen: generation }, subject, this.options.service, now, this.options.accessTtlMs);
    return { token, expiresIn: Math.floor(this.options.accessTtlMs / 1000), issuedAt: new Date(now).toISOString(), kid: set.kid };
  }

  /** A refresh token: usable only at the token endpoint, never on /v2 (its audience differs). */
  async issueRefresh(subject: string, binding: string, now = Date.now()): Promise<string> {
    return this.sign(await this.keys(), { bnd: binding }, subject, this.refreshAudience, now, this.options.refreshTtlMs);
  }

  async verifyAccess(token: string): Promise<VerifiedAccess> {
    const { payload, kid } = await this.verify(token, this.options.service);
    const access = payload.access;
    if (!Array.isArray(access) || !access.every(isAccessClaim)) throw new TokenError('malformed access claim');
    const gen = payload.gen;
    if (gen !== undefined && !Number.isSafeInteger(gen)) throw new TokenError('malformed generation claim');
    return { subject: payload.sub!, access, expiresAt: payload.exp! * 1000, kid, ...(gen === undefined ? {} : { generation: gen as number }) };
  }

  async verifyRefresh(token: string): Promise<VerifiedRefresh> {
    const { payload } = await this.verify(token, this.refreshAudience);
    if (typeof payload.bnd !== 'string') throw new TokenError('malformed refresh token');
    return { subject: payload.sub!, binding: payload.bnd, expiresAt: payload.exp! * 1000 };
  }

  private get refreshAudience(): string {
    return `${this.options.service}#refresh`;
  }

  /**
   * Signed here with node:crypto rather than jose: jose signs through WebCrypto, whose every operation is a job
   * on libuv's thread pool (about 0.2 ms a token, queued behind the file reads of blob downloads), while a
   * synchronous ECDSA P-256 signature costs about 30 µs. In a pull storm each client's first request is its token,
   * so that queue sat in front of every pull. Verification stays with jose.
   */
  private sign(set: KeySet, claims: JWTPayload, subject: string, audience: string, now: number, ttlMs: number): string {
    const iat = Math.floor(now / 1000);
    const header = { alg: ALG, kid: set.kid, typ: 'JWT' };
    const payload: JWTPayload = {
      ...claims,
      iss: this.options.issuer,
      sub: subject,
      aud: audience,
      iat,
      nbf: iat,
      exp: iat + Math.floor(ttlMs / 1000),
      jti: randomBytes(12).toString('base64url'),
    };
    const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`;
    // JWS wants the raw r || s form of the signature (IEEE P1363), not DER.
    const signature = cryptoSign('sha256', Buffer.from(input), { key: set.privateKey, dsaEncoding: 'ieee-p1363' });
    return `${input}.${signature.toString('base64url')}`;
  }

  private async verify(token: string, audience: string): Promise<{ payload: JWTPayload; kid: string }> {
    if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('token too long');
    let kid = '';
    try {
      const set = await this.keys();
      const { payload } = await jwtVerify(
        token,
        async (header) => {
          if (header.kid === undefined) throw new TokenError('unknown key id');
          kid = header.kid;
          const now = Date.now();
          let entry = set.trusted.get(kid);
          // A key made by a rotation elsewhere since this instance last read the keys: read them again now.
          if (!entry) entry = (await this.keys(true)).trusted.get(kid);
          if (!entry || entry.until <= now) throw new TokenError(entry ? 'the key that signed the token was retired' : 'unknown key id');
          return entry.key;
        },
        {
          issuer: this.options.issuer,
          audience,
          algorithms: [ALG],
          clockTolerance: CLOCK_TOLERANCE_S,
          requiredClaims: ['exp', 'nbf', 'iat', 'sub'],
        },
      );
      return { payload, kid };
    } catch (e) {
      if (e instanceof TokenError) throw e;
      throw new TokenError((e as Error).message);
    }
  }
}

async function legacyKey(file: string): Promise<NewSigningKey | undefined> {
  let parsed: LegacyKeyFile;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8')) as LegacyKeyFile;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read the token signing key ${file}: ${(e as Error).message}`);
  }
  const { d: _private, ...publicJwk } = parsed.privateJwk;
  return { kid: parsed.kid, algorithm: ALG, publicJwk: JSON.stringify(publicJwk), privateJwk: JSON.stringify(parsed.privateJwk), createdAt: Date.now() };
}

async function newKey(): Promise<NewSigningKey> {
  const { privateKey } = await generateKeyPair(ALG, { extractable: true });
  const privateJwk = await exportJWK(privateKey);
  const { d: _private, ...publicJwk } = privateJwk;
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, algorithm: ALG, publicJwk: JSON.stringify({ ...publicJwk, kid, alg: ALG }), privateJwk: JSON.stringify({ ...privateJwk, kid, alg: ALG }), createdAt: Date.now() };
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function isAccessClaim(v: unknown): v is AccessClaim {
  if (typeof v !== 'object' || v === null) return false;
  const a = v as Record<string, unknown>;
  return typeof a.type === 'string' && typeof a.name === 'string' && Array.isArray(a.actions) && a.actions.every((x) => typeof x === 'string');
}
