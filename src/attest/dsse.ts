// DSSE (Dead Simple Signing Envelope, github.com/secure-systems-lab/dsse): the pre-authentication encoding
// that is signed, and envelopes signed and verified with Ed25519 or ECDSA P-256 keys (SHA-256, DER signatures,
// as cosign signs). Pure apart from node:crypto.
import { sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';

/** The payload type of an in-toto Statement inside a DSSE envelope. */
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

export interface Signature {
  /** an unauthenticated hint naming the key; the signature itself is what counts */
  keyid?: string;
  /** base64 */
  sig: string;
}

export interface Envelope {
  /** base64 of the serialized body */
  payload: string;
  payloadType: string;
  signatures: Signature[];
}

export interface Signer {
  keyid: string;
  privateKey: KeyObject;
}

export interface TrustedKey {
  keyid: string;
  /** who holds the key, for people reading a verification result */
  name: string;
  publicKey: KeyObject;
}

/**
 * PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, LEN being the byte length in ASCII
 * decimal. Signing this rather than the bare payload binds the payload type, so a signature over one kind of
 * document cannot be replayed as another.
 */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** Ed25519 hashes inside the algorithm; ECDSA signs a SHA-256 digest (DER-encoded, node's default). */
function hashOf(key: KeyObject): string | null {
  return key.asymmetricKeyType === 'ec' ? 'sha256' : null;
}

export function signEnvelope(payloadType: string, payload: Uint8Array, signer: Signer): Envelope {
  const sig = cryptoSign(hashOf(signer.privateKey), pae(payloadType, payload), signer.privateKey);
  return { payload: Buffer.from(payload).toString('base64'), payloadType, signatures: [{ keyid: signer.keyid, sig: sig.toString('base64') }] };
}

export class EnvelopeError extends Error {}

/** Checks the shape of an envelope read from untrusted bytes; throws EnvelopeError saying what is wrong. */
export function parseEnvelope(bytes: Uint8Array): Envelope {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new EnvelopeError('the envelope is not JSON');
  }
  const e = doc as Partial<Envelope> | null;
  if (typeof e !== 'object' || e === null || typeof e.payload !== 'string' || typeof e.payloadType !== 'string' || !Array.isArray(e.signatures)) {
    throw new EnvelopeError('not a DSSE envelope (payload, payloadType and signatures are required)');
  }
  for (const s of e.signatures) {
    if (typeof s !== 'object' || s === null || typeof s.sig !== 'string' || (s.keyid !== undefined && typeof s.keyid !== 'string')) {
      throw new EnvelopeError('a DSSE signature needs a base64 sig and an optional string keyid');
    }
  }
  return { payload: e.payload, payloadType: e.payloadType, signatures: e.signatures };
}

export type Verification<K extends TrustedKey = TrustedKey> = { ok: true; payload: Buffer; key: K } | { ok: false; reason: string };

/**
 * Verifies the envelope against the trusted keys: valid when one signature verifies under one of them.
 * Key ids are tried first but never trusted: an unknown or lying keyid just means every key is tried.
 */
export function verifyEnvelope<K extends TrustedKey>(envelope: Envelope, keys: readonly K[]): Verification<K> {
  if (envelope.signatures.length === 0) return { ok: false, reason: 'the envelope carries no signature' };
  const payload = Buffer.from(envelope.payload, 'base64');
  const signed = pae(envelope.payloadType, payload);
  for (const s of envelope.signatures) {
    const sig = Buffer.from(s.sig, 'base64');
    const ordered = [...keys.filter((k) => k.keyid === s.keyid), ...keys.filter((k) => k.keyid !== s.keyid)];
    for (const key of ordered) {
      if (verifies(signed, key.publicKey, sig)) return { ok: true, payload, key };
    }
  }
  const named = envelope.signatures.map((s) => s.keyid).filter((k): k is string => k !== undefined);
  const known = named.some((id) => keys.some((k) => k.keyid === id));
  return {
    ok: false,
    reason: known
      ? 'the signature does not match the signed content (the attestation was altered after signing)'
      : `not signed by a trusted key${named.length ? ` (signed by ${named.join(', ')})` : ''}`,
  };
}

/** A signature that is not even well-formed for the key's algorithm (bad DER) is just not a match. */
function verifies(data: Buffer, key: KeyObject, sig: Buffer): boolean {
  try {
    return cryptoVerify(hashOf(key), data, key, sig);
  } catch {
    return false;
  }
}
