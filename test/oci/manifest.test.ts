// Manifest parsing: the four media types Wharf stores, and every way a pushed manifest can be wrong.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { digestOf } from '../../src/oci/digest.js';
import { isExternalBlob, ManifestError, parseManifest } from '../../src/oci/manifest.js';
import {
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  DOCKER_SCHEMA1,
  DOCKER_SCHEMA1_SIGNED,
  OCI_EMPTY_CONFIG,
  OCI_INDEX,
  OCI_MANIFEST,
} from '../../src/oci/media-types.js';

const CONFIG = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf('config'), size: 6 };
const LAYER = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf('layer'), size: 5 };
const DOCKER_CONFIG = { mediaType: 'application/vnd.docker.container.image.v1+json', digest: digestOf('config'), size: 6 };
const DOCKER_LAYER = { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: digestOf('layer'), size: 5 };
const CHILD = { mediaType: OCI_MANIFEST, digest: digestOf('child'), size: 5, platform: { os: 'linux', architecture: 'amd64' } };

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

function invalid(body: unknown, contentType: string, pattern: RegExp, code: 'MANIFEST_INVALID' | 'UNSUPPORTED' = 'MANIFEST_INVALID') {
  const raw = Buffer.isBuffer(body) ? body : json(body);
  assert.throws(
    () => parseManifest(raw, contentType),
    (e: unknown) => {
      assert.ok(e instanceof ManifestError, `expected a ManifestError, got ${String(e)}`);
      assert.equal(e.code, code);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

test('OCI image manifest: config and layers are its blobs, the config type its artifact type', () => {
  const m = parseManifest(json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: CONFIG, layers: [LAYER] }), OCI_MANIFEST);
  assert.equal(m.mediaType, OCI_MANIFEST);
  assert.equal(m.kind, 'image');
  assert.deepEqual(m.blobs.map((b) => b.digest), [CONFIG.digest, LAYER.digest]);
  assert.deepEqual(m.manifests, []);
  assert.equal(m.artifactType, CONFIG.mediaType);
  assert.equal(m.subject, undefined);
});

test('OCI image manifest without mediaType in the body takes it from Content-Type (with parameters) or its shape', () => {
  const body = json({ schemaVersion: 2, config: CONFIG, layers: [LAYER] });
  assert.equal(parseManifest(body, `${OCI_MANIFEST}; charset=utf-8`).mediaType, OCI_MANIFEST);
  assert.equal(parseManifest(body, '').mediaType, OCI_MANIFEST);
  assert.equal(parseManifest(body, 'application/json').mediaType, OCI_MANIFEST);
  assert.equal(parseManifest(json({ schemaVersion: 2, manifests: [CHILD] }), '').mediaType, OCI_INDEX);
});

test('OCI image index: children are manifests, not blobs', () => {
  const m = parseManifest(json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [CHILD, { ...CHILD, digest: digestOf('arm') }] }), OCI_INDEX);
  assert.equal(m.kind, 'index');
  assert.equal(m.mediaType, OCI_INDEX);
  assert.deepEqual(m.blobs, []);
  assert.deepEqual(m.manifests.map((d) => d.digest), [CHILD.digest, digestOf('arm')]);
  assert.deepEqual(m.manifests[0]!.platform, CHILD.platform);
});

test('Docker schema2 manifest and manifest list', () => {
  const image = parseManifest(json({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: DOCKER_CONFIG, layers: [DOCKER_LAYER] }), DOCKER_MANIFEST);
  assert.equal(image.kind, 'image');
  assert.equal(image.mediaType, DOCKER_MANIFEST);
  assert.deepEqual(image.blobs.map((b) => b.mediaType), [DOCKER_CONFIG.mediaType, DOCKER_LAYER.mediaType]);
  const list = parseManifest(
    json({ schemaVersion: 2, mediaType: DOCKER_MANIFEST_LIST, manifests: [{ ...CHILD, mediaType: DOCKER_MANIFEST }] }),
    DOCKER_MANIFEST_LIST,
  );
  assert.equal(list.kind, 'index');
  assert.equal(list.mediaType, DOCKER_MANIFEST_LIST);
  // With a generic Content-Type the body's mediaType decides.
  assert.equal(parseManifest(json({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: DOCKER_CONFIG, layers: [] }), 'application/json').mediaType, DOCKER_MANIFEST);
});

test('Docker schema2 types must name their mediaType in the body, as Distribution requires', () => {
  invalid({ schemaVersion: 2, config: DOCKER_CONFIG, layers: [DOCKER_LAYER] }, DOCKER_MANIFEST, /mediaType/);
  invalid({ schemaVersion: 2, manifests: [CHILD] }, DOCKER_MANIFEST_LIST, /mediaType/);
});

test('schema1 is refused with an error that says so, by Content-Type or by body', () => {
  const v1 = { schemaVersion: 1, name: 'a', tag: 'latest', architecture: 'amd64', fsLayers: [], history: [] };
  for (const ct of [DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED, '', 'application/json']) invalid(v1, ct, /schema1.*not supported/i);
  invalid(Buffer.from('not even json'), DOCKER_SCHEMA1_SIGNED, /schema1/);
});

test('Content-Type and body mediaType must agree', () => {
  invalid({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: CONFIG, layers: [] }, DOCKER_MANIFEST, /does not match/);
  invalid({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }, OCI_MANIFEST, /does not match/);
  invalid({ schemaVersion: 2, mediaType: DOCKER_MANIFEST_LIST, manifests: [] }, OCI_INDEX, /does not match/);
});

test('shape must fit the media type', () => {
  invalid({ schemaVersion: 2, config: CONFIG, layers: [], manifests: [] }, OCI_MANIFEST, /must not have manifests/);
  invalid({ schemaVersion: 2, manifests: [], config: CONFIG }, OCI_INDEX, /must not have config/);
  invalid({ schemaVersion: 2, layers: [LAYER] }, OCI_MANIFEST, /^config/);
  invalid({ schemaVersion: 2, mediaType: OCI_INDEX }, OCI_INDEX, /manifests must be an array/);
});

test('missing or malformed fields are MANIFEST_INVALID with the field named', () => {
  invalid(Buffer.from('{"schemaVersion":2,'), OCI_MANIFEST, /not valid JSON/);
  invalid([CONFIG], OCI_MANIFEST, /JSON object/);
  invalid(null, OCI_MANIFEST, /JSON object/);
  invalid({ mediaType: OCI_MANIFEST, config: CONFIG, layers: [] }, OCI_MANIFEST, /schemaVersion/);
  invalid({ schemaVersion: 3, mediaType: OCI_MANIFEST, config: CONFIG, layers: [] }, OCI_MANIFEST, /schemaVersion/);
  invalid({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }, OCI_MANIFEST, /^config/);
  invalid({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: CONFIG, layers: {} }, OCI_MANIFEST, /layers must be an array/);
  invalid({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: DOCKER_CONFIG }, DOCKER_MANIFEST, /layers must be an array/);
  invalid({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { ...CONFIG, mediaType: undefined }, layers: [] }, OCI_MANIFEST, /config: mediaType/);
  invalid({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: CONFIG, layers: [{ ...LAYER, digest: undefined }] }, OCI_MANIFEST, /layers\[0\]: invalid digest/);
  invalid({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: CONFIG, layers: [{ ...LAYER, digest: 'sha256:abc' }] }, OCI_MANIFEST, /invalid digest/);
  for (const size of [-1, 1.5, '5', undefined, null]) {
    invalid({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: CONFIG, layers: [{ ...LAYER, size }] }, OCI_MANIFEST, /layers\[0\]: size/);
  }
  invalid({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: CONFIG, layers: ['x'] }, OCI_MANIFEST, /layers\[0\]: descriptor must be an object/);
  invalid({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...CHILD, size: -3 }] }, OCI_INDEX, /manifests\[0\]: size/);
  invalid({ schemaVersion: 2, mediaType: 'application/vnd.example+json', config: CONFIG }, '', /unsupported manifest media type/);
  invalid({ schemaVersion: 2, layers: [] }, '', /no mediaType/);
});

test('OCI 1.1 artifacts: artifactType and subject are parsed', () => {
  const subject = { mediaType: OCI_MANIFEST, digest: digestOf('subject'), size: 7 };
  const empty = { mediaType: OCI_EMPTY_CONFIG, digest: digestOf('{}'), size: 2 };
  const artifact = parseManifest(
    json({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType: 'application/vnd.example.sbom', config: empty, layers: [LAYER], subject, annotations: { a: 'b' } }),
    OCI_MANIFEST,
  );
  assert.equal(artifact.artifactType, 'application/vnd.example.sbom');
  assert.deepEqual(artifact.subject, subject);
  assert.deepEqual(artifact.annotations, { a: 'b' });
  // Without artifactType the config's media type is what the referrers API reports.
  const signature = parseManifest(json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { ...CONFIG, mediaType: 'application/vnd.example.sig' }, layers: [], subject }), '');
  assert.equal(signature.artifactType, 'application/vnd.example.sig');
  const index = parseManifest(json({ schemaVersion: 2, mediaType: OCI_INDEX, artifactType: 'application/vnd.example.bundle', manifests: [CHILD], subject }), OCI_INDEX);
  assert.equal(index.artifactType, 'application/vnd.example.bundle');
  assert.equal(index.subject?.digest, subject.digest);
  // An OCI manifest may leave out layers (an artifact of config alone).
  assert.deepEqual(parseManifest(json({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: empty }), OCI_MANIFEST).blobs.length, 1);
  invalid({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: CONFIG, layers: [], subject: { digest: 'nope' } }, OCI_MANIFEST, /subject/);
  invalid({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: DOCKER_CONFIG, layers: [], subject }, DOCKER_MANIFEST, /cannot have a subject/);
  invalid({ schemaVersion: 2, mediaType: DOCKER_MANIFEST_LIST, manifests: [], subject }, DOCKER_MANIFEST_LIST, /cannot have a subject/);
});

test('foreign and non-distributable layers need not be in the registry', () => {
  assert.ok(isExternalBlob({ ...DOCKER_LAYER, mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip' }));
  assert.ok(isExternalBlob({ ...LAYER, mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip' }));
  assert.ok(isExternalBlob({ ...LAYER, urls: ['https://example.invalid/layer'] }));
  assert.ok(!isExternalBlob(LAYER));
  assert.ok(!isExternalBlob({ ...LAYER, urls: [] }));
});
