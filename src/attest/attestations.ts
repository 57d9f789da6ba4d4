// Attestations about image digests: signed by the server and stored as OCI artifacts next to the image, listed
// through the referrers of a digest and verified before anything relies on them.
//
// Trust model. The pipeline (a CLI in some CI job) never holds the server's private key. It reports what it
// did — commit, run id, the image ID it tested, each test command with its exit code — to
// POST /api/v1/apps/:app/attestations, authenticated as an identity with `push` on the app. The server checks
// what it can check itself (the digest exists in the app; the tests all passed; the tested image ID is the
// config of that very manifest, so the bytes tested are the bytes attested), then signs an in-toto Statement
// recording the reporting identity as the builder. An attestation therefore means "this authenticated
// pipeline identity reported these passing tests for exactly this digest" — as trustworthy as the
// credentials that may push to the app, which is why a CI token should be the only holder of `push` on
// apps whose environments require attestations. Verification trusts only signatures by the server's key
// and keys placed in <data>/attest/trusted/: anything pushed by hand through /v2 — an altered payload or a
// statement signed by another key — shows up in the referrers but never verifies.
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { digestOf } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { IMAGE_MANIFEST_TYPES, OCI_MANIFEST } from '../oci/media-types.js';
import type { Registry } from '../registry/registry.js';
import { ATTESTATION_ARTIFACT_TYPE, attestationManifest, EMPTY_CONFIG, EMPTY_CONFIG_DESCRIPTOR, envelopeLayer, KIND_ANNOTATION } from './artifact.js';
import { IN_TOTO_PAYLOAD_TYPE, parseEnvelope, signEnvelope, verifyEnvelope, type Envelope } from './dsse.js';
import type { Keyring } from './keyring.js';
import { coversDigest, isAttestationKind, kindOf, parseStatement, predicateTypeOf, statementFor, type Statement, type TestsPredicate } from './statement.js';

/** An envelope is a few KiB; anything much larger is not one of ours and is not read into memory. */
const MAX_ENVELOPE_BYTES = 1 << 20;
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
  signer?: { keyid: string; name: string };
  builder?: string;
  commit?: string;
  runId?: string;
  timestamp?: string;
}

export interface Attested {
  /** the attestation artifact */
  digest: string;
  subject: string;
  kind: string;
  predicateType: string;
  keyid: string;
}

export class Attestations {
  /** Verification results by repository and artifact digest: the bytes never change, nor do the keys. */
  private readonly verified = new Map<string, AttestationRecord>();

  constructor(
    private readonly registry: Registry,
    private readonly keys: Keyring,
  ) {}

  /** Signs what an authenticated pipeline reported about `digest` and stores it as a referrer of it. */
  async attest(app: string, digest: string, kind: string, predicate: Record<string, unknown>, identity: Identity): Promise<Attested> {
    if (!isAttestationKind(kind)) throw new RegistryError('INVALID', `invalid attestation kind ${JSON.stringify(kind)}`);
    const subject = await this.registry.getManifest(app, digest);
    if (subject.digest !== digest) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${digest} unknown to ${app}`);
    if (kind === 'tests') checkTestsPredicate(predicate as unknown as TestsPredicate, subject);
    const predicateType = predicateTypeOf(kind);
    const timestamp = new Date().toISOString();
    const signed = {
      ...predicate,
      builder: { id: `${identity.kind}:${identity.name ?? 'anonymous'}`, signedBy: this.keys.signer.keyid },
      timestamp,
    };
    const statement = statementFor(app, digest, predicateType, signed);
    const envelope = Buffer.from(JSON.stringify(signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), this.keys.signer)));
    await this.ensureEmptyConfig(app);
    await this.registry.putBlob(app, digestOf(envelope), Readable.from([envelope]));
    const manifest = attestationManifest({ mediaType: subject.mediaType, digest, size: subject.body.length }, envelope, { kind, predicateType, created: timestamp });
    const stored = await this.registry.putManifest(app, digestOf(manifest), manifest, OCI_MANIFEST, identity.name);
    return { digest: stored.digest, subject: digest, kind, predicateType, keyid: this.keys.signer.keyid };
  }

  /** Every attestation artifact referring to `digest`, each verified. */
  async list(app: string, digest: string): Promise<AttestationRecord[]> {
    const index = await this.registry.referrers(app, digest, ATTESTATION_ARTIFACT_TYPE);
    const out: AttestationRecord[] = [];
    for (const d of index.manifests) out.push(await this.verify(app, digest, d.digest, d.annotations?.[KIND_ANNOTATION] ?? null));
    return out;
  }

  /** The kinds `digest` carries a verified attestation of. */
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

  private async verify(app: string, subject: string, artifact: string, kindHint: string | null): Promise<AttestationRecord> {
    const key = `${app}@${artifact}`;
    const cached = this.verified.get(key);
    if (cached) return cached;
    const failed = (reason: string, statement?: Statement): AttestationRecord => ({
      digest: artifact,
      kind: statement ? kindOf(statement.predicateType) : kindHint,
      predicateType: statement?.predicateType ?? null,
      verified: false,
      reason,
    });
    const manifest = await this.registry.getManifest(app, artifact);
    const layer = envelopeLayer(manifest.body);
    let record: AttestationRecord;
    if (typeof layer === 'string') record = failed(layer);
    else if (layer.size > MAX_ENVELOPE_BYTES) record = failed(`the envelope is ${layer.size} bytes; attestations are at most ${MAX_ENVELOPE_BYTES}`);
    else {
      const bytes = await this.readEnvelope(app, layer.digest);
      if (bytes === null) return failed(`the envelope blob ${layer.digest} is missing`); // may come back: not cached
      record = this.check(subject, artifact, bytes, failed);
    }
    if (this.verified.size >= MAX_CACHED) this.verified.clear();
    this.verified.set(key, record);
    return record;
  }

  private check(subject: string, artifact: string, bytes: Buffer, failed: (reason: string, s?: Statement) => AttestationRecord): AttestationRecord {
    let envelope: Envelope;
    try {
      envelope = parseEnvelope(bytes);
    } catch (e) {
      return failed((e as Error).message);
    }
    // The payload is read before its signature is checked only to describe a failure better; nothing trusts it.
    let claimed: Statement | undefined;
    try {
      claimed = parseStatement(Buffer.from(envelope.payload, 'base64'));
    } catch {
      claimed = undefined;
    }
    if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) return failed(`payload type ${envelope.payloadType} is not ${IN_TOTO_PAYLOAD_TYPE}`, claimed);
    const v = verifyEnvelope(envelope, this.keys.trusted);
    if (!v.ok) return failed(v.reason, claimed);
    let statement: Statement;
    try {
      statement = parseStatement(v.payload);
    } catch (e) {
      return failed((e as Error).message);
    }
    if (!coversDigest(statement, subject)) return failed(`the signed statement is about another image, not ${subject}`, statement);
    const p = statement.predicate as Partial<TestsPredicate>;
    return {
      digest: artifact,
      kind: kindOf(statement.predicateType),
      predicateType: statement.predicateType,
      verified: true,
      signer: { keyid: v.key.keyid, name: v.key.name },
      builder: typeof p.builder?.id === 'string' ? p.builder.id : undefined,
      commit: typeof p.commit === 'string' ? p.commit : undefined,
      runId: typeof p.runId === 'string' ? p.runId : undefined,
      timestamp: typeof p.timestamp === 'string' ? p.timestamp : undefined,
    };
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
