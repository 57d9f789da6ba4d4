// Shared steps for the retention and garbage-collection tests: a hub with a config file, untagged images,
// indexes and referrers pushed over /v2, and the check that a manifest is whole (manifest and every blob).
import assert from 'node:assert/strict';
import { mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OCI_INDEX, OCI_MANIFEST } from '../../src/oci/media-types.js';
import { fsck } from '../../src/registry/fsck.js';
import { descriptor, digestOf, imageManifest, pushBlob, putManifest, startRegistry, type Registry } from '../server/v2-harness.js';

/** A hub whose config file is `yaml` (kept in its data dir, removed with it). */
export async function startHub(yaml: string): Promise<Registry> {
  const dataDir = await mkdtemp(join(tmpdir(), 'wharf-gc-'));
  await writeFile(join(dataDir, 'wharf.yaml'), yaml);
  return startRegistry({ dataDir, env: { WHARF_CONFIG: join(dataDir, 'wharf.yaml') } });
}

/** Pushes an image manifest under `reference` (a tag, or omitted: by digest, untagged); returns its digest and body. */
export async function pushManifest(r: Registry, repo: string, seed: string, reference?: string, extra?: Record<string, unknown>): Promise<{ digest: string; body: Buffer }> {
  const body = await imageManifest(r, repo, { seed, extra });
  const digest = digestOf(body);
  const res = await putManifest(r, repo, reference ?? digest, body);
  assert.equal(res.status, 201, await res.text());
  return { digest, body };
}

/** Pushes a referrer (a signature) of `subject`, untagged unless `reference` is a tag. */
export async function pushReferrer(r: Registry, repo: string, subject: { digest: string; body: Buffer }, seed: string, reference?: string): Promise<{ digest: string; body: Buffer }> {
  return pushManifest(r, repo, seed, reference, { artifactType: 'application/vnd.example.signature', subject: descriptor(subject.body, OCI_MANIFEST) });
}

/** Pushes an index over `children` (bodies) under `reference` (or by digest); returns its digest. */
export async function pushIndex(r: Registry, repo: string, children: Buffer[], reference?: string): Promise<string> {
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children.map((c) => descriptor(c, OCI_MANIFEST)) }));
  const digest = digestOf(body);
  const res = await putManifest(r, repo, reference ?? digest, body, OCI_INDEX);
  assert.equal(res.status, 201, await res.text());
  return digest;
}

export async function manifestStatus(r: Registry, repo: string, reference: string): Promise<number> {
  const res = await r.req(`/v2/${repo}/manifests/${reference}`, { headers: { accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } });
  await res.arrayBuffer();
  return res.status;
}

/** Asserts that `reference` pulls whole: the manifest, every blob with the right bytes, every child. */
export async function assertPullable(r: Registry, repo: string, reference: string): Promise<void> {
  const res = await r.req(`/v2/${repo}/manifests/${reference}`, { headers: { accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } });
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, `${repo}:${reference} should pull`);
  const m = JSON.parse(body.toString('utf8')) as { config?: { digest: string }; layers?: { digest: string }[]; manifests?: { digest: string }[] };
  for (const child of m.manifests ?? []) await assertPullable(r, repo, child.digest);
  for (const blob of [...(m.config ? [m.config] : []), ...(m.layers ?? [])]) {
    const b = await r.req(`/v2/${repo}/blobs/${blob.digest}`);
    const bytes = Buffer.from(await b.arrayBuffer());
    assert.equal(b.status, 200, `blob ${blob.digest} of ${repo}@${reference} should pull`);
    assert.equal(digestOf(bytes), blob.digest);
  }
}

export async function assertFsckClean(r: Registry): Promise<void> {
  const report = await fsck(r.wharf.blobs, r.wharf.meta, { repair: false, orphanGraceMs: 0 });
  assert.deepEqual(report.problems, [], 'fsck should find nothing');
}

/** Bytes of all blob files under the data dir. */
export async function blobBytes(dataDir: string): Promise<number> {
  let total = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(dir, e.name));
      else total += (await stat(join(dir, e.name))).size;
    }
  };
  await walk(join(dataDir, 'blobs'));
  return total;
}

export async function blobFileExists(r: Registry, digest: string): Promise<boolean> {
  return (await r.wharf.blobs.stat(digest)) !== null;
}

export interface Image {
  digest: string;
  body: Buffer;
  /** config first, then the layers */
  blobs: Buffer[];
}

/** An image manifest over a fresh config and `layers` (nothing pushed yet). */
export function image(layers: Buffer[], seed: string): Image {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: descriptor(config, 'application/vnd.oci.image.config.v1+json'),
      layers: layers.map((l) => descriptor(l, 'application/vnd.oci.image.layer.v1.tar+gzip')),
    }),
  );
  return { digest: digestOf(body), body, blobs: [config, ...layers] };
}

/** Pushes the image's blobs, then its manifest under `reference` (default: its digest); asserts success. */
export async function pushImageOf(r: Registry, repo: string, img: Image, reference = img.digest): Promise<Image> {
  for (const b of img.blobs) await pushBlob(r, repo, b);
  const res = await putManifest(r, repo, reference, img.body);
  assert.equal(res.status, 201, await res.text());
  return img;
}
