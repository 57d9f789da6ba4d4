// Sealing secret values at rest: AES-256-GCM with a key kept outside the database (WHARF_SECRET_KEY, or a key
// file in the data directory, mode 0600), each value bound to its app, environment and name so that a sealed
// value copied into another row does not open.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmod, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createOnce } from '../storage/create-once.js';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
export const SECRET_KEY_FILE = 'secret.key';

export interface SecretSlot {
  app: string;
  environment: string;
  name: string;
}

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /**
   * The key from WHARF_SECRET_KEY (64 hex digits or base64 of 32 bytes), else from `<data>/secret.key`, made on
   * first use. A key of the wrong size is refused rather than stretched.
   */
  static async open(dataDir: string, env: NodeJS.ProcessEnv = process.env): Promise<SecretBox> {
    const given = env.WHARF_SECRET_KEY;
    if (given !== undefined && given !== '') return new SecretBox(decodeKey(given, 'WHARF_SECRET_KEY'));
    const file = join(dataDir, SECRET_KEY_FILE);
    try {
      return new SecretBox(decodeKey((await readFile(file, 'utf8')).trim(), file));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const key = randomBytes(KEY_BYTES);
    await createOnce(file, key.toString('hex') + '\n');
    await chmod(file, 0o600);
    return new SecretBox(decodeKey((await readFile(file, 'utf8')).trim(), file));
  }

  static fromKey(key: Buffer): SecretBox {
    if (key.length !== KEY_BYTES) throw new Error(`a secret key is ${KEY_BYTES} bytes`);
    return new SecretBox(key);
  }

  seal(slot: SecretSlot, value: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(aad(slot));
    const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    return `${VERSION}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  /** Throws when the value was sealed with another key or for another slot, or was altered. */
  open(slot: SecretSlot, sealed: string): string {
    const [version, data] = sealed.split(':');
    if (version !== VERSION || data === undefined) throw new Error('unknown sealed secret format');
    const raw = Buffer.from(data, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(aad(slot));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  }
}

function aad(slot: SecretSlot): Buffer {
  return Buffer.from(`${slot.app}\0${slot.environment}\0${slot.name}`, 'utf8');
}

function decodeKey(text: string, where: string): Buffer {
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== KEY_BYTES) throw new Error(`${where}: a secret key is ${KEY_BYTES} bytes (64 hex digits or base64)`);
  return key;
}
