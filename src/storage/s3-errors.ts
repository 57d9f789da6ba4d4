// What an object store's failures mean to a registry client: a 503 that names the problem, never a 500 UNKNOWN.
import { RegistryError } from '../oci/errors.js';

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $fault?: 'client' | 'server';
}

/** The S3 status of a failed request, or undefined when none came back (the store was not reached). */
export function s3Status(e: unknown): number | undefined {
  return (e as SdkError | null)?.$metadata?.httpStatusCode;
}

export function isNotFound(e: unknown): boolean {
  const err = e as SdkError;
  return s3Status(e) === 404 || err?.name === 'NoSuchKey' || err?.name === 'NotFound' || err?.name === 'NoSuchUpload';
}

/**
 * A RegistryError for a failed object store request. `what` says which request, `where` the bucket and endpoint,
 * so an operator reading the client's message or the log knows what to fix.
 */
export function storeError(e: unknown, what: string, where: string): RegistryError {
  if (e instanceof RegistryError) return e;
  const err = (e ?? {}) as SdkError;
  const status = s3Status(e);
  const name = err.name ?? err.code ?? 'Error';
  let reason: string;
  // HeadBucket's 404 has no body to name the error.
  if (name === 'NoSuchBucket' || (what === 'HeadBucket' && status === 404)) reason = 'the bucket does not exist';
  else if (status === 403 || ['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'ExpiredToken'].includes(name)) {
    reason = `access denied (${name}): check the access key, secret key and the bucket's policy`;
  } else if (name === 'TimeoutError' || name === 'RequestTimeout' || err.code === 'ETIMEDOUT' || /timed? ?out/i.test(err.message ?? '')) {
    reason = 'the object store did not answer in time';
  } else if (status === undefined) {
    reason = `the object store is unreachable (${err.code ?? name}: ${err.message ?? ''})`;
  } else if (status === 503 || name === 'SlowDown') {
    reason = `the object store is overloaded (${status} ${name})`;
  } else {
    reason = `the object store answered ${status} ${name}${err.message ? `: ${err.message}` : ''}`;
  }
  const out = new RegistryError('UNAVAILABLE', `blob storage unavailable: ${what} at ${where}: ${reason}`);
  out.retryAfterSeconds = 5;
  return out;
}
