// The one catalogue of Wharf's error codes, thrown as RegistryError from any domain: the OCI distribution spec's
// own codes (the registry's language), and a few general ones (NOT_FOUND, CONFLICT, INVALID …) for delivery,
// deploy, auth and the rest. A code says what went wrong, never how a protocol answers it: server/http-errors.ts
// alone turns a code into an HTTP status and an error body.

/** Each code with the message an error carries when it is thrown without one. */
export const ERRORS = {
  // The OCI distribution spec's error codes.
  BLOB_UNKNOWN: 'blob unknown to registry',
  BLOB_UPLOAD_INVALID: 'blob upload invalid',
  BLOB_UPLOAD_UNKNOWN: 'blob upload unknown to registry',
  DIGEST_INVALID: 'provided digest did not match uploaded content',
  MANIFEST_BLOB_UNKNOWN: 'manifest references a manifest or blob unknown to registry',
  MANIFEST_INVALID: 'manifest invalid',
  MANIFEST_UNKNOWN: 'manifest unknown to registry',
  NAME_INVALID: 'invalid repository name',
  NAME_UNKNOWN: 'repository name not known to registry',
  SIZE_INVALID: 'provided length did not match content length',
  /** the operation (a method on a route) is not offered, never a request that is merely malformed: that is INVALID */
  UNSUPPORTED: 'the operation is unsupported',
  UNAUTHORIZED: 'authentication required',
  DENIED: 'requested access to the resource is denied',
  TOOMANYREQUESTS: 'too many requests',
  // Distribution's codes beyond the spec.
  TAG_INVALID: 'manifest tag did not match URI',
  PAGINATION_NUMBER_INVALID: 'invalid number of results requested',
  /** a backend (the object store) cannot serve the request now; it may be retried */
  UNAVAILABLE: 'service unavailable',
  // Wharf's refinements of a spec code: the same failure, told more precisely.
  /** an upload's chunk does not continue where the upload is, or a range cannot be served (BLOB_UPLOAD_INVALID) */
  RANGE_INVALID: 'requested range not satisfiable',
  /** a manifest or request body over its size limit (SIZE_INVALID) */
  MANIFEST_TOO_LARGE: 'manifest too large',
  /** a request body that stopped arriving (BLOB_UPLOAD_INVALID) */
  BODY_STALLED: 'the request body stopped arriving',
  /** ENOSPC, EDQUOT or SQLITE_FULL: the write was refused as a whole; it can be retried once space is freed */
  STORAGE_FULL: 'storage is full: the registry has no space left to store this; retry once space is freed',
  // The general codes of every other domain (delivery, deploy, auth, webhooks, attest, pipeline).
  /** the input is malformed or breaks a rule of the domain (a bad name, a missing field, an unknown grant type) */
  INVALID: 'invalid request',
  /** the thing named does not exist */
  NOT_FOUND: 'not found',
  /** the request is valid but clashes with the current state (exists already, in progress, changed meanwhile) */
  CONFLICT: 'conflict',
} as const;

export type ErrorCode = keyof typeof ERRORS;

export class RegistryError extends Error {
  /** when the same request may succeed again: a rate limit, a backend that is out of order */
  retryAfterSeconds?: number;
  /** the WWW-Authenticate challenge of an UNAUTHORIZED, set by the access check (its realm is an HTTP address) */
  headers?: Record<string, string>;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly detail?: unknown,
  ) {
    super(message ?? ERRORS[code]);
  }
}
