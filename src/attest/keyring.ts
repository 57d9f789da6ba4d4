// The keys attestations are signed and verified with: the server's own Ed25519 key, generated into the data
// dir on first use, plus public keys an operator trusts in addition (e.g. of a CI system that signs its own
// attestations), dropped as PEM files into <data>/attest/trusted/.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { link, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Signer, TrustedKey } from './dsse.js';

export const SERVER_KEY_NAME = 'wharf-server';

/** A key id that anyone holding the public key can recompute: the SHA-256 of its SubjectPublicKeyInfo. */
export function keyIdOf(publicKey: KeyObject): string {
  return `sha256:${createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex')}`;
}

export interface PublicKeyInfo {
  keyid: string;
  name: string;
  /** SPKI PEM */
  publicKey: string;
}

export class Keyring {
  private constructor(
    readonly signer: Signer,
    readonly trusted: readonly TrustedKey[],
  ) {}

  /** Loads (or on first start creates) the server key under `<dataDir>/attest`, and the trusted public keys. */
  static async open(dataDir: string): Promise<Keyring> {
    const dir = join(dataDir, 'attest');
    await mkdir(join(dir, 'trusted'), { recursive: true, mode: 0o700 });
    const privateKey = await loadOrCreateKey(join(dir, 'signing-key.pem'));
    const publicKey = createPublicKey(privateKey);
    const keyid = keyIdOf(publicKey);
    await writeFile(join(dir, 'signing-key.pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
    const trusted: TrustedKey[] = [{ keyid, name: SERVER_KEY_NAME, publicKey }];
    for (const file of (await readdir(join(dir, 'trusted'))).sort()) {
      if (!file.endsWith('.pem')) continue;
      let key: KeyObject;
      try {
        key = createPublicKey(await readFile(join(dir, 'trusted', file)));
      } catch (e) {
        throw new Error(`cannot read the trusted attestation key ${join(dir, 'trusted', file)}: ${(e as Error).message}`);
      }
      if (key.asymmetricKeyType !== 'ed25519') throw new Error(`trusted attestation key ${file} is ${key.asymmetricKeyType}, not ed25519`);
      trusted.push({ keyid: keyIdOf(key), name: file.replace(/\.pem$/, ''), publicKey: key });
    }
    return new Keyring({ keyid, privateKey }, trusted);
  }

  publicKeys(): PublicKeyInfo[] {
    return this.trusted.map((k) => ({ keyid: k.keyid, name: k.name, publicKey: k.publicKey.export({ type: 'spki', format: 'pem' }).toString() }));
  }
}

/**
 * Creating the key races with other processes opening the same data dir (the server and a CLI command):
 * the key is written under a private name and hard-linked into place, which fails if another process won,
 * so every process ends up with the one key on disk, never one it generated but lost.
 */
async function loadOrCreateKey(file: string): Promise<KeyObject> {
  try {
    return createPrivateKey(await readFile(file));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read the attestation signing key ${file}: ${(e as Error).message}`);
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    await rm(tmp, { force: true });
  }
  return createPrivateKey(await readFile(file));
}
