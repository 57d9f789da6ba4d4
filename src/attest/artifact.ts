// How an attestation is laid out in the registry: an OCI artifact manifest (empty config, the DSSE envelope as
// its one layer) whose `subject` is the attested image manifest, so the referrers API lists it for any OCI
// tool (oras discover, crane, cosign tree). Pure.
import { digestOf } from '../oci/digest.js';
import type { Descriptor } from '../oci/manifest.js';
import { OCI_EMPTY_CONFIG, OCI_MANIFEST } from '../oci/media-types.js';

export const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';
/** The artifactType of a Wharf attestation: it is a DSSE envelope (carrying an in-toto Statement). */
export const ATTESTATION_ARTIFACT_TYPE = DSSE_MEDIA_TYPE;

/** Annotations are a hint for listings only; verification reads the signed statement, never these. */
export const KIND_ANNOTATION = 'dev.wharf.attestation.kind';
export const PREDICATE_TYPE_ANNOTATION = 'dev.wharf.attestation.predicate-type';
export const CREATED_ANNOTATION = 'org.opencontainers.image.created';

export const EMPTY_CONFIG = Buffer.from('{}');
export const EMPTY_CONFIG_DESCRIPTOR: Descriptor & { data: string } = {
  mediaType: OCI_EMPTY_CONFIG,
  digest: digestOf(EMPTY_CONFIG),
  size: EMPTY_CONFIG.length,
  data: EMPTY_CONFIG.toString('base64'),
};

export function attestationManifest(subject: Descriptor, envelope: Buffer, info: { kind: string; predicateType: string; created: string }): Buffer {
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: ATTESTATION_ARTIFACT_TYPE,
    config: EMPTY_CONFIG_DESCRIPTOR,
    layers: [{ mediaType: DSSE_MEDIA_TYPE, digest: digestOf(envelope), size: envelope.length }],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
    annotations: { [KIND_ANNOTATION]: info.kind, [PREDICATE_TYPE_ANNOTATION]: info.predicateType, [CREATED_ANNOTATION]: info.created },
  };
  return Buffer.from(JSON.stringify(manifest));
}

/** The envelope layer of an attestation manifest, or a reason it has none. */
export function envelopeLayer(manifestBody: Buffer): Descriptor | string {
  let doc: { layers?: unknown };
  try {
    doc = JSON.parse(manifestBody.toString('utf8')) as { layers?: unknown };
  } catch {
    return 'the attestation manifest is not JSON';
  }
  const layers = Array.isArray(doc.layers) ? (doc.layers as Descriptor[]) : [];
  const dsse = layers.filter((l) => l && l.mediaType === DSSE_MEDIA_TYPE);
  if (dsse.length !== 1) return `the attestation manifest has ${dsse.length} ${DSSE_MEDIA_TYPE} layers, not one`;
  return dsse[0]!;
}
