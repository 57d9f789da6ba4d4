// The token service of the Docker token flow: short-lived ES256 JWTs (Distribution's claim set, with the
// key id in the header) signed by a key generated into the data dir, and refresh tokens for `docker login`.
// Verification trusts only its own keys by id and refuses other algorithms (so `alg: none`), other
// audiences and issuers, and tokens outside their validity window.
import { createPrivateKey, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, jwtVerify, type JWK, type JWTPayload } from 'jose';
import { createOnce } from '../storage/create-once.js';

const ALG = 'ES256';
/** Leeway for clocks of clients and servers that disagree a little. */
const CLOCK_TOLERANCE_S = 5;
const MAX_TOKEN_LENGTH = 16 * 1024;

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
}

export interface IssuedToken {
  token: string;
  expiresIn: number;
  issuedAt: string;
}

export interface VerifiedAccess {
  /** '' for an anonymous token */
  subject: string;
  access: AccessClaim[];
  expiresAt: number;
  /** the subject's token generation when it was issued (users only; absent in tokens from before generations) */
  generation?: number;
}

export interface VerifiedRefresh {
  subject: string;
  /** what the token is bound to (a fingerprint of the password hash), checked by the caller */
  binding: string;
  expiresAt: number;
}

type Key = Awaited<ReturnType<typeof importJWK>>;

interface KeyFile {
  kid: string;
  alg: typeof ALG;
  privateJwk: JWK;
}

export class TokenError extends Error {}

export class TokenService {
  private constructor(
    private readonly kid: string,
    private readonly privateKey: KeyObject,
    private readonly trusted: Map<string, Key>,
    readonly options: TokenServiceOptions,
  ) {}

  /** Loads the signing key from `<dataDir>/auth/signing-key.json`, generating it (0600) on first use. */
  static async open(dataDir: string, options: TokenServiceOptions): Promise<TokenService> {
    const dir = join(dataDir, 'auth');
    const file = join(dir, 'signing-key.json');
    let keyFile = await readKeyFile(file);
    if (!keyFile) {
      // Of two processes racing on a fresh data dir, one key wins and both go on with it.
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await createOnce(file, JSON.stringify(await generateKeyFile()));
      keyFile = (await readKeyFile(file))!;
    }
    const privateKey = createPrivateKey({ key: keyFile.privateJwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    const { d: _private, ...publicJwk } = keyFile.privateJwk;
    const publicKey = await importJWK(publicJwk, ALG);
    return new TokenService(keyFile.kid, privateKey, new Map([[keyFile.kid, publicKey]]), options);
  }

  /**
   * An access token for the registry (`aud` = service). `generation` (a user's, as the `gen` claim) ties it to
   * the user's current password: see Authenticator. `now` lets tests mint expired or future tokens.
   */
  async issueAccess(subject: string, access: AccessClaim[], now = Date.now(), generation?: number): Promise<IssuedToken> {
    const token = await this.sign(generation === undefined ? { access } : { access, gen: generation }, subject, this.options.service, now, this.options.accessTtlMs);
    return { token, expiresIn: Math.floor(this.options.accessTtlMs / 1000), issuedAt: new Date(now).toISOString() };
  }

  /** A refresh token: usable only at the token endpoint, never on /v2 (its audience differs). */
  issueRefresh(subject: string, binding: string, now = Date.now()): Promise<string> {
    return this.sign({ bnd: binding }, subject, this.refreshAudience, now, this.options.refreshTtlMs);
  }

  async verifyAccess(token: string): Promise<VerifiedAccess> {
    const payload = await this.verify(token, this.options.service);
    const access = payload.access;
    if (!Array.isArray(access) || !access.every(isAccessClaim)) throw new TokenError('malformed access claim');
    const gen = payload.gen;
    if (gen !== undefined && !Number.isSafeInteger(gen)) throw new TokenError('malformed generation claim');
    return { subject: payload.sub!, access, expiresAt: payload.exp! * 1000, ...(gen === undefined ? {} : { generation: gen as number }) };
  }

  async verifyRefresh(token: string): Promise<VerifiedRefresh> {
    const payload = await this.verify(token, this.refreshAudience);
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
  private sign(claims: JWTPayload, subject: string, audience: string, now: number, ttlMs: number): Promise<string> {
    const iat = Math.floor(now / 1000);
    const header = { alg: ALG, kid: this.kid, typ: 'JWT' };
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
    const signature = cryptoSign('sha256', Buffer.from(input), { key: this.privateKey, dsaEncoding: 'ieee-p1363' });
    return Promise.resolve(`${input}.${signature.toString('base64url')}`);
  }

  private async verify(token: string, audience: string): Promise<JWTPayload> {
    if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('token too long');
    try {
      const { payload } = await jwtVerify(
        token,
        (header) => {
          const key = header.kid === undefined ? undefined : this.trusted.get(header.kid);
          if (!key) throw new TokenError('unknown key id');
          return key;
        },
        {
          issuer: this.options.issuer,
          audience,
          algorithms: [ALG],
          clockTolerance: CLOCK_TOLERANCE_S,
          requiredClaims: ['exp', 'nbf', 'iat', 'sub'],
        },
      );
      return payload;
    } catch (e) {
      if (e instanceof TokenError) throw e;
      throw new TokenError((e as Error).message);
    }
  }
}

async function readKeyFile(file: string): Promise<KeyFile | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as KeyFile;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read the token signing key ${file}: ${(e as Error).message}`);
  }
}

async function generateKeyFile(): Promise<KeyFile> {
  const { privateKey } = await generateKeyPair(ALG, { extractable: true });
  const privateJwk = await exportJWK(privateKey);
  const { d: _private, ...publicJwk } = privateJwk;
  const kid = await calculateJwkThumbprint(publicJwk);
  return { kid, alg: ALG, privateJwk: { ...privateJwk, kid, alg: ALG } };
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function isAccessClaim(v: unknown): v is AccessClaim {
  if (typeof v !== 'object' || v === null) return false;
  const a = v as Record<string, unknown>;
  return typeof a.type === 'string' && typeof a.name === 'string' && Array.isArray(a.actions) && a.actions.every((x) => typeof x === 'string');
}
