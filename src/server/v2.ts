// The /v2 registry API (OCI Distribution Spec v1.1): maps each route to the Registry domain, with the
// access check first. Kept thin: parsing headers and shaping responses only.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { RegistryError } from '../oci/errors.js';
import { parseDigest } from '../oci/digest.js';
import { isValidRepositoryName } from '../oci/reference.js';
import type { Registry } from '../registry/registry.js';
import { withDeclaredLength, type ByteRange } from '../storage/blob-store.js';
import type { Action, Principal } from '../auth/access.js';
import type { RequestAccess } from './access.js';
import { readBody } from './request-body.js';
import { sendError } from './http-errors.js';
import { BufferPool, sendBlobFile } from './blob-sender.js';
import { TurnBudget } from './turn-budget.js';
import { withOwnChunks } from '../storage/release-buffer.js';

/** The most entries one tags/list or _catalog page answers. */
const MAX_PAGE = 10_000;
const API_VERSION = { 'Docker-Distribution-API-Version': 'registry/2.0' };

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  name: string;
  param: string;
  principal: Principal;
}

type Handler = (ctx: Ctx) => Promise<void>;

interface Route {
  pattern: RegExp;
  /** method → [actions required, handler] */
  methods: Record<string, [Action[], Handler]>;
}

export interface V2Options {
  registry: Registry;
  access: RequestAccess;
  log: Logger;
}

/** The /v2 handler, with its route table (patterns and methods) for tests that must cover every route. */
export type V2Api = ((req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>) & {
  routes: { pattern: RegExp; methods: string[] }[];
};

/** Paths answered outside the table: the version check and the catalog. */
export const V2_FIXED_PATHS = ['/v2/', '/v2/_catalog'] as const;

export function v2Api(opts: V2Options): V2Api {
  const { registry, access, log } = opts;
  // Buffers blob responses read into: one pool per server, so its bound holds across connections.
  const blobBuffers = new BufferPool();
  // And the bytes they write per turn of the event loop, so a pull storm leaves room to accept connections.
  const blobTurns = new TurnBudget();

  const uploadHeaders = (name: string, id: string, size: number): Record<string, string> => ({
    Location: `/v2/${name}/blobs/uploads/${id}`,
    Range: `0-${size > 0 ? size - 1 : 0}`,
    'Docker-Upload-UUID': id,
  });

  const send = (res: ServerResponse, status: number, headers: Record<string, string | number> = {}, body?: string | Buffer): void => {
    const h: Record<string, string | number> = { ...API_VERSION, ...headers };
    if (body === undefined) h['Content-Length'] = 0;
    else if (h['Content-Length'] === undefined) h['Content-Length'] = Buffer.byteLength(body);
    res.writeHead(status, h);
    res.end(res.req.method === 'HEAD' ? undefined : body);
  };

  const sendJson = (res: ServerResponse, value: unknown, headers: Record<string, string> = {}): void =>
    send(res, 200, { 'Content-Type': 'application/json; charset=utf-8', ...headers }, JSON.stringify(value));

  /** n/last pagination as Distribution does it, with a Link header when more remain. */
  const paginate = async (ctx: Ctx, list: (limit: number | undefined, last: string | undefined) => Promise<string[]>, path: string) => {
    const nParam = ctx.url.searchParams.get('n');
    const last = ctx.url.searchParams.get('last') ?? undefined;
    let n: number | undefined;
    if (nParam !== null) {
      if (!/^\d+$/.test(nParam)) throw new RegistryError('PAGINATION_NUMBER_INVALID', `invalid n ${JSON.stringify(nParam)} (expected a whole number)`);
      // A page larger than the bound is cut to it, with a Link to the rest (the spec lets a registry return fewer).
      n = Math.min(Number(nParam), MAX_PAGE);
    }
    if (n === 0) return { items: [] as string[], link: undefined };
    const rows = await list(n === undefined ? undefined : n + 1, last);
    if (n !== undefined && rows.length > n) {
      const items = rows.slice(0, n);
      const next = `${path}?n=${n}&last=${encodeURIComponent(items[items.length - 1]!)}`;
      return { items, link: `<${next}>; rel="next"` };
    }
    return { items: rows, link: undefined };
  };

  const contentRange = (req: IncomingMessage): { start: number; end: number } | undefined => {
    const h = req.headers['content-range'];
    if (h === undefined) return undefined;
    const m = /^(?:bytes )?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(h.trim());
    if (!m) throw new RegistryError('RANGE_INVALID', `invalid Content-Range ${JSON.stringify(h)}`);
    const start = Number(m[1]);
    const end = Number(m[2]);
    if (end < start) throw new RegistryError('RANGE_INVALID', `invalid Content-Range ${JSON.stringify(h)}`);
    const length = req.headers['content-length'];
    if (length !== undefined && Number(length) !== end - start + 1) {
      throw new RegistryError('RANGE_INVALID', `Content-Range ${h} does not match Content-Length ${length}`);
    }
    return { start, end };
  };

  /** An out-of-order chunk gets 416 with the session's real position, so the client can resume. */
  const withUploadPosition = async (ctx: Ctx, id: string, fn: () => Promise<void>): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      if (e instanceof RegistryError && e.code === 'RANGE_INVALID') {
        ctx.req.resume();
        const s = await registry.upload(ctx.name, id).catch(() => null);
        if (s) return sendError(ctx.res, e, log, uploadHeaders(ctx.name, id, s.size));
      }
      throw e;
    }
  };

  /** A body's Content-Length, when it has one (Node's parser holds the body to it): lets the S3 store stream it as one object. */
  const declaredBodyLength = (req: IncomingMessage): number | undefined => {
    const v = req.headers['content-length'];
    return v !== undefined && /^\d{1,15}$/.test(v) && req.headers['transfer-encoding'] === undefined ? Number(v) : undefined;
  };
  /** An upload's body as the blob store takes it: its own chunks, and its declared length when it has one. */
  const uploadBody = (req: IncomingMessage) => withDeclaredLength(withOwnChunks(req), declaredBodyLength(req));
  const hasBody = (req: IncomingMessage): boolean =>
    (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined;

  // --- blobs ---------------------------------------------------------------------------------

  const getBlob: Handler = async ({ req, res, name, param: digest }) => {
    const { size } = await registry.statBlob(name, digest);
    const headers: Record<string, string | number> = {
      ...API_VERSION,
      'Content-Type': 'application/octet-stream',
      'Docker-Content-Digest': digest,
      'Accept-Ranges': 'bytes',
      ETag: `"${digest}"`,
      'Cache-Control': 'max-age=31536000',
    };
    let range: ByteRange | undefined;
    // A range unit other than bytes is ignored (RFC 9110 §14.2): the whole blob is sent.
    if (req.headers.range !== undefined && /^\s*bytes=/.test(req.headers.range)) {
      range = parseRange(req.headers.range, size) ?? undefined;
      if (!range) {
        return sendError(res, new RegistryError('RANGE_INVALID', `range ${req.headers.range} not satisfiable`), log, { 'Content-Range': `bytes */${size}` });
      }
    }
    const length = range ? range.end - range.start + 1 : size;
    headers['Content-Length'] = length;
    if (range) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${size}`;
    const status = range ? 206 : 200;
    if (req.method === 'HEAD' || length === 0) {
      // No body to open: check the bytes are really there, so HEAD and GET agree about a lost blob.
      await registry.checkBlobStored(digest, size);
      res.writeHead(status, headers);
      res.end();
      return;
    }
    // The access check is behind us (the route's): a store that can hand out a short-lived URL does so.
    const redirect = req.method === 'GET' ? await registry.blobs.redirectUrl?.(digest, range) : null;
    if (redirect) {
      res.writeHead(307, { ...API_VERSION, Location: redirect, 'Docker-Content-Digest': digest, 'Content-Length': 0 });
      res.end();
      return;
    }
    // Open before the headers, so a blob whose bytes are lost (or of the wrong size) is still a clean 404.
    const file = await registry.openBlob(digest, size, range);
    res.writeHead(status, headers);
    await sendBlobFile(res, file, range?.start ?? 0, range?.end ?? size - 1, blobBuffers, blobTurns);
  };

  const deleteBlob: Handler = async ({ res, name, param }) => {
    await registry.deleteBlob(name, param);
    send(res, 202);
  };

  // --- uploads -------------------------------------------------------------------------------

  const startUpload: Handler = async (ctx) => {
    const { req, res, url, name, principal } = ctx;
    const holder = `${principal.kind}:${principal.name ?? ''}`;
    const mount = url.searchParams.get('mount');
    const from = url.searchParams.get('from');
    if (mount !== null && from !== null) {
      // Mounting reads from another repository, so the caller needs pull there too.
      let allowed = true;
      try {
        await access.authorize(req, from, ['pull']);
      } catch {
        allowed = false;
      }
      if (allowed && (await registry.mountBlob(name, mount, from))) {
        return send(res, 201, { Location: `/v2/${name}/blobs/${mount}`, 'Docker-Content-Digest': mount });
      }
    }
    const digest = url.searchParams.get('digest');
    if (digest !== null) {
      await registry.putBlob(name, digest, uploadBody(req), holder);
      return send(res, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
    }
    req.resume();
    const s = await registry.startUpload(name, holder);
    send(res, 202, uploadHeaders(name, s.id, 0));
  };

  const patchUpload: Handler = async (ctx) => {
    const { req, res, name, param: id } = ctx;
    await withUploadPosition(ctx, id, async () => {
      const range = contentRange(req);
      const s = await registry.appendUpload(name, id, uploadBody(req), range?.start);
      send(res, 202, uploadHeaders(name, id, s.size));
    });
  };

  const putUpload: Handler = async (ctx) => {
    const { req, res, url, name, param: id } = ctx;
    const digest = url.searchParams.get('digest');
    if (digest === null) {
      req.resume();
      throw new RegistryError('DIGEST_INVALID', 'the digest query parameter is required to finish an upload');
    }
    await withUploadPosition(ctx, id, async () => {
      const range = contentRange(req);
      await registry.finishUpload(name, id, digest, hasBody(req) ? uploadBody(req) : undefined, range?.start);
      send(res, 201, { Location: `/v2/${name}/blobs/${digest}`, 'Docker-Content-Digest': digest });
    });
  };

  const uploadStatus: Handler = async ({ res, name, param: id }) => {
    const s = await registry.upload(name, id);
    send(res, 204, uploadHeaders(name, id, s.size));
  };

  const cancelUpload: Handler = async ({ res, name, param: id }) => {
    await registry.cancelUpload(name, id);
    send(res, 204);
  };

  // --- manifests -----------------------------------------------------------------------------

  const getManifest: Handler = async ({ res, name, param }) => {
    const m = await registry.getManifest(name, param);
    send(res, 200, { 'Content-Type': m.mediaType, 'Docker-Content-Digest': m.digest, ETag: `"${m.digest}"` }, m.body);
  };

  const putManifest: Handler = async ({ req, res, name, param, principal }) => {
    const body = await readBody(req, registry.options.maxManifestBytes);
    const r = await registry.putManifest(name, param, body, req.headers['content-type'] ?? '', principal.name);
    const headers: Record<string, string> = { Location: `/v2/${name}/manifests/${r.digest}`, 'Docker-Content-Digest': r.digest };
    if (r.subject) headers['OCI-Subject'] = r.subject;
    send(res, 201, headers);
  };

  const deleteManifest: Handler = async ({ res, name, param, principal }) => {
    await registry.deleteManifest(name, param, principal.name);
    send(res, 202);
  };

  // --- listings ------------------------------------------------------------------------------

  const listTags: Handler = async (ctx) => {
    const { items, link } = await paginate(ctx, (n, last) => registry.listTags(ctx.name, n, last), `/v2/${ctx.name}/tags/list`);
    if (items.length === 0) await registry.listTags(ctx.name, 1); // NAME_UNKNOWN for an unknown repository
    sendJson(ctx.res, { name: ctx.name, tags: items }, link ? { Link: link } : {});
  };

  const referrers: Handler = async ({ res, url, name, param }) => {
    const artifactType = url.searchParams.get('artifactType') ?? undefined;
    const index = await registry.referrers(name, param, artifactType);
    const headers: Record<string, string> = { 'Content-Type': index.mediaType };
    if (artifactType !== undefined) headers['OCI-Filters-Applied'] = 'artifactType';
    send(res, 200, headers, JSON.stringify(index));
  };

  const routes: Route[] = [
    {
      pattern: /^\/v2\/(.+)\/blobs\/uploads\/?$/,
      methods: { POST: [['pull', 'push'], startUpload] },
    },
    {
      pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/,
      methods: {
        GET: [['pull', 'push'], uploadStatus],
        PATCH: [['pull', 'push'], patchUpload],
        PUT: [['pull', 'push'], putUpload],
        DELETE: [['pull', 'push'], cancelUpload],
      },
    },
    {
      pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/,
      methods: { GET: [['pull'], getBlob], HEAD: [['pull'], getBlob], DELETE: [['delete'], deleteBlob] },
    },
    {
      pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/,
      methods: {
        GET: [['pull'], getManifest],
        HEAD: [['pull'], getManifest],
        PUT: [['pull', 'push'], putManifest],
        DELETE: [['delete'], deleteManifest],
      },
    },
    { pattern: /^\/v2\/(.+)\/tags\/list$/, methods: { GET: [['pull'], listTags] } },
    { pattern: /^\/v2\/(.+)\/referrers\/([^/]+)$/, methods: { GET: [['pull'], referrers] } },
  ];

  const handler = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    // Route on the path as sent: URL parsing folds "a/../b" into "b", and a name is refused, never rewritten.
    const path = req.url?.startsWith('/') ? req.url.split('?')[0]! : url.pathname;
    try {
      if (path === '/v2/' || path === '/v2') {
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new RegistryError('UNSUPPORTED', `method ${req.method} not allowed`);
        await access.authorize(req, undefined, []);
        return sendJson(res, {});
      }
      if (path === '/v2/_catalog') {
        if (req.method !== 'GET') throw new RegistryError('UNSUPPORTED', `method ${req.method} not allowed`);
        const principal = await access.authorizeCatalog(req);
        const ctx = { req, res, url, name: '', param: '', principal };
        const { items, link } = await paginate(
          ctx,
          async (n, last) => (await registry.catalog(undefined, last)).filter((r) => access.canPull(principal, r)).slice(0, n),
          '/v2/_catalog',
        );
        return sendJson(res, { repositories: items }, link ? { Link: link } : {});
      }
      for (const route of routes) {
        const m = route.pattern.exec(path);
        if (!m) continue;
        const entry = route.methods[req.method ?? ''];
        if (!entry) throw new RegistryError('UNSUPPORTED', `method ${req.method} not allowed on ${path}`);
        const name = decodePart(m[1]!);
        registry.checkName(name);
        const principal = await access.authorize(req, name, entry[0]).catch((e: unknown) => {
          throw entry[1] === startUpload ? withMountScope(e, url) : e;
        });
        await entry[1]({ req, res, url, name, param: decodePart(m[2] ?? ''), principal });
        return;
      }
      throw new RegistryError('NAME_UNKNOWN', `no route for ${path}`);
    } catch (e) {
      if (!req.readableEnded) req.resume();
      sendError(res, e, log);
    }
  };
  return Object.assign(handler, { routes: routes.map((r) => ({ pattern: r.pattern, methods: Object.keys(r.methods) })) });
}

/**
 * A cross-repository mount reads the source too: its 401 challenge asks for `repository:FROM:pull` beside
 * the target's scope, as Distribution's does, so the token a client fetches lets the mount happen instead of
 * degrading to a full upload. Only a valid repository name is echoed into the header.
 */
function withMountScope(err: unknown, url: URL): unknown {
  const from = url.searchParams.get('from');
  const header = err instanceof RegistryError && err.code === 'UNAUTHORIZED' ? err.headers?.['WWW-Authenticate'] : undefined;
  if (header === undefined || from === null || url.searchParams.get('mount') === null || !isValidRepositoryName(from)) return err;
  const scope = `repository:${from}:pull`;
  const extended = /,scope="([^"]*)"/.test(header) ? header.replace(/,scope="([^"]*)"/, (_, s: string) => `,scope="${s} ${scope}"`) : `${header},scope="${scope}"`;
  (err as RegistryError).headers = { ...(err as RegistryError).headers, 'WWW-Authenticate': extended };
  return err;
}

/** Percent-decodes a path part; a malformed escape stays as sent, for the name/tag/digest check to refuse. */
function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** Parses a single `bytes=` range against a blob of `size` bytes; null when unsatisfiable or malformed. */
export function parseRange(header: string, size: number): ByteRange | null {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return null;
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || end < start) return null;
  return { start, end };
}

