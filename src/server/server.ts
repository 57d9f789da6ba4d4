// The HTTP server: dispatches /v2 to the registry API and serves health and metrics, with graceful shutdown.
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { Server as HttpsServer, createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { RegistryError } from '../oci/errors.js';
import type { Wharf } from '../hub.js';
import { openRequestAccess, type RequestAccess } from './access.js';
import { sendError } from './http-errors.js';
import { v2Api } from './v2.js';
import { Metrics } from './metrics.js';
import { managementApi, type ApiAudit, type ApiRoute } from './api.js';
import { hubRoutes } from './routes.js';
import { openApiRoute } from './openapi.js';
import { serveWeb } from './web.js';
import { IdleCollector } from './idle-collector.js';
import { readiness, sendReadiness } from './readiness.js';
import { limitBodyIdle } from './body-timeout.js';

export interface HttpServerOptions {
  wharf: Wharf;
  log: Logger;
  access?: RequestAccess;
  metrics?: Metrics;
  /** management API routes; default: every feature module's (server/routes.ts) */
  apiRoutes?: ApiRoute[];
  /** access control's own routes (sessions, users, grants …; see server/access-control.ts), added to apiRoutes */
  authRoutes?: ApiRoute[];
  /** the Docker token endpoint (GET/POST /token), when authentication is on */
  tokenEndpoint?: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>;
  /** called once each response is sent (the audit log) */
  onResponse?: (req: IncomingMessage, res: ServerResponse) => void;
  /** the audit log of management-API changes, and who a request's caller is */
  audit?: ApiAudit;
  /** serve HTTPS (HTTP/1.1) with this PEM certificate chain and key (createHttpServer; see startingServer) */
  tls?: { cert: Buffer; key: Buffer };
  /** collects garbage when a burst of requests is over (default: one per server) */
  idle?: IdleCollector;
  /** a request body idle this long is cut off (default: uploads.idleTimeout of the config; 0: never) */
  bodyIdleTimeoutMs?: number;
  /**
   * The access log: one line per request at `level` (default info); blob and manifest GETs and HEADs, the bulk
   * of a busy hub, at `pulls`; health and metrics probes at debug.
   */
  accessLog?: { level?: Level; pulls?: Level };
}

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

const PULL = /^\/v2\/.+\/(blobs|manifests)\/[^/]+$/;

export interface RunningServer {
  server: Server;
  url: string;
  /**
   * Stops accepting connections and drains: requests in flight may finish for up to `drainMs` (default 5 s), their
   * answers close their connections, idle connections close at once; what is left after the deadline is cut.
   */
  close(drainMs?: number): Promise<void>;
}

/** A server over `opts.wharf`, not yet listening. */
export function createHttpServer(opts: HttpServerOptions): Server {
  const server = startingServer(opts.log, opts.tls);
  serveHub(server, opts);
  return server;
}

/**
 * An HTTP(S) server that may listen before the hub exists: until serveHub hands it one, every request is answered
 * 503 (the hub is starting). `wharf serve` binds first so that the hub is built knowing the address clients reach it
 * at (with --listen …:0 the port is known only once bound), rather than finishing a service after it is built.
 */
export function startingServer(log: Logger, tls?: { cert: Buffer; key: Buffer }): Server {
  const server = tls ? createHttpsServer({ ...tls, keepAliveTimeout: 65_000 }) : createServer({ keepAliveTimeout: 65_000 });
  const starting = (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    sendError(res, new RegistryError('UNAVAILABLE', 'the hub is starting'), log, { 'Retry-After': '1' });
  };
  startingHandlers.set(server, starting);
  server.on('request', starting);
  // Blob uploads can be slow; rely on the socket idle timeout rather than a whole-request deadline.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  return server;
}

/** The 503 handler of each server that waits for its hub. */
const startingHandlers = new WeakMap<Server, RequestListener>();

/** Serves the hub on `server` (made by startingServer, listening or not): from now on requests reach it. */
export function serveHub(server: Server, opts: HttpServerOptions): void {
  const {
    wharf,
    log,
    access = openRequestAccess,
    metrics = new Metrics(),
    apiRoutes,
    authRoutes = [],
    tokenEndpoint,
    onResponse,
    audit,
    idle = new IdleCollector(),
    bodyIdleTimeoutMs = wharf.config?.uploads?.idleTimeout ?? 60_000,
    accessLog = {},
  } = opts;
  const requestLevel = accessLog.level ?? 'info';
  const pullLevel = accessLog.pulls ?? 'info';
  metrics.watchDeployments(wharf.deploy);
  const v2 = v2Api({ registry: wharf.registry, access, log });
  metrics.watch(wharf.config.data, wharf.registry.integrity.counts);
  metrics.watchDatabase(wharf.meta.roundTrips);
  const probes = { meta: wharf.meta, blobs: wharf.blobs, dataDir: wharf.config.data, minFreeBytes: wharf.config.health.minFreeBytes };
  const routes = [...(apiRoutes ?? hubRoutes(wharf, access)), ...authRoutes];
  const api = managementApi([...routes, openApiRoute(routes)], access, log, audit);
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://wharf.invalid');
    const path = url.pathname;
    if (path.startsWith('/v2')) return v2(req, res, url);
    if (path === '/token' && tokenEndpoint) return tokenEndpoint(req, res, url);
    if (path.startsWith('/api/')) return api(req, res, url);
    if (path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      return res.end('{"status":"ok"}');
    }
    if (path === '/readyz') return sendReadiness(res, await readiness(probes));
    if (path === '/metrics') {
      const body = await metrics.render();
      res.writeHead(200, { 'Content-Type': metrics.contentType });
      return res.end(body);
    }
    if (await serveWeb(req, res, path)) return;
    req.resume();
    sendError(res, new RegistryError('NOT_FOUND', `no route for ${path}`), log);
  };
  const listener: RequestListener = (req, res) => {
    const started = process.hrtime.bigint();
    limitBodyIdle(req, bodyIdleTimeoutMs);
    const writtenBefore = req.socket.bytesWritten;
    res.once('close', idle.begin());
    res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.observe(req.method ?? '', res.statusCode, seconds);
      const [path = '/', query] = (req.url ?? '/').split('?', 2);
      const level =
        path === '/healthz' || path === '/metrics' ? 'debug' : (req.method === 'GET' || req.method === 'HEAD') && PULL.test(path) ? pullLevel : requestLevel;
      if (level !== 'silent' && log.isLevelEnabled(level)) {
        // Bytes sent on the wire, headers included (nginx's $bytes_sent): a route's own writeHead headers are not readable here.
        const bytes = req.socket.bytesWritten - writtenBefore;
        const ms = Math.round(seconds * 10_000) / 10;
        const user = audit ? audit.actorOf(req).name : '-';
        // The query goes into the JSON record only (a mount's ?mount=&from=, an upload's ?digest=): the line stays short.
        log[level]({ req: { method: req.method, path, ...(query ? { query } : {}), status: res.statusCode, bytes, ms, user } }, `${req.method} ${path} ${res.statusCode} ${bytes} B ${ms} ms ${user}`);
      }
      onResponse?.(req, res);
    });
    handle(req, res).catch((e) => sendError(res, e, log));
  };
  server.once('close', () => idle.stop());
  const starting = startingHandlers.get(server);
  if (starting) server.off('request', starting);
  startingHandlers.delete(server);
  server.on('request', listener);
}

export async function listen(server: Server, host: string, port: number): Promise<RunningServer> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const hostPart = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  // Answers not yet begun when the drain starts say `Connection: close`: a proxy's keep-alive connection must not
  // carry its next request into a process about to exit (it would be cut, and a PUT or PATCH is not retried).
  const open = new Set<ServerResponse>();
  let draining = false;
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (draining && !res.headersSent) res.setHeader('connection', 'close');
    open.add(res);
    res.once('close', () => open.delete(res));
  });
  return {
    server,
    url: `${server instanceof HttpsServer ? 'https' : 'http'}://${hostPart}:${addr.port}`,
    close: (drainMs = 5_000) =>
      new Promise<void>((resolve) => {
        draining = true;
        for (const res of open) if (!res.headersSent) res.setHeader('connection', 'close');
        server.close(() => {
          clearInterval(idle);
          resolve();
        });
        server.closeIdleConnections();
        // A keep-alive connection whose answer went out before the drain began turns idle afterwards.
        const idle = setInterval(() => server.closeIdleConnections(), 100);
        idle.unref();
        setTimeout(() => server.closeAllConnections(), drainMs).unref();
      }),
  };
}
