// The private key a pipeline signs its attestations with (the CI's, never the server's): read from a PEM file
// or from PEM text in the environment, and made fresh by `wharf signer keygen`. Only node:crypto does crypto.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Signer } from './dsse.js';
import { keyIdOf, parsePublicKey, type SignerAlgorithm } from './signers.js';

/** `value` is PEM text (as CI secrets often are) or the path of a PEM file (PKCS#8, unencrypted). */
export async function loadSigningKey(value: string): Promise<Signer & { algorithm: SignerAlgorithm }> {
  const pem = value.trimStart().startsWith('-----BEGIN') ? value : await readFile(value, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new Error(`cannot read the signing key ${value}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  });
  if (pem.includes('ENCRYPTED')) throw new Error('the signing key is encrypted (e.g. a cosign.key): give an unencrypted PKCS#8 PEM key (wharf signer keygen makes one)');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (e) {
    throw new Error(`the signing key is not a PEM private key (${(e as Error).message})`);
  }
  const publicKey = createPublicKey(privateKey);
  const { algorithm } = parsePublicKey(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  return { keyid: keyIdOf(publicKey), privateKey, algorithm };
}

/** A new key pair as PEM: the private key (PKCS#8) for the CI's secret store, the public one for `wharf signer add`. */
export function newKeyPair(algorithm: SignerAlgorithm): { privateKey: string; publicKey: string; keyid: string } {
  const pair = algorithm === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    privateKey: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKey: pair.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyid: keyIdOf(pair.publicKey),
  };
}
