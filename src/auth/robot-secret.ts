// Robot (CI) token secrets: `wharf_<id>_<random>`. The id finds the row; only a SHA-256 of the whole
// secret is stored. 256 random bits make a slow hash pointless here, and keep token checks fast.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const SECRET = /^wharf_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface RobotSecret {
  id: string;
  secret: string;
}

export function newRobotSecret(): RobotSecret {
  const id = randomBytes(8).toString('hex');
  return { id, secret: `wharf_${id}_${randomBytes(32).toString('base64url')}` };
}

/** The token id when `value` has the shape of a robot secret, else undefined. */
export function robotSecretId(value: string): string | undefined {
  return SECRET.exec(value)?.[1];
}

export function hashRobotSecret(secret: string): string {
  return `sha256:${createHash('sha256').update(secret).digest('hex')}`;
}

export function robotSecretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashRobotSecret(secret));
  const b = Buffer.from(storedHash);
  return a.length === b.length && timingSafeEqual(a, b);
}
