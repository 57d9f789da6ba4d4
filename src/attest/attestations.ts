// Attestations about image digests: DSSE envelopes signed by a trusted signer (a key a global admin registered,
// attest/signers.ts), stored as OCI artifacts next to the image, listed through the referrers of a digest and
// verified before anything relies on them.
//
// Trust model. The server signs nothing and takes nobody's word: a pipeline (a CLI in a CI job holding the CI's
// private key) signs an in-toto Statement about the digest it pushed and hands the envelope in, over
// POST /api/v1/apps/:app/attestations (push on the app) or as a referrer pushed over /v2 like any OCI tool
// does. Push credentials alone therefore attest nothing: an envelope counts only when one of its signatures
// verifies under a registered, unrevoked key trusted for that app, the statement's kind and — at the gate —
// the environment, and the signed statement names exactly that digest. Anything else (unsigned, another
// key, an altered payload, a statement about another image) shows up in the referrers but never verifies.
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { digestOf, parseDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { IMAGE_MANIFEST_TYPES, OCI_MANIFEST } from '../oci/media-types.js';
import type { Registry } from '../registry/registry.js';
import { ATTESTATION_ARTIFACT_TYPE, attestationManifest, EMPTY_CONFIG, EMPTY_CONFIG_DESCRIPTOR, envelopeLayer, KIND_ANNOTATION } from './artifact.js';
import { EnvelopeError, IN_TOTO_PAYLOAD_TYPE, parseEnvelope, verifyEnvelope, type Envelope } from './dsse.js';
import { signerCovers, type Signer, type TrustedSigners } from './signers.js';
import { coversDigest, kindOf, parseStatement, StatementError, type Statement, type TestsPredicate } from './statement.js';

/** An envelope is a few KiB; anything much larger is not one of ours and is not read into memory. */
export const MAX_ENVELOPE_BYTES = 1 << 20;
const MAX_CACHED = 10_000;

export interface Identity {
  name: string | null;
  kind: string;
}

export interface AttestationRecord {
  /** the digest of the attestation's artifact manifest */
  digest: string;
  /** from the signed statement when it verifies; otherwise what the artifact claims (untrusted) */
  kind: string | null;
  predicateType: string | null;
  verified: boolean;
  /** why it does not verify */
  reason?: string;
  /** the registered key whose signature verified (also when its scope or revocation makes it not count) */
  signer?: { name: string; keyid: string; environments: string[]; revoked: boolean };
  commit?: string;
  runId?: string;
  /** when the signed run finished, as the signer states it */
  timestamp?: string;
  /** where the run happened (the CI's run URL), as the signer states it */
  ci?: string;
}

export interface Attested {
  /** the attestation artifact */
  digest: string;
  subject: string;
  kind: string;
  predicateType: string;
  signer: string;
}

export class Attestations {
  /** Envelope bytes by repository and artifact digest: content-addressed, so they never change (keys do). */
  private readonly envelopes = new Map<string, Buffer>();

  constructor(
    private readonly registry: Registry,
    private readonly signers: TrustedSigners,
  ) {}

  /**
   * Stores an envelope a pipeline signed as a referrer of the digest its statement names, once it verifies
   * under a signer trusted for the app and the statement's kind: a CI that is not set up right learns at once,
   * rather than at the gate.
   */
  async submit(app: string, bytes: Buffer, identity: Identity): Promise<Attested> {
    if (bytes.length > MAX_ENVELOPE_BYTES) throw new RegistryError('INVALID', `the envelope is ${bytes.length} bytes; attestations are at most ${MAX_ENVELOPE_BYTES}`);
    let envelope: Envelope;
    let claimed: Statement;
    try {
      envelope = parseEnvelope(bytes);
      claimed = parseStatement(Buffer.from(envelope.payload, 'base64'));
    } catch (e) {
      if (e instanceof EnvelopeError || e instanceof StatementError) throw new RegistryError('INVALID', e.message);
      throw e;
    }
    const subjects = claimed.subject.map((x) => (typeof x.digest.sha256 === 'string' ? `sha256:${x.digest.sha256}` : '')).filter((d) => parseDigest(d) !== null);
    if (subjects.length !== 1) throw new RegistryError('INVALID', `the statement must name exactly one sha256 subject digest, not ${subjects.length}`);
    const digest = subjects[0]!;
    const subject = await this.registry.getManifest(app, digest);
    if (subject.digest !== digest) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${digest} unknown to ${app}`);
    const checked = verifyAttestation(app, digest, envelope, await this.signers.keys());
    if (!checked.verified) throw new RegistryError('DENIED', `the attestation does not verify: ${checked.reason}`);
    const kind = checked.kind!;
    if (kind === 'tests') checkTestsPredicate(claimed.predicate as unknown as TestsPredicate, subject);
    const canonical = Buffer.from(JSON.stringify(envelope));
    await this.ensureEmptyConfig(app);
    await this.registry.putBlob(app, digestOf(canonical), Readable.from([canonical]));
    const created = checked.timestamp ?? new Date().toISOString();
    const manifest = attestationManifest({ mediaType: subject.mediaType, digest, size: subject.body.length }, canonical, { kind, predicateType: claimed.predicateType, created });
    const stored = await this.registry.putManifest(app, digestOf(manifest), manifest, OCI_MANIFEST, identity.name);
    return { digest: stored.digest, subject: digest, kind, predicateType: claimed.predicateType, signer: checked.signer!.name };
  }

  /**
   * Every attestation artifact referring to `digest`, each verified: against signers trusted for the app and
   * the statement's kind, and, given an environment, for that environment too (what its gate accepts).
   */
  async list(app: string, digest: string, environment?: string): Promise<AttestationRecord[]> {
    const index = await this.registry.referrers(app, digest, ATTESTATION_ARTIFACT_TYPE);
    const keys = await this.signers.keys();
    const out: AttestationRecord[] = [];
    for (const d of index.manifests) out.push(await this.verify(app, digest, d.digest, d.annotations?.[KIND_ANNOTATION] ?? null, keys, environment));
    return out;
  }

  /** The kinds `digest` carries a verified attestation of (for any environment). */
  async verifiedKinds(app: string, digest: string): Promise<string[]> {
    const kinds = new Set((await this.list(app, digest)).filter((a) => a.verified && a.kind !== null).map((a) => a.kind!));
    return [...kinds].sort();
  }

  private async ensureEmptyConfig(app: string): Promise<void> {
    try {
      await this.registry.statBlob(app, EMPTY_CONFIG_DESCRIPTOR.digest);
    } catch {
      await this.registry.putBlob(app, EMPTY_CONFIG_DESCRIPTOR.digest, Readable.from([EMPTY_CONFIG]));
    }
  }

  private async verify(app: string, subject: string, artifact: string, kindHint: string | null, keys: Signer[], environment?: string): Promise<AttestationRecord> {
    const failed = (reason: string): AttestationRecord => ({ digest: artifact, kind: kindHint, predicateType: null, verified: false, reason });
    const cacheKey = `${app}@${artifact}`;
    let bytes = this.envelopes.get(cacheKey);
    if (!bytes) {
      const manifest = await this.registry.getManifest(app, artifact);
      const layer = envelopeLayer(manifest.body);
      if (typeof layer === 'string') return failed(layer);
      if (layer.size > MAX_ENVELOPE_BYTES) return failed(`the envelope is ${layer.size} bytes; attestations are at most ${MAX_ENVELOPE_BYTES}`);
      const read = await this.readEnvelope(app, layer.digest);
      if (read === null) return failed(`the envelope blob ${layer.digest} is missing`);
      bytes = read;
      if (this.envelopes.size >= MAX_CACHED) this.envelopes.clear();
      this.envelopes.set(cacheKey, bytes);
    }
    let envelope: Envelope;
    try {
      envelope = parseEnvelope(bytes);
    } catch (e) {
      return failed((e as Error).message);
    }
    const r = verifyAttestation(app, subject, envelope, keys, environment);
    return { ...r, digest: artifact, kind: r.kind ?? (r.verified ? null : kindHint) };
  }

  private async readEnvelope(app: string, digest: string): Promise<Buffer | null> {
    try {
      await this.registry.statBlob(app, digest);
      const bytes = await buffer(this.registry.readBlob(digest));
      // Blobs are verified on upload; re-hashing a few KiB makes a corrupted store fail closed anyway.
      return digestOf(bytes) === digest ? bytes : null;
    } catch (e) {
      if (e instanceof RegistryError && e.code === 'BLOB_UNKNOWN') return null;
      throw e;
    }
  }
}

/**
 * Whether an envelope counts for `subject` in `app` (and `environment`, when given): one signature verifies
 * under a registered, unrevoked key whose scope covers the app, the statement's kind and the environment, and
 * the signed statement names the subject. Otherwise the record says which of these failed.
 */
export function verifyAttestation(app: string, subject: string, envelope: Envelope, keys: readonly Signer[], environment?: string): AttestationRecord {
  // The payload is read before its signature is checked only to describe a failure better; nothing trusts it.
  let claimed: Statement | undefined;
  try {
    claimed = parseStatement(Buffer.from(envelope.payload, 'base64'));
  } catch {
    claimed = undefined;
  }
  const failed = (reason: string, signer?: Signer): AttestationRecord => ({
    digest: '',
    kind: claimed ? kindOf(claimed.predicateType) : null,
    predicateType: claimed?.predicateType ?? null,
    verified: false,
    reason,
    ...(signer ? { signer: signerOf(signer) } : {}),
  });
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) return failed(`payload type ${envelope.payloadType} is not ${IN_TOTO_PAYLOAD_TYPE}`);
  const inScope = keys.filter((k) => k.revokedAt === null && signerCovers(k, { app, environment }));
  const v = verifyEnvelope(envelope, inScope);
  if (!v.ok) {
    // Which registered key signed it, if any, says why it does not count here.
    const any = verifyEnvelope(envelope, keys);
    if (!any.ok) return failed(any.reason);
    const k = any.key;
    if (k.revokedAt !== null) return failed(`signed by ${k.name}, a key revoked at ${new Date(k.revokedAt).toISOString()}`, k);
    if (!signerCovers(k, { app })) return failed(`signed by ${k.name}, which is not trusted for ${app}`, k);
    return failed(`signed by ${k.name}, which is not trusted for the environment ${environment} (only ${k.environments.join(', ')})`, k);
  }
  let statement: Statement;
  try {
    statement = parseStatement(v.payload);
  } catch (e) {
    return failed((e as Error).message, v.key);
  }
  const kind = kindOf(statement.predicateType);
  if (!coversDigest(statement, subject)) return failed(`the signed statement is about another image, not ${subject}`, v.key);
  if (kind === null || !v.key.kinds.includes(kind)) {
    return failed(`signed by ${v.key.name}, which is not trusted for ${kind === null ? `predicate type ${statement.predicateType}` : `'${kind}' attestations`} (only ${v.key.kinds.join(', ')})`, v.key);
  }
  const p = statement.predicate as Partial<TestsPredicate>;
  return {
    digest: '',
    kind,
    predicateType: statement.predicateType,
    verified: true,
    signer: signerOf(v.key),
    commit: typeof p.commit === 'string' ? p.commit : undefined,
    runId: typeof p.runId === 'string' ? p.runId : undefined,
    timestamp: typeof p.finishedAt === 'string' ? p.finishedAt : undefined,
    ci: typeof p.ci?.url === 'string' ? p.ci.url : undefined,
  };
}

function signerOf(k: Signer): NonNullable<AttestationRecord['signer']> {
  return { name: k.name, keyid: k.keyid, environments: k.environments, revoked: k.revokedAt !== null };
}

/**
 * A tests attestation states that tests passed in the very image released: refused for a run with a failed
 * or no test step, and for an image ID that is not the config of the subject manifest.
 */
function checkTestsPredicate(p: TestsPredicate, subject: { mediaType: string; body: Buffer }): void {
  const tests = p.steps.filter((s) => s.kind === 'test');
  if (tests.length === 0) throw new RegistryError('DENIED', 'a tests attestation needs at least one test step');
  const failedStep = tests.find((s) => s.exitCode !== 0);
  if (failedStep) throw new RegistryError('DENIED', `test step ${failedStep.name} exited with ${failedStep.exitCode ?? 'no exit code'}: only passing runs are attested`);
  if (IMAGE_MANIFEST_TYPES.has(subject.mediaType)) {
    const config = (JSON.parse(subject.body.toString('utf8')) as { config?: { digest?: string } }).config?.digest;
    if (config !== p.image.id) {
      throw new RegistryError('DENIED', `the tests ran in image ${p.image.id}, but this manifest's image is ${config}: attest the digest that was pushed from the tested image`);
    }
  }
}
