// Trusted signers: the public keys a global admin registered (API, CLI or the server config file) whose DSSE
// signatures count, each for some apps, attestation kinds and environments. Keys are rotated by adding the new
// one and revoking the old; a revoked key verifies nothing from then on, and stays listed so that what it
// signed still names who signed it.
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import type { SignerMetadata, StoredSigner } from '../metadata/metadata.js';
import { RegistryError } from '../oci/errors.js';
import { matchesGlob } from '../oci/pattern.js';
import type { TrustedKey } from './dsse.js';
import { isAttestationKind } from './statement.js';

/** A key id anyone holding the public key can recompute: the SHA-256 of its SubjectPublicKeyInfo (DER). */
export function keyIdOf(publicKey: KeyObject): string {
  return `sha256:${createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex')}`;
}

/** The algorithms accepted: Ed25519, and ECDSA P-256 with SHA-256 (what `cosign generate-key-pair` makes). */
export type SignerAlgorithm = 'ed25519' | 'ecdsa-p256';

/** Reads a PEM public key and says which accepted algorithm it is; throws a plain Error saying why not. */
export function parsePublicKey(pem: string): { key: KeyObject; algorithm: SignerAlgorithm } {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (e) {
    throw new Error(`not a PEM public key (${(e as Error).message})`);
  }
  if (key.asymmetricKeyType === 'ed25519') return { key, algorithm: 'ed25519' };
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return { key, algorithm: 'ecdsa-p256' };
  const what = key.asymmetricKeyType === 'ec' ? `an EC key on ${key.asymmetricKeyDetails?.namedCurve}` : `a ${key.asymmetricKeyType} key`;
  throw new Error(`${what}: trusted signers use Ed25519 or ECDSA P-256 keys`);
}

export const SIGNER_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const PATTERN = /^[a-z0-9*?][a-z0-9._\/*?-]*$/;
const ENV_PATTERN = /^[a-z0-9*?][a-z0-9._*?-]*$/;

/** What a global admin registers: a name, a public key, and what the key's signatures may vouch for. */
export const signerRegistrationSchema = z.strictObject({
  name: z.string().regex(SIGNER_NAME, 'signer names are lowercase letters, digits, ., - and _ (at most 64)'),
  publicKey: z
    .string()
    .max(8192)
    .superRefine((pem, ctx) => {
      try {
        parsePublicKey(pem);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
      }
    }),
  apps: z.array(z.string().max(256).regex(PATTERN, "an app pattern is a repository name with * and ?, e.g. 'team/*'")).min(1, 'name the apps the key signs for (--apps PATTERN)'),
  kinds: z.array(z.string().refine(isAttestationKind, 'an attestation kind is lowercase letters, digits and dashes, e.g. tests')).min(1, 'name the attestation kinds the key signs (--kinds tests)'),
  environments: z
    .array(z.string().max(64).regex(ENV_PATTERN, "an environment pattern is an environment name with * and ?, e.g. 'production'"))
    .min(1, 'name the environments whose gate accepts the key (--env production)'),
});
export type SignerRegistration = z.infer<typeof signerRegistrationSchema>;

/** What is stored of a signer, and the port it is kept behind (metadata/signer-store.ts). */
export type { StoredSigner, SignerMetadata } from '../metadata/metadata.js';

/** A registered key, ready to verify with, and the scope it is trusted for. */
export interface Signer extends TrustedKey {
  apps: string[];
  kinds: string[];
  environments: string[];
  revokedAt: number | null;
}

export function signerCovers(s: Pick<Signer, 'apps' | 'kinds' | 'environments'>, scope: { app: string; kind?: string | null; environment?: string }): boolean {
  if (!s.apps.some((p) => matchesGlob(p, scope.app))) return false;
  if (scope.kind !== undefined && (scope.kind === null || !s.kinds.includes(scope.kind))) return false;
  if (scope.environment !== undefined && !s.environments.some((p) => matchesGlob(p, scope.environment!))) return false;
  return true;
}

export class TrustedSigners {
  constructor(private readonly store: SignerMetadata) {}

  list(): Promise<StoredSigner[]> {
    return this.store.signers();
  }

  /** Every registered key (revoked ones too, so a verification can say a key was revoked). */
  async keys(): Promise<Signer[]> {
    return (await this.store.signers()).map((s) => ({
      keyid: s.keyid,
      name: s.name,
      publicKey: parsePublicKey(s.publicKey).key,
      apps: s.apps,
      kinds: s.kinds,
      environments: s.environments,
      revokedAt: s.revokedAt,
    }));
  }

  /** Registers a key; the input is validated here, whatever called. A name or key already registered is refused. */
  async add(input: unknown, actor: string | null): Promise<StoredSigner> {
    const parsed = signerRegistrationSchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new RegistryError('INVALID', `${issue.path.join('.') || 'signer'}: ${issue.message}`);
    }
    const signer = stored(parsed.data, 'api', actor);
    const all = await this.store.signers();
    const same = all.find((s) => s.name === signer.name);
    if (same) throw new RegistryError('CONFLICT', `a signer named ${signer.name} is already registered${same.revokedAt ? ' (revoked: a rotated key takes a new name)' : ''}`);
    const key = all.find((s) => s.keyid === signer.keyid);
    if (key) throw new RegistryError('CONFLICT', `this key is already registered as ${key.name}${key.revokedAt ? ', and revoked: a revoked key is not trusted again' : ''}`);
    await this.store.putSigner(signer);
    return signer;
  }

  async revoke(name: string, actor: string | null): Promise<StoredSigner> {
    const existing = (await this.store.signers()).find((s) => s.name === name);
    if (!existing) throw new RegistryError('NOT_FOUND', `no signer named ${JSON.stringify(name)}`);
    if (existing.source === 'config') throw new RegistryError('CONFLICT', `signer ${name} comes from the server config file: remove it there`);
    if (existing.revokedAt !== null) return existing;
    const at = Date.now();
    await this.store.revokeSigner(name, at, actor);
    return { ...existing, revokedAt: at, revokedBy: actor };
  }

  /** At server start: the config file's signers, as it lists them now (validated by the config schema). */
  async syncConfig(signers: SignerRegistration[]): Promise<void> {
    const all = await this.store.signers();
    for (const s of signers) {
      const row = stored(s, 'config', null);
      const clash = all.find((x) => (x.name === s.name || x.keyid === row.keyid) && x.source === 'api');
      if (clash) throw new Error(`signer ${s.name} of the config file: ${clash.name === s.name ? 'the name' : `the key (as ${clash.name})`} is already registered over the API`);
      await this.store.putSigner(row);
    }
    await this.store.removeConfigSignersExcept(signers.map((s) => s.name));
  }
}

function stored(s: SignerRegistration, source: 'api' | 'config', actor: string | null): StoredSigner {
  const { key, algorithm } = parsePublicKey(s.publicKey);
  return {
    ...s,
    publicKey: key.export({ type: 'spki', format: 'pem' }).toString(),
    keyid: keyIdOf(key),
    algorithm,
    source,
    createdBy: actor,
    createdAt: Date.now(),
    revokedAt: null,
    revokedBy: null,
  };
}
