// The one place errors become HTTP responses: the OCI JSON error body for every client mistake,
// and a logged 500 (with no internals leaked) for everything else.
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { RegistryError, wireCode } from '../oci/errors.js';
import { isStorageFull } from '../storage/storage-full.js';

/**
 * The registry error a failure is answered with: itself, STORAGE_FULL for a full disk (a 507 the client can act
 * on, not an unknown 500), or undefined for an internal failure.
 */
export function asRegistryError(err: unknown): RegistryError | undefined {
  if (err instanceof RegistryError) return err;
  if (isStorageFull(err)) return new RegistryError('STORAGE_FULL');
  return undefined;
}

export function sendError(res: ServerResponse, failure: unknown, log: Logger, headers: Record<string, string> = {}): void {
  let status: number;
  let body: { errors: { code: string; message: string; detail?: unknown }[] };
  const err = asRegistryError(failure) ?? failure;
  if (err !== failure) log.warn({ err: failure }, 'storage full: write refused');
  if (err instanceof RegistryError) {
    status = err.status;
    // A backend out of order (the object store) is the operator's to fix: it goes to the log as well.
    // A full disk was logged above as what it is.
    if (status >= 500 && err === failure) log.warn({ code: err.code, message: err.message }, 'request failed: a backend is unavailable');
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
