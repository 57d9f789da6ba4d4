// Writes OCI image layouts (the `oci:` transport of skopeo) by hand: single images and multi-platform
// indexes with layers of known content, so a test knows every digest before it pushes.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { sha256 } from './registry-client.js';

export const MEDIA_TYPE = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface LayerFile {
  name: string;
  content: Buffer;
}

/** One layer: the blob (a gzipped tar), its digest, and the digest of the uncompressed tar (the config's diff_id). */
export interface Layer {
  blob: Buffer;
  digest: string;
  diffId: string;
}

/** A layer holding the given files. gzip level 0: valid gzip, no time spent compressing random bytes. */
export function makeLayer(files: LayerFile[]): Layer {
  const tar = makeTar(files);
  const blob = gzipSync(tar, { level: 0 });
  return { blob, digest: sha256(blob), diffId: sha256(tar) };
}

export async function initLayout(dir: string): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
}

export async function addBlob(dir: string, data: Buffer, mediaType: string, digest = sha256(data)): Promise<Descriptor> {
  const path = join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  if (!existsSync(path)) await writeFile(path, data); // images of one layout may share a layer
  return { mediaType, digest, size: data.length };
}

/** Adds config, layers and manifest of one image; returns the manifest's descriptor (with its platform). */
export async function addImage(dir: string, layers: Layer[], platform: Platform): Promise<Descriptor> {
  const config = {
    ...platform,
    created: '2024-01-01T00:00:00Z',
    config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'wharf test' })),
  };
  const configDesc = await addBlob(dir, Buffer.from(JSON.stringify(config)), MEDIA_TYPE.config);
  const layerDescs: Descriptor[] = [];
  for (const layer of layers) layerDescs.push(await addBlob(dir, layer.blob, MEDIA_TYPE.layer, layer.digest));
  const manifest = { schemaVersion: 2, mediaType: MEDIA_TYPE.manifest, config: configDesc, layers: layerDescs };
  const desc = await addBlob(dir, Buffer.from(JSON.stringify(manifest)), MEDIA_TYPE.manifest);
  return { ...desc, platform };
}

export async function addIndex(dir: string, manifests: Descriptor[]): Promise<Descriptor> {
  const index = { schemaVersion: 2, mediaType: MEDIA_TYPE.index, manifests };
  return addBlob(dir, Buffer.from(JSON.stringify(index)), MEDIA_TYPE.index);
}

/** Names a manifest or index in the layout's index.json, so that `oci:DIR:TAG` finds it. */
export async function tagInLayout(dir: string, tag: string, desc: Descriptor): Promise<void> {
  const path = join(dir, 'index.json');
  let top: { schemaVersion: number; manifests: Descriptor[] } = { schemaVersion: 2, manifests: [] };
  try {
    top = JSON.parse(await readFile(path, 'utf8'));
  } catch {
    // a new layout
  }
  const { platform: _platform, ...plain } = desc;
  top.manifests.push({ ...plain, annotations: { 'org.opencontainers.image.ref.name': tag } });
  await writeFile(path, JSON.stringify(top));
}

/** Reads a blob of a layout (e.g. one that skopeo wrote). */
export function readLayoutBlob(dir: string, digest: string): Promise<Buffer> {
  const [alg, hex] = digest.split(':');
  return readFile(join(dir, 'blobs', alg, hex));
}

/** The descriptor index.json gives for a tag. */
export async function layoutTag(dir: string, tag: string): Promise<Descriptor | undefined> {
  const top = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  return top.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
}

/** A minimal ustar archive of regular files (enough for a layer that container runtimes can unpack). */
function makeTar(files: LayerFile[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    const header = Buffer.alloc(512);
    header.write(f.name, 0, 100, 'utf8');
    header.write('0000644\0', 100, 'ascii'); // mode
    header.write('0000000\0', 108, 'ascii'); // uid
    header.write('0000000\0', 116, 'ascii'); // gid
    header.write(f.content.length.toString(8).padStart(11, '0') + '\0', 124, 'ascii');
    header.write('14000000000\0', 136, 'ascii'); // mtime: a fixed date, so layers are reproducible
    header.write('        ', 148, 'ascii'); // checksum field counts as spaces while summing
    header.write('0', 156, 'ascii'); // regular file
    header.write('ustar\0' + '00', 257, 'ascii');
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
    parts.push(header, f.content, Buffer.alloc((512 - (f.content.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
