// The one place errors become HTTP responses, on /v2, /api/v1 and /token alike: each error code's status and the
// code clients see (Distribution's registry/api/errcode keeps the same catalogue), and a logged 500 with no
// internals leaked for anything that is not a RegistryError.
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { RegistryError, type ErrorCode } from '../oci/errors.js';
import { isStorageFull } from '../storage/storage-full.js';

/**
 * Each code's HTTP status, and the code on the wire where Wharf's code refines a spec code (clients know the
 * spec's). A Record over ErrorCode: a code added to the catalogue without a status here does not compile.
 */
export const HTTP_ERRORS: { readonly [C in ErrorCode]: { status: number; wire?: string } } = {
  BLOB_UNKNOWN: { status: 404 },
  BLOB_UPLOAD_INVALID: { status: 400 },
  BLOB_UPLOAD_UNKNOWN: { status: 404 },
  DIGEST_INVALID: { status: 400 },
  MANIFEST_BLOB_UNKNOWN: { status: 400 },
  MANIFEST_INVALID: { status: 400 },
  MANIFEST_UNKNOWN: { status: 404 },
  NAME_INVALID: { status: 400 },
  NAME_UNKNOWN: { status: 404 },
  SIZE_INVALID: { status: 400 },
  UNSUPPORTED: { status: 405 },
  UNAUTHORIZED: { status: 401 },
  DENIED: { status: 403 },
  TOOMANYREQUESTS: { status: 429 },
  TAG_INVALID: { status: 400 },
  PAGINATION_NUMBER_INVALID: { status: 400 },
  UNAVAILABLE: { status: 503 },
  RANGE_INVALID: { status: 416, wire: 'BLOB_UPLOAD_INVALID' },
  MANIFEST_TOO_LARGE: { status: 413, wire: 'SIZE_INVALID' },
  BODY_STALLED: { status: 408, wire: 'BLOB_UPLOAD_INVALID' },
  // The spec has no code for it; UNKNOWN is what clients know for a server-side failure, and the 507 status and
  // the message say which one (docs/configuration.md, "Full disk").
  STORAGE_FULL: { status: 507, wire: 'UNKNOWN' },
  INVALID: { status: 400 },
  NOT_FOUND: { status: 404 },
  CONFLICT: { status: 409 },
};

/** A failure as an HTTP client is told it: status, the error body's one entry, and extra headers. */
export interface HttpError {
  status: number;
  error: { code: string; message: string; detail: unknown };
  headers: Record<string, string>;
  /** the RegistryError answered with, undefined for an internal failure */
  known?: RegistryError;
}

/**
 * The registry error a failure is answered with: itself, STORAGE_FULL for a full disk (a 507 the client can act
 * on, not an unknown 500), or undefined for an internal failure.
 */
export function asRegistryError(err: unknown): RegistryError | undefined {
  if (err instanceof RegistryError) return err;
  if (isStorageFull(err)) return new RegistryError('STORAGE_FULL');
  return undefined;
}

/** What any failure is answered with; an internal one is a 500 whose message says nothing of its cause. */
export function httpErrorOf(failure: unknown): HttpError {
  const known = asRegistryError(failure);
  if (!known) return { status: 500, error: { code: 'UNKNOWN', message: 'internal server error', detail: null }, headers: {} };
  const { status, wire } = HTTP_ERRORS[known.code];
  const headers = { ...known.headers, ...(known.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(known.retryAfterSeconds) }) };
  return { status, error: { code: wire ?? known.code, message: known.message, detail: known.detail ?? null }, headers, known };
}

export function sendError(res: ServerResponse, failure: unknown, log: Logger, headers: Record<string, string> = {}): void {
  const answer = httpErrorOf(failure);
  if (!answer.known) log.error({ err: failure }, 'request failed');
  else if (answer.known !== failure) log.warn({ err: failure }, 'storage full: write refused');
  // A backend out of order (the object store) is the operator's to fix: it goes to the log as well.
  // A full disk was logged above as what it is.
  else if (answer.status >= 500) log.warn({ code: answer.known.code, message: answer.known.message }, 'request failed: a backend is unavailable');
  if (res.headersSent) {
    // Too late for a status: cut the connection so the client sees a short body rather than a lie.
    res.destroy();
    return;
  }
  const json = JSON.stringify({ errors: [answer.error] });
  res.writeHead(answer.status, {
    ...headers,
    ...answer.headers,
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(json),
    'Docker-Distribution-API-Version': 'registry/2.0',
  });
  res.end(res.req.method === 'HEAD' ? undefined : json);
}
