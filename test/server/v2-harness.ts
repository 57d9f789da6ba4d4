// An in-process Wharf for the /v2 API tests: the real HTTP server on 127.0.0.1:0 over a temp data dir,
// plus the small registry-client steps (push a blob, build and push a manifest) those tests share.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { loadConfig } from '../../src/config.js';
import { digestOf } from '../../src/oci/digest.js';
import { OCI_MANIFEST } from '../../src/oci/media-types.js';
import { listen, serveHub, startingServer, type RunningServer } from '../../src/server/server.js';
import { openWharf, type Wharf } from '../../src/wharf.js';
import type { Engines } from '../../src/engine/engines.js';
import type { StoreVariant } from '../support/s3.js';
import { databaseEnv, forgetDatabase } from '../support/database.js';

export { digestOf };

export interface Registry {
  url: string;
  dataDir: string;
  wharf: Wharf;
  /** fetch against the server: `path` starts with /v2/… */
  req(path: string, init?: Init): Promise<Response>;
  /** Stops the server and closes the data dir, keeping the data (for a restart). */
  stop(): Promise<void>;
  /** Stops and removes the data dir. */
  close(): Promise<void>;
}

/** RequestInit that takes Buffers (Node's fetch does) and streamed bodies (`duplex: 'half'`). */
export type Init = Omit<RequestInit, 'body'> & { body?: Buffer | string | ReadableStream<Uint8Array> | null; duplex?: 'half' };

export interface StartOptions {
  dataDir?: string;
  /** WHARF_* environment for loadConfig (isolated from the test process's own environment) */
  env?: Record<string, string>;
  /** the engines deployments reach (default: the real ones) */
  engines?: Engines;
  /** where the hub's services log (default: nowhere) */
  log?: Logger;
}

/**
 * One registry over `store` for the enclosing suite: set up before its tests, closed (and the store's bucket
 * removed) after them. `started` receives it once it listens.
 */
export function registryOn(store: StoreVariant, started: (r: Registry) => void): void {
  let r: Registry | undefined;
  before(async () => {
    await store.setup();
    r = await startRegistry({ env: store.env() });
    started(r);
  });
  after(async () => {
    await r?.close();
    await store.teardown();
  });
}

export async function startRegistry(opts: StartOptions = {}): Promise<Registry> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'wharf-v2-')));
  const log = opts.log ?? pino({ level: 'silent' });
  // Bound first, as `wharf serve` does: the hub is built knowing the address deploy targets pull from.
  const server = startingServer(log);
  const running: RunningServer = await listen(server, '127.0.0.1', 0);
  const wharf = await openWharf(loadConfig({ flags: { data: dataDir }, env: { ...(await databaseEnv(dataDir)), ...opts.env } }), {}, opts.engines, {
    log,
    registryHost: new URL(running.url).host,
  }).catch(async (e: unknown) => {
    await running.close();
    throw e;
  });
  serveHub(server, { wharf, log });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // Every response has been read by now; a keep-alive socket whose last response is still being flushed
    // would otherwise hold close() for its 5 s grace.
    const closing = running.close();
    running.server.closeAllConnections();
    await closing;
    await wharf.close();
  };
  return {
    url: running.url,
    dataDir,
    wharf,
    req: (path, init) => fetch(running.url + path, init as RequestInit),
    stop,
    close: async () => {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
      await forgetDatabase(dataDir);
    },
  };
}

/** Asserts an OCI error response: status, JSON content type, and the code of the first error. */
export async function expectError(res: Response, status: number, code: string): Promise<{ code: string; message: string; detail?: unknown }> {
  const raw = await res.text();
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${raw}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `error body must be JSON, got ${res.headers.get('content-type')}`);
  assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  const body = JSON.parse(raw) as { errors: { code: string; message: string; detail?: unknown }[] };
  assert.ok(Array.isArray(body.errors) && body.errors.length > 0, raw);
  assert.equal(body.errors[0]!.code, code, raw);
  assert.equal(typeof body.errors[0]!.message, 'string');
  return body.errors[0]!;
}

/** Asserts a status, showing the body when it differs. */
export async function expectStatus(res: Response, status: number): Promise<void> {
  if (res.status !== status) assert.fail(`expected ${status}, got ${res.status}: ${await res.text()}`);
}

/** Pushes a blob in one request (POST ?digest=) and returns its digest. */
export async function pushBlob(r: Registry, repo: string, data: Buffer | string, algorithm: 'sha256' | 'sha512' = 'sha256'): Promise<string> {
  const digest = digestOf(data, algorithm);
  const res = await r.req(`/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data, headers: { 'content-type': 'application/octet-stream' } });
  await expectStatus(res, 201);
  await res.arrayBuffer();
  return digest;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  platform?: { os: string; architecture: string };
}

export function descriptor(data: Buffer | string, mediaType: string): Descriptor {
  return { mediaType, digest: digestOf(data), size: Buffer.byteLength(data) };
}

/** Pushes a config and one layer to `repo` and returns the body of an image manifest over them. */
export async function imageManifest(
  r: Registry,
  repo: string,
  opts: { seed?: string; mediaType?: string; configType?: string; layerType?: string; extra?: Record<string, unknown> } = {},
): Promise<Buffer> {
  const seed = opts.seed ?? 'x';
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layer = Buffer.from(`layer of ${seed}`);
  await pushBlob(r, repo, config);
  await pushBlob(r, repo, layer);
  const mediaType = opts.mediaType ?? OCI_MANIFEST;
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: descriptor(config, opts.configType ?? 'application/vnd.oci.image.config.v1+json'),
      layers: [descriptor(layer, opts.layerType ?? 'application/vnd.oci.image.layer.v1.tar+gzip')],
      ...opts.extra,
    }),
  );
}

export function putManifest(r: Registry, repo: string, reference: string, body: Buffer | string, contentType: string = OCI_MANIFEST): Promise<Response> {
  return r.req(`/v2/${repo}/manifests/${reference}`, { method: 'PUT', body, headers: { 'content-type': contentType } });
}

/** Opens an upload session and returns its Location (a path). */
export async function openUpload(r: Registry, repo: string): Promise<string> {
  const res = await r.req(`/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await expectStatus(res, 202);
  const location = res.headers.get('location');
  assert.ok(location, 'POST must answer with a Location');
  return location;
}

/** Appends a query parameter to a Location that may already carry some. */
export function withQuery(location: string, query: string): string {
  return location + (location.includes('?') ? '&' : '?') + query;
}

export function locationPath(location: string): string {
  return location.startsWith('http') ? new URL(location).pathname + new URL(location).search : location;
}
