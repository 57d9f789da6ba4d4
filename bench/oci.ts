// The registry operations the bench drives, as docker and skopeo do them over the OCI Distribution API.
import { bufferBlob, type BlobBody } from './blobs.js';
import type { Client, Response } from './client.js';
import type { Headers } from './credentials.js';
import type { RawConnection, RawResponse } from './rawhttp.js';

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/** The Accept header docker sends when it pulls by tag. */
export const MANIFEST_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  OCI_MANIFEST,
  'application/vnd.oci.image.index.v1+json',
].join(', ');

export interface Image {
  config: BlobBody;
  layers: BlobBody[];
  manifest: Buffer;
  digest: string;
}

function expectStatus(res: Response | RawResponse, status: number, what: string): void {
  if (res.status !== status) {
    const body = res.body ? `: ${res.body.toString('utf8').slice(0, 300)}` : '';
    throw new Error(`${what}: HTTP ${res.status}, expected ${status}${body}`);
  }
}

function location(res: Response, what: string): string {
  const value = res.headers.location;
  if (!value) throw new Error(`${what}: no Location header`);
  return value;
}

function withDigest(uploadUrl: string, digest: string): string {
  return `${uploadUrl}${uploadUrl.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

async function startUpload(client: Client, repo: string): Promise<string> {
  const res = await client.request('POST', `/v2/${repo}/blobs/uploads/`, { keepBody: true });
  expectStatus(res, 202, `POST /v2/${repo}/blobs/uploads/`);
  return location(res, 'POST upload');
}

const octets = { 'content-type': 'application/octet-stream' };

/** POST a session, then PUT ?digest= with the whole blob as the body. */
export async function pushMonolithic(client: Client, repo: string, blob: BlobBody): Promise<void> {
  const upload = await startUpload(client, repo);
  const res = await client.request('PUT', withDigest(upload, blob.digest), {
    headers: octets,
    body: { length: blob.size, chunks: blob.slices() },
    keepBody: true,
  });
  expectStatus(res, 201, `PUT ${blob.digest} (${blob.size} bytes)`);
}

/** POST a session, PATCH chunks with Content-Range, then PUT ?digest= with no body. */
export async function pushChunked(client: Client, repo: string, blob: BlobBody, chunkSize: number): Promise<void> {
  let upload = await startUpload(client, repo);
  for (let start = 0; start < blob.size; start += chunkSize) {
    const end = Math.min(blob.size, start + chunkSize);
    const res = await client.request('PATCH', upload, {
      headers: { ...octets, 'content-range': `${start}-${end - 1}` },
      body: { length: end - start, chunks: blob.slices(start, end) },
      keepBody: true,
    });
    expectStatus(res, 202, `PATCH ${start}-${end - 1} of ${blob.digest}`);
    upload = location(res, 'PATCH');
  }
  const res = await client.request('PUT', withDigest(upload, blob.digest), { keepBody: true });
  expectStatus(res, 201, `PUT ${blob.digest} after chunks`);
}

/** GET a blob, counting its bytes. */
export async function pullBlob(connection: RawConnection, repo: string, digest: string, size: number, auth: Headers = {}): Promise<void> {
  const res = await connection.request('GET', `/v2/${repo}/blobs/${digest}`, auth);
  expectStatus(res, 200, `GET blob ${digest}`);
  if (res.bytes !== size) throw new Error(`GET blob ${digest}: ${res.bytes} bytes, expected ${size}`);
}

/** An OCI image manifest over the given layers, with a small config blob naming them. */
export function makeImage(layers: BlobBody[]): Image {
  const config = bufferBlob(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['/bin/sh'] },
        rootfs: { type: 'layers', diff_ids: layers.map((layer) => layer.digest) },
      }),
    ),
  );
  const descriptor = (mediaType: string, blob: BlobBody) => ({ mediaType, digest: blob.digest, size: blob.size });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: descriptor('application/vnd.oci.image.config.v1+json', config),
      layers: layers.map((layer) => descriptor('application/vnd.oci.image.layer.v1.tar+gzip', layer)),
    }),
  );
  return { config, layers, manifest, digest: bufferBlob(manifest).digest };
}

export async function putManifest(client: Client, repo: string, reference: string, manifest: Buffer): Promise<void> {
  const res = await client.request('PUT', `/v2/${repo}/manifests/${reference}`, {
    headers: { 'content-type': OCI_MANIFEST },
    body: { length: manifest.length, chunks: [manifest] },
    keepBody: true,
  });
  expectStatus(res, 201, `PUT manifest ${repo}:${reference}`);
}

/** GET a manifest by tag as docker does. */
export async function getManifest(connection: RawConnection, repo: string, tag: string, auth: Headers = {}): Promise<RawResponse> {
  const res = await connection.request('GET', `/v2/${repo}/manifests/${tag}`, { Accept: MANIFEST_ACCEPT, ...auth }, true);
  expectStatus(res, 200, `GET manifest ${repo}:${tag}`);
  return res;
}

/** The layers a manifest names, as `pullBlob` wants them. */
export function layersOf(manifest: RawResponse): { digest: string; size: number }[] {
  return (JSON.parse(manifest.body?.toString('utf8') ?? '{}') as { layers?: { digest: string; size: number }[] }).layers ?? [];
}

export async function headManifest(connection: RawConnection, repo: string, tag: string, auth: Headers = {}): Promise<RawResponse> {
  const res = await connection.request('HEAD', `/v2/${repo}/manifests/${tag}`, { Accept: MANIFEST_ACCEPT, ...auth });
  expectStatus(res, 200, `HEAD manifest ${repo}:${tag}`);
  return res;
}

export async function getTags(connection: RawConnection, repo: string, auth: Headers = {}): Promise<string[]> {
  const res = await connection.request('GET', `/v2/${repo}/tags/list`, auth, true);
  expectStatus(res, 200, `GET tags of ${repo}`);
  return (JSON.parse(res.body?.toString('utf8') ?? '{}') as { tags?: string[] }).tags ?? [];
}
