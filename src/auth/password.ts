// Password hashing with scrypt (memory-hard, in Node's crypto): `scrypt$N$r$p$salt$hash`, compared in
// constant time. Deliberately slow (~100 ms), which is why verified credentials are cached elsewhere.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const KEY_LENGTH = 32;

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/** scrypt's cost as log2 N (config auth.passwordCost): 15 is 2^15 × 8 × 128 bytes = 32 MiB of memory per hash. */
export const DEFAULT_PASSWORD_COST = 15;

/** The parameters new hashes get at a cost (log2 N); r and p stay fixed. */
export function scryptParams(cost: number = DEFAULT_PASSWORD_COST): ScryptParams {
  return { N: 2 ** cost, r: 8, p: 1 };
}

const DEFAULTS = scryptParams();

function derive(password: string, salt: Buffer, opts: { N: number; r: number; p: number }): Promise<Buffer> {
  const options: ScryptOptions = { ...opts, maxmem: 256 * opts.N * opts.r + (1 << 20) };
  return new Promise((resolve, reject) => scrypt(password.normalize('NFC'), salt, KEY_LENGTH, options, (e, key) => (e ? reject(e) : resolve(key))));
}

export async function hashPassword(password: string, opts: ScryptParams = DEFAULTS): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, opts);
  return ['scrypt', opts.N, opts.r, opts.p, salt.toString('base64'), key.toString('base64')].join('$');
}

/** False for a wrong password and for a malformed stored hash (never throws on bad input). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![N, r, p].every((n) => Number.isInteger(n) && n > 0) || N < 2 || N > 1 << 20 || (N & (N - 1)) !== 0 || r * p > 64) return false;
  const expected = Buffer.from(parts[5]!, 'base64');
  let actual: Buffer;
  try {
    actual = await derive(password, Buffer.from(parts[4]!, 'base64'), { N, r, p });
  } catch {
    return false;
  }
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/**
 * A hash of nothing anyone knows, verified against when the user does not exist, so that an unknown name
 * costs as much time as a wrong password and names cannot be probed by timing: made at the cost new passwords get.
 */
const decoys = new Map<number, Promise<string>>();
export function decoyHash(opts: ScryptParams = DEFAULTS): Promise<string> {
  let decoy = decoys.get(opts.N);
  if (!decoy) decoys.set(opts.N, (decoy = hashPassword(randomBytes(16).toString('hex'), opts)));
  return decoy;
}

/** A random password for generated accounts: 24 characters of base64url (144 bits). */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}
