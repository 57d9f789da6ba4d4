// Parsing and validation of image manifests and indexes (OCI and Docker schema2). Pure: the caller checks
// that the referenced blobs and manifests exist.
import { parseDigest } from './digest.js';
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_SCHEMA1,
  DOCKER_SCHEMA1_SIGNED,
  INDEX_TYPES,
  IMAGE_MANIFEST_TYPES,
  OCI_INDEX,
  OCI_MANIFEST,
} from './media-types.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
  platform?: unknown;
}

export interface ParsedManifest {
  mediaType: string;
  kind: 'image' | 'index';
  /** config and layers of an image manifest; empty for an index. */
  blobs: Descriptor[];
  /** child manifests of an index; empty for an image manifest. */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** What the referrers API reports: artifactType, else the config's media type. */
  artifactType?: string;
  annotations?: Record<string, string>;
}

export class ManifestError extends Error {
  constructor(
    message: string,
    readonly code: 'MANIFEST_INVALID' = 'MANIFEST_INVALID',
  ) {
    super(message);
  }
}

const SCHEMA1_REFUSED = 'Docker schema1 manifests are not supported; push an OCI or Docker schema2 manifest';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseDescriptor(v: unknown, where: string): Descriptor {
  if (!isObject(v)) throw new ManifestError(`${where}: descriptor must be an object`);
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== 'string' || mediaType === '') throw new ManifestError(`${where}: mediaType is required`);
  if (typeof digest !== 'string' || !parseDigest(digest)) throw new ManifestError(`${where}: invalid digest ${JSON.stringify(digest)}`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new ManifestError(`${where}: size must be a non-negative integer`);
  const d: Descriptor = { mediaType, digest, size };
  if (typeof v.artifactType === 'string') d.artifactType = v.artifactType;
  if (isObject(v.annotations)) d.annotations = v.annotations as Record<string, string>;
  if (Array.isArray(v.urls)) d.urls = v.urls.filter((u): u is string => typeof u === 'string');
  if (v.platform !== undefined) d.platform = v.platform;
  return d;
}

function descriptorList(v: unknown, where: string): Descriptor[] {
  if (!Array.isArray(v)) throw new ManifestError(`${where} must be an array`);
  return v.map((d, i) => parseDescriptor(d, `${where}[${i}]`));
}

/**
 * Validates a manifest body. `contentType` is the request's Content-Type (may be empty); when the body
 * also names a mediaType the two must agree, so a stored manifest is served back as what it is.
 */
export function parseManifest(body: Buffer, contentType: string): ParsedManifest {
  const declared = contentType.split(';')[0]!.trim().toLowerCase();
  // Distribution answers schema1 with MANIFEST_INVALID (400); UNSUPPORTED would be a 405, wrong for a PUT route.
  if (declared === DOCKER_SCHEMA1 || declared === DOCKER_SCHEMA1_SIGNED) throw new ManifestError(SCHEMA1_REFUSED);
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ManifestError('manifest is not valid JSON');
  }
  if (!isObject(doc)) throw new ManifestError('manifest must be a JSON object');
  if (doc.schemaVersion === 1) throw new ManifestError(SCHEMA1_REFUSED);
  if (doc.schemaVersion !== 2) throw new ManifestError('schemaVersion must be 2');

  const inBody = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  const usefulDeclared = declared && declared !== 'application/json' && declared !== 'application/octet-stream' ? declared : undefined;
  if (inBody && usefulDeclared && inBody !== usefulDeclared) {
    throw new ManifestError(`Content-Type ${usefulDeclared} does not match the manifest's mediaType ${inBody}`);
  }
  if (!inBody && (usefulDeclared === DOCKER_MANIFEST || usefulDeclared === DOCKER_MANIFEST_LIST)) {
    // Docker's formats require mediaType in the body (Distribution refuses them without it).
    throw new ManifestError(`a ${usefulDeclared} manifest must name its mediaType in the body`);
  }
  let mediaType = inBody ?? usefulDeclared;
  if (!mediaType) {
    // OCI allows mediaType to be absent; infer it from the shape, as Distribution does.
    if ('manifests' in doc) mediaType = OCI_INDEX;
    else if ('config' in doc) mediaType = OCI_MANIFEST;
    else throw new ManifestError('manifest has no mediaType');
  }

  const subject = doc.subject === undefined ? undefined : parseDescriptor(doc.subject, 'subject');
  const annotations = isObject(doc.annotations) ? (doc.annotations as Record<string, string>) : undefined;
  const artifactTypeField = typeof doc.artifactType === 'string' ? doc.artifactType : undefined;

  if (IMAGE_MANIFEST_TYPES.has(mediaType)) {
    if ('manifests' in doc) throw new ManifestError('an image manifest must not have manifests');
    const config = parseDescriptor(doc.config, 'config');
    const layers = doc.layers === undefined && mediaType === OCI_MANIFEST ? [] : descriptorList(doc.layers, 'layers');
    if (mediaType === DOCKER_MANIFEST && subject) throw new ManifestError('Docker schema2 manifests cannot have a subject');
    return {
      mediaType,
      kind: 'image',
      blobs: [config, ...layers],
      manifests: [],
      subject,
      artifactType: artifactTypeField ?? config.mediaType,
      annotations,
    };
  }
  if (INDEX_TYPES.has(mediaType)) {
    if ('config' in doc || 'layers' in doc) throw new ManifestError('an index must not have config or layers');
    const manifests = descriptorList(doc.manifests, 'manifests');
    if (mediaType === DOCKER_MANIFEST_LIST && subject) throw new ManifestError('Docker manifest lists cannot have a subject');
    return { mediaType, kind: 'index', blobs: [], manifests, subject, artifactType: artifactTypeField, annotations };
  }
  throw new ManifestError(`unsupported manifest media type ${mediaType}`);
}

/** Layers that live elsewhere (Windows foreign layers, descriptors with urls) need not be in the registry. */
export function isExternalBlob(d: Descriptor): boolean {
  return (d.urls !== undefined && d.urls.length > 0) || d.mediaType.includes('foreign') || d.mediaType.includes('nondistributable');
}
