// The BlobStore port: content-addressed blob bytes and the upload sessions that produce them.
import type { Readable } from 'node:stream';

export interface ByteRange {
  start: number;
  /** inclusive */
  end: number;
}

export interface UploadState {
  id: string;
  repository: string;
  /** bytes received so far */
  size: number;
  startedAt: number;
}

/** An open stored blob. */
export interface BlobFile {
  readonly size: number;
  /**
   * When the stored bytes last changed (a file's ctime, an object's Last-Modified), if the store knows: a blob
   * verified at this stamp is not hashed again when served (registry/blob-integrity.ts). Without it, every serve hashes.
   */
  readonly modifiedMs?: number;
  /**
   * Names these exact bytes, if the store can: two open files with the same key hold the same bytes (a file's
   * digest, device, inode, ctime and size). The sender lets responses that read the same key at the same position
   * share one read (server/blob-sender.ts). Absent: every read is the response's own (a file whose bytes are being
   * verified as they are served has none, so each of its reads is hashed).
   */
  readonly contentKey?: string;
  /** Reads up to `length` bytes at `position` into `into` (from its start); the count read, 0 at the end. */
  read(into: Buffer, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

export interface BlobStore {
  /** Size of a stored blob, or null when absent. */
  stat(digest: string): Promise<{ size: number } | null>;
  /** Streams a stored blob (or part of it). The caller has checked that it exists. */
  read(digest: string, range?: ByteRange): Readable;
  /**
   * Opens a stored blob for positional reads into the caller's buffers, or null when it is absent. The registry
   * serves blobs this way: reusing a few buffers per response, where a stream allocates one per chunk.
   */
  open(digest: string, range?: ByteRange): Promise<BlobFile | null>;
  /**
   * `location`: the blob row's location when the caller has it (GC, inside the transaction that deleted the row);
   * null: no object was recorded for the digest.
   */
  delete(digest: string, location?: string | null): Promise<void>;
  /**
   * Moves a blob whose bytes do not match its digest aside, out of every read path, where an operator can still
   * look at it. A store without it has such blobs deleted instead.
   */
  quarantine?(digest: string): Promise<void>;
  /** Every stored digest, for fsck and garbage collection. */
  list(): AsyncIterable<{ digest: string; size: number; mtimeMs: number }>;
  /** Re-hashes a stored blob; false when its bytes no longer match its digest. */
  verify(digest: string): Promise<boolean>;

  startUpload(repository: string): Promise<UploadState>;
  getUpload(id: string): Promise<UploadState | null>;
  /**
   * Appends a request body to an upload. `expectedOffset` (from Content-Range) must equal the current size;
   * `commitFollows`: this process commits the upload next, so a store may keep what it would persist for another
   * request (S3: the part-sized tail) in memory until then.
   */
  appendUpload(id: string, body: Readable, expectedOffset?: number, commitFollows?: boolean): Promise<UploadState>;
  /**
   * Verifies the upload against `digest`, makes it durable and visible as a blob, and ends the session.
   * `publish`, when given, runs the step that makes the blob visible (`reveal`): the registry wraps it in
   * the database transaction that records the blob, which garbage collection relies on.
   */
  commitUpload(id: string, digest: string, publish?: PublishBlob): Promise<{ size: number }>;
  cancelUpload(id: string): Promise<void>;
  /** Removes sessions (and their temporary data) started before `olderThan` (epoch ms). */
  expireUploads(olderThan: number): Promise<number>;
  /** Open sessions, for garbage collection's view of what is in flight. */
  listUploads(): Promise<UploadState[]>;
  /** Ends every live upload session's in-memory state and lets go of what the store holds (workers, descriptors). */
  close?(): Promise<void>;

  // Stores that name objects by upload rather than by digest (S3) have these too.
  /** Stored objects no blob row names and no open session will name, last written before `olderThan` (epoch ms). */
  strays?(olderThan: number): AsyncIterable<{ location: string; size: number }>;
  deleteStray?(location: string): Promise<void>;
  /** A short-lived URL the client may fetch the blob from directly, or null when the store serves it through Wharf. */
  redirectUrl?(digest: string, range?: ByteRange): Promise<string | null>;
  /** Resolves when the store can serve requests; rejects with a RegistryError naming the problem otherwise (/readyz). */
  ready?(): Promise<void>;
}

/**
 * Records a verified upload as a blob (the database row of its digest and its link to the repository), running
 * `reveal` where the bytes become visible. A store that names objects by upload passes the object as `location`
 * and gets back the location recorded for the digest: another object's when the digest was stored already (the
 * store then deletes its own), and `reveal` runs only when it is its own.
 */
export type PublishBlob = (size: number, reveal: () => Promise<void>, location?: string) => Promise<string | null | void>;

const DECLARED_LENGTH = Symbol('wharf.declaredLength');
type WithLength = { [DECLARED_LENGTH]?: number };

/**
 * Marks a body whose length is known before its bytes arrive (a request's Content-Length): a store may then send
 * it on as one object of that length as it streams (S3: one PutObject) instead of buffering it into parts.
 */
export function withDeclaredLength<T extends object>(stream: T, length: number | undefined): T {
  if (length !== undefined) (stream as WithLength)[DECLARED_LENGTH] = length;
  return stream;
}

/** The length withDeclaredLength recorded, if any. */
export function declaredLength(stream: object): number | undefined {
  return (stream as WithLength)[DECLARED_LENGTH];
}
