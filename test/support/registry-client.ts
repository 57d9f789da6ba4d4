// A tiny OCI distribution client for assertions: fetch manifests and blobs, re-hash them, walk a repository.
import { createHash } from 'node:crypto';
import { get } from 'node:http';

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** Authorization headers by server base URL, so that every helper here logs in to the server it talks to. */
const credentials = new Map<string, string>();

/** Called by startWharf: requests to `base` carry `authorization` (e.g. `Basic …` for the admin). */
export function rememberCredentials(base: string, authorization: string): void {
  credentials.set(base.replace(/\/+$/, ''), authorization);
}

/** The Authorization header for a server (empty when none was remembered), for raw fetch calls in tests. */
export function authHeaders(base: string): Record<string, string> {
  const a = credentials.get(base.replace(/\/+$/, ''));
  return a === undefined ? {} : { authorization: a };
}

export function digestOf(data: Buffer | string, algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

export function sha256(data: Buffer | string): string {
  return digestOf(data, 'sha256');
}

export interface FetchedManifest {
  status: number;
  /** Docker-Content-Digest header */
  digest: string | null;
  contentType: string | null;
  body: Buffer;
}

export async function getManifest(base: string, repo: string, ref: string): Promise<FetchedManifest> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${ref}`, { headers: { accept: MANIFEST_ACCEPT, ...authHeaders(base) } });
  return {
    status: res.status,
    digest: res.headers.get('docker-content-digest'),
    contentType: res.headers.get('content-type'),
    body: Buffer.from(await res.arrayBuffer()),
  };
}

/** GETs a blob and hashes it while it streams (node:http, several times faster than fetch for large bodies). */
export function hashBlob(base: string, repo: string, digest: string): Promise<{ status: number; digest: string; size: number }> {
  const algorithm = digest.split(':')[0] ?? 'sha256';
  return new Promise((resolve, reject) => {
    get(`${base}/v2/${repo}/blobs/${digest}`, { headers: authHeaders(base) }, (res) => {
      const hash = createHash(algorithm);
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        size += chunk.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, digest: `${algorithm}:${hash.digest('hex')}`, size }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** All tags of a repository, following `Link` pagination; [] if the repository does not exist. */
export async function listTags(base: string, repo: string): Promise<string[]> {
  const tags: string[] = [];
  let next: string | undefined = `${base}/v2/${repo}/tags/list`;
  while (next) {
    const res: Response = await fetch(next, { headers: authHeaders(base) });
    if (res.status === 404) return tags;
    if (res.status !== 200) throw new Error(`GET ${next}: ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { tags?: string[] | null };
    tags.push(...(body.tags ?? []));
    const link: string | undefined = res.headers.get('link')?.match(/<([^>]+)>/)?.[1];
    next = link ? new URL(link, base).toString() : undefined;
  }
  return tags;
}

interface ManifestBody {
  manifests?: { digest: string }[];
  config?: { digest: string; size: number };
  layers?: { digest: string; size: number }[];
}

/**
 * Checks that a manifest (by tag or digest) is served with a matching digest and that everything it
 * references — child manifests of an index, config and layers of an image — exists and re-hashes
 * to its digest. Returns the problems found and the manifest digest.
 */
export async function verifyManifest(base: string, repo: string, ref: string): Promise<{ digest?: string; problems: string[] }> {
  const where = `${repo}:${ref}`;
  const m = await getManifest(base, repo, ref);
  if (m.status !== 200) return { problems: [`${where}: manifest GET answered ${m.status} ${m.body.toString().slice(0, 200)}`] };
  const problems: string[] = [];
  const alg = m.digest?.split(':')[0] ?? 'sha256';
  const actual = digestOf(m.body, alg);
  if (m.digest !== actual) problems.push(`${where}: Docker-Content-Digest ${m.digest} but body hashes to ${actual}`);
  if (ref.includes(':') && ref !== actual) problems.push(`${where}: body hashes to ${actual}`);
  let parsed: ManifestBody;
  try {
    parsed = JSON.parse(m.body.toString('utf8')) as ManifestBody;
  } catch {
    return { digest: actual, problems: [...problems, `${where}: manifest is not JSON`] };
  }
  for (const child of parsed.manifests ?? []) {
    problems.push(...(await verifyManifest(base, repo, child.digest)).problems);
  }
  const blobs = [...(parsed.config ? [parsed.config] : []), ...(parsed.layers ?? [])];
  for (const blob of blobs) {
    const got = await hashBlob(base, repo, blob.digest);
    if (got.status !== 200) problems.push(`${where}: blob ${blob.digest} answered ${got.status}`);
    else if (got.digest !== blob.digest || got.size !== blob.size) {
      problems.push(`${where}: blob ${blob.digest} (${blob.size} B) came back as ${got.digest} (${got.size} B)`);
    }
  }
  return { digest: actual, problems };
}

/** Verifies every tag of a repository; returns tag → manifest digest and the problems found. */
export async function verifyRepository(base: string, repo: string): Promise<{ tags: Map<string, string>; problems: string[] }> {
  const tags = new Map<string, string>();
  const problems: string[] = [];
  for (const tag of await listTags(base, repo)) {
    const r = await verifyManifest(base, repo, tag);
    problems.push(...r.problems);
    if (r.digest) tags.set(tag, r.digest);
  }
  return { tags, problems };
}

/** Pushes one blob in a single POST + PUT; the digest. */
export async function pushBlob(base: string, repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: authHeaders(base) });
  if (start.status !== 202) throw new Error(`POST upload: ${start.status} ${await start.text()}`);
  const location = new URL(start.headers.get('location')!, base);
  location.searchParams.set('digest', digest);
  const put = await fetch(`${base}${location.pathname}${location.search}`, {
    method: 'PUT',
    headers: { ...authHeaders(base), 'content-type': 'application/octet-stream' },
    body: new Uint8Array(data),
  });
  if (put.status !== 201) throw new Error(`PUT blob: ${put.status} ${await put.text()}`);
  return digest;
}

/** An image of one layer of `layer`'s bytes pushed to `base` as repo:tag; the manifest's digest. */
export async function pushImage(base: string, repo: string, tag: string, layer: Buffer): Promise<string> {
  const layerDigest = await pushBlob(base, repo, layer);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layerDigest] } }));
  const configDigest = await pushBlob(base, repo, config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
    }),
  );
  const res = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { ...authHeaders(base), 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: new Uint8Array(manifest),
  });
  if (res.status !== 201) throw new Error(`PUT manifest: ${res.status} ${await res.text()}`);
  return sha256(manifest);
}
