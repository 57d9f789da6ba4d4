// The catalogue of registry errors (OCI distribution spec codes plus HTTP status), thrown as RegistryError
// at any layer and rendered as the OCI JSON error body in one place (server/http-errors.ts).

export const ERRORS = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  RANGE_INVALID: { status: 416, message: 'requested range not satisfiable' },
  MANIFEST_TOO_LARGE: { status: 413, message: 'manifest too large' },
  CONFLICT: { status: 409, message: 'conflict' },
  NOT_FOUND: { status: 404, message: 'not found' },
  INTERNAL: { status: 500, message: 'internal server error' },
  /** ENOSPC, EDQUOT or SQLITE_FULL: the write was refused as a whole; it can be retried once space is freed */
  STORAGE_FULL: { status: 507, message: 'storage is full: the registry has no space left to store this; retry once space is freed' },
  /** a backend (the object store) cannot serve the request now; Distribution's code for 503 */
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class RegistryError extends Error {
  readonly status: number;
  /** extra response headers, e.g. the WWW-Authenticate challenge of a 401 or Retry-After of a 429 */
  headers?: Record<string, string>;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly detail?: unknown,
    status?: number,
  ) {
    super(message ?? ERRORS[code].message);
    this.status = status ?? ERRORS[code].status;
  }
}

/** Wire code for codes that are Wharf-internal refinements of a spec code. */
export function wireCode(code: ErrorCode): string {
  switch (code) {
    case 'RANGE_INVALID':
      return 'BLOB_UPLOAD_INVALID';
    case 'MANIFEST_TOO_LARGE':
      return 'SIZE_INVALID';
    case 'INTERNAL':
      return 'UNKNOWN';
    // The spec has no code for it; UNKNOWN is what clients know for a server-side failure, and the 507 status and
    // the message say which one (docs/configuration.md, "Full disk").
    case 'STORAGE_FULL':
      return 'UNKNOWN';
    default:
      return code;
  }
}
