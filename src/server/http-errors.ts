// The one place errors become HTTP responses: the OCI JSON error body for every client mistake,
// and a logged 500 (with no internals leaked) for everything else.
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { RegistryError, wireCode } from '../oci/errors.js';

export function sendError(res: ServerResponse, err: unknown, log: Logger, headers: Record<string, string> = {}): void {
  let status: number;
  let body: { errors: { code: string; message: string; detail?: unknown }[] };
  if (err instanceof RegistryError) {
    status = err.status;
    body = { errors: [{ code: wireCode(err.code), message: err.message, detail: err.detail ?? null }] };
  } else {
    log.error({ err }, 'request failed');
    status = 500;
    body = { errors: [{ code: 'UNKNOWN', message: 'internal server error', detail: null }] };
  }
  if (res.headersSent) {
    // Too late for a status: cut the connection so the client sees a short body rather than a lie.
    res.destroy();
    return;
  }
  const json = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    ...(err instanceof RegistryError ? err.headers : undefined),
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(json),
    'Docker-Distribution-API-Version': 'registry/2.0',
  });
  res.end(res.req.method === 'HEAD' ? undefined : json);
}
