// BlobStore on S3-compatible object storage (Ceph RGW, MinIO, AWS S3), with no copy on commit.
//
// Objects are named by upload, not by digest: an upload streams into the multipart upload of `<prefix>blobs/<id>`,
// and on commit that object *is* the blob — the database row of the digest records its location (blobs.location).
// Distribution's S3 driver writes every layer twice (an upload path, then a server-side copy to the digest's path);
// here the bytes are written once. Nothing is visible before the digest is verified: a blob exists for readers only
// through its row, written after the object is complete and verified. A crash at any point leaves at most an object
// or a multipart upload that no row names, which garbage collection deletes (strays) or aborts (expireUploads).
//
// A session is `<prefix>uploads/<id>/state.json` (repository, start, multipart upload id, the parts written and
// the tail) plus `<prefix>uploads/<id>/tail-<n>`: the bytes after the last whole part. Parts are `partSize` bytes
// (S3 wants at least 5 MiB for every part but the last), so a PATCH that ends mid-part leaves its tail as a small
// object, which the next PATCH reads back to begin its first part with — on whichever instance it arrives. Every
// PATCH reads the session from the bucket, so instances over one bucket (and one database) share sessions.
// A body whose length the request declares is passed on as it arrives instead: a whole blob as one PutObject
// (putWhole), a PATCH of at least 5 MiB on a part boundary as one part of its own size (streamPart).
//
// The digest is computed while the bytes stream, on the instance that received every byte so far. node:crypto
// cannot export a running sha256, and S3 cannot read back the parts of an unfinished multipart upload, so a session
// that moved to another instance (or outlived a restart) is verified at commit by reading the completed object
// back, before its row is written: a rare re-read instead of a hash state of our own. (See docs/architecture.md.)
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { newHasher, parseDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { declaredLength, type BlobFile, type BlobStore, type ByteRange, type PublishBlob, type UploadState } from './blob-store.js';
import { isNotFound, storeError } from './s3-errors.js';
import { canReleaseBuffers, hasOwnChunks, releaseBuffer } from './release-buffer.js';

export interface S3StoreOptions {
  /** http(s)://host:port of an S3-compatible server; unset: AWS's endpoint for the region */
  endpoint?: string;
  region: string;
  bucket: string;
  /** prepended to every key, e.g. "wharf/" to share a bucket */
  prefix: string;
  /** unset: the SDK's default credential chain (environment, profile, instance role) */
  accessKey?: string;
  secretKey?: string;
  /** bucket in the path (http://host/bucket/key), as Ceph RGW and MinIO want, instead of the host name */
  forcePathStyle: boolean;
  /** answer blob GETs with a presigned URL of the object (307) instead of streaming it through Wharf */
  redirect: boolean;
  /** lifetime of a presigned URL, ms */
  redirectTtl: number;
  /** bytes per multipart part: the memory an upload holds while it streams is about three of them */
  partSize: number;
  /** ms before a request the store does not answer fails (503) */
  requestTimeout: number;
}

/** Where the database says each blob's bytes are (metadata/registry-store.ts implements it). */
export interface BlobLocations {
  blobLocation(digest: string): Promise<{ location: string | null; size: number } | null>;
  blobLocations(): Promise<{ digest: string; location: string | null; size: number }[]>;
}

interface Part {
  n: number;
  etag: string;
  size: number;
}

/** What the bucket knows of a session (state.json). */
interface SessionRecord {
  repository: string;
  startedAt: number;
  /** the multipart upload, created with the first whole part */
  mpu: string | null;
  parts: Part[];
  /** bytes after the last part, in tail-<gen> */
  tail: { gen: number; size: number } | null;
  /**
   * The whole blob is in the object already, this many bytes, sent as one PutObject (putWhole): in memory only,
   * between a request's append and its commit, never in state.json.
   */
  whole?: number;
}

interface LiveUpload {
  id: string;
  record: SessionRecord;
  /** sha256 of the first `hashed` bytes; trusted only while that is the session's size */
  hash: Hash | null;
  hashed: number;
  /** a tail held in memory for the commit that follows in this request (appendUpload's commitFollows) */
  heldTail: Buffer | null;
  busy: boolean;
  /** when `record` was read from the bucket for a request that has not claimed the session yet (0: claimed) */
  readAt: number;
}

const UPLOAD_ID_RE = /^[a-f0-9-]{36}$/;
const MiB = 1 << 20;
/** Parts being sent while the next one fills: the upload's pace is the store's, its memory (2 + 1) parts. */
const PARTS_IN_FLIGHT = 2;
/**
 * The registry checks a session (getUpload: its repository) just before it appends to it or commits it: the claim
 * that follows uses that read instead of repeating it, once, if it comes within this.
 */
const FRESH_MS = 1_000;
/** The commands whose body is blob bytes: sent with an unsigned payload (see the constructor). */
const UNSIGNED_PAYLOAD_COMMANDS = new Set(['PutObjectCommand', 'UploadPartCommand']);
/** S3's smallest part (but the last), and most parts of one upload. */
const MIN_PART = 5 * MiB;
const MAX_PARTS = 10_000;
/** S3's largest single PutObject: a longer blob goes up in parts even when its length is known. */
const MAX_SINGLE_PUT = 5 * 1024 * MiB;
/** Bytes a pull reads ahead of the client from the object's response. */
const READ_AHEAD = 4 * MiB;

function sizeOf(r: SessionRecord): number {
  return (r.whole ?? 0) + r.parts.reduce((n, p) => n + p.size, 0) + (r.tail?.size ?? 0);
}

export class S3BlobStore implements BlobStore {
  readonly client: S3Client;
  private readonly live = new Map<string, LiveUpload>();
  private readonly where: string;
  /** spare part buffers, so a push does not allocate (and fault in) a fresh 8 MiB for every part */
  private readonly spareParts: Buffer[] = [];

  constructor(
    readonly options: S3StoreOptions,
    private readonly locations: BlobLocations,
  ) {
    // Wharf runs on Node 20 and the SDK version is pinned by the lockfile: its notice about future releases needing
    // Node 22 would only be noise on every CLI command's stderr.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.where = `${options.endpoint ?? `s3.${options.region}.amazonaws.com`} bucket ${options.bucket}`;
    this.client = new S3Client({
      endpoint: options.endpoint,
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      credentials: options.accessKey && options.secretKey ? { accessKeyId: options.accessKey, secretAccessKey: options.secretKey } : undefined,
      // The SDK's default CRC32 on every request makes streamed bodies aws-chunked, which Ceph RGW 16.2 (and other
      // S3 servers) refuse with 411; checksums only where an operation requires them.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // An unreachable store fails in seconds, not after the OS's connect timeout.
      requestHandler: { connectionTimeout: 5_000, requestTimeout: options.requestTimeout },
      maxAttempts: 3,
    });
    // Blob bytes go out with an unsigned payload (SigV4's UNSIGNED-PAYLOAD, which S3, Ceph RGW and MinIO accept):
    // otherwise the SDK reads every part once more to sign its sha256 (0.8 ms of CPU per MiB on an idle core here,
    // more under load), a second hash of every byte besides the digest. The bytes are not left unchecked: the
    // digest of what the client sent is verified before the blob becomes visible, and the first whole GET after a
    // push is hashed again (integrity.hashOnServe); over https, TLS covers the link.
    this.client.middlewareStack.add(
      (next, context) => async (args) => {
        const request = args.request as { headers?: Record<string, string> } | undefined;
        if (UNSIGNED_PAYLOAD_COMMANDS.has(context.commandName ?? '') && request?.headers) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        return next(args);
      },
      { step: 'build', name: 'wharfUnsignedPayload' },
    );
  }

  // --- keys --------------------------------------------------------------------------------------

  private objectKey(id: string): string {
    return `${this.options.prefix}blobs/${id}`;
  }
  private stateKey(id: string): string {
    return `${this.options.prefix}uploads/${id}/state.json`;
  }
  private tailKey(id: string, gen: number): string {
    return `${this.options.prefix}uploads/${id}/tail-${gen}`;
  }
  /** The database stores keys without the prefix, so a bucket can be moved under another prefix. */
  private keyOf(location: string): string {
    return this.options.prefix + location;
  }

  /** One S3 request, its failure a clear registry error. */
  private async s3<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (e) {
      throw storeError(e, what, this.where);
    }
  }

  async close(): Promise<void> {
    this.live.clear();
    this.spareParts.length = 0;
    // Its keep-alive sockets would otherwise hold a CLI command or a test process open.
    this.client.destroy();
  }

  async ready(): Promise<void> {
    await this.s3('HeadBucket', () => this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket })));
  }

  // --- blobs -------------------------------------------------------------------------------------

  private async locate(digest: string): Promise<{ key: string; size: number } | null> {
    const row = await this.locations.blobLocation(digest);
    return row?.location ? { key: this.keyOf(row.location), size: row.size } : null;
  }

  async stat(digest: string): Promise<{ size: number } | null> {
    const at = await this.locate(digest);
    if (!at) return null;
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: at.key }));
      return { size: Number(h.ContentLength ?? 0) };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw storeError(e, 'HeadObject', this.where);
    }
  }

  read(digest: string, range?: ByteRange): Readable {
    const out = new PassThrough({ highWaterMark: MiB });
    void (async () => {
      const at = await this.locate(digest);
      if (!at) throw new RegistryError('BLOB_UNKNOWN', 'blob data is missing');
      const res = await this.s3('GetObject', () =>
        this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: at.key, Range: range ? `bytes=${range.start}-${range.end}` : undefined })),
      );
      const body = res.Body as Readable;
      body.on('error', (e) => out.destroy(e));
      body.pipe(out);
    })().catch((e) => out.destroy(e as Error));
    return out;
  }

  async open(digest: string, range?: ByteRange): Promise<BlobFile | null> {
    const at = await this.locate(digest);
    if (!at) return null;
    const file = new S3BlobFile(this, at.key, at.size);
    // The first request goes out now: a lost object is a clean 404 before any header is sent.
    if (!(await file.start(range?.start ?? 0, range?.end ?? at.size - 1))) return null;
    return file;
  }

  /** Streams bytes [start, end] of an object, with its time; null when it does not exist. */
  async getRange(key: string, start: number, end: number): Promise<{ body: Readable; modifiedMs?: number } | null> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key, Range: `bytes=${start}-${end}` }));
      return { body: res.Body as Readable, modifiedMs: res.LastModified?.getTime() };
    } catch (e) {
      if (isNotFound(e)) return null;
      throw storeError(e, 'GetObject', this.where);
    }
  }

  async redirectUrl(digest: string, range?: ByteRange): Promise<string | null> {
    if (!this.options.redirect) return null;
    const at = await this.locate(digest);
    if (!at) return null;
    // Signing is local: no request to the store. The client's Range header goes along with the redirect.
    void range;
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.options.bucket, Key: at.key }), {
      expiresIn: Math.max(1, Math.round(this.options.redirectTtl / 1000)),
    });
  }

  async delete(digest: string, location?: string | null): Promise<void> {
    if (location === null) return;
    const key = location !== undefined ? this.keyOf(location) : (await this.locate(digest))?.key;
    if (key) await this.deleteKey(key);
  }

  private async deleteKey(key: string): Promise<void> {
    await this.s3('DeleteObject', () => this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: key })));
  }

  /** Every key under `prefix`, with its size and time. */
  private async *listKeys(prefix: string): AsyncIterable<{ key: string; size: number; mtimeMs: number }> {
    let token: string | undefined;
    do {
      const page = await this.s3('ListObjectsV2', () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.options.bucket, Prefix: prefix, ContinuationToken: token })),
      );
      for (const o of page.Contents ?? []) if (o.Key) yield { key: o.Key, size: Number(o.Size ?? 0), mtimeMs: o.LastModified?.getTime() ?? 0 };
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Blobs whose row names an object that exists (with the object's size): fsck's and GC's view of the bucket. */
  async *list(): AsyncIterable<{ digest: string; size: number; mtimeMs: number }> {
    const objects = new Map<string, { size: number; mtimeMs: number }>();
    for await (const o of this.listKeys(`${this.options.prefix}blobs/`)) objects.set(o.key, o);
    for (const row of await this.locations.blobLocations()) {
      const o = row.location ? objects.get(this.keyOf(row.location)) : undefined;
      if (o) yield { digest: row.digest, size: o.size, mtimeMs: o.mtimeMs };
    }
  }

  async *strays(olderThan: number): AsyncIterable<{ location: string; size: number }> {
    // Objects first, then sessions, then rows. A commit completes its object, writes its row, and only then
    // deletes its session: an object listed here whose session is gone by the time sessions are listed had its
    // row written before the rows are read.
    const objects: { key: string; size: number; mtimeMs: number }[] = [];
    for await (const o of this.listKeys(`${this.options.prefix}blobs/`)) objects.push(o);
    const open = new Set((await this.sessionIds()).map((id) => this.objectKey(id)));
    const named = new Set((await this.locations.blobLocations()).flatMap((r) => (r.location ? [this.keyOf(r.location)] : [])));
    for (const o of objects) {
      if (!named.has(o.key) && !open.has(o.key) && o.mtimeMs < olderThan) yield { location: o.key.slice(this.options.prefix.length), size: o.size };
    }
  }

  async deleteStray(location: string): Promise<void> {
    await this.deleteKey(this.keyOf(location));
  }

  async verify(digest: string): Promise<boolean> {
    const d = parseDigest(digest)!;
    const at = await this.locate(digest);
    if (!at) return false;
    return (await this.hashObject(at.key, d.algorithm)) === d.hex;
  }

  private async hashObject(key: string, algorithm: 'sha256' | 'sha512'): Promise<string | null> {
    let res;
    try {
      res = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key }));
    } catch (e) {
      if (isNotFound(e)) return null;
      throw storeError(e, 'GetObject', this.where);
    }
    const hash = newHasher(algorithm);
    try {
      for await (const chunk of res.Body as Readable) hash.update(chunk as Buffer);
    } catch (e) {
      throw storeError(e, 'GetObject', this.where);
    }
    return hash.digest('hex');
  }

  // --- upload sessions ---------------------------------------------------------------------------

  private async writeRecord(id: string, r: SessionRecord): Promise<void> {
    await this.s3('PutObject', () =>
      this.client.send(new PutObjectCommand({ Bucket: this.options.bucket, Key: this.stateKey(id), Body: JSON.stringify(r), ContentType: 'application/json' })),
    );
  }

  private async readRecord(id: string): Promise<SessionRecord | null> {
    if (!UPLOAD_ID_RE.test(id)) return null;
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: this.stateKey(id) }));
      return JSON.parse(await res.Body!.transformToString()) as SessionRecord;
    } catch (e) {
      if (isNotFound(e)) return null;
      throw storeError(e, 'GetObject', this.where);
    }
  }

  async startUpload(repository: string): Promise<UploadState> {
    const id = randomUUID();
    const record: SessionRecord = { repository, startedAt: Date.now(), mpu: null, parts: [], tail: null };
    await this.writeRecord(id, record);
    this.live.set(id, { id, record, hash: createHash('sha256'), hashed: 0, heldTail: null, busy: false, readAt: 0 });
    return { id, repository, size: 0, startedAt: record.startedAt };
  }

  /**
   * The session as the bucket has it, merged with what this process knows: its running digest survives only if
   * no other instance (or failed request) moved the session on.
   */
  private async load(id: string): Promise<LiveUpload | null> {
    const readAt = Date.now();
    const record = await this.readRecord(id);
    const live = this.live.get(id);
    if (!record) {
      if (live && !live.busy) this.live.delete(id);
      return null;
    }
    // A session with no bytes yet can be hashed from its start by whichever instance gets its first bytes, not
    // only by the one that opened it (behind a balancer, a client's POST and PATCH often land apart).
    const empty = sizeOf(record) === 0;
    if (!live) {
      const fresh: LiveUpload = { id, record, hash: empty ? createHash('sha256') : null, hashed: 0, heldTail: null, busy: false, readAt };
      this.live.set(id, fresh);
      return fresh;
    }
    if (!live.busy) {
      live.record = record;
      live.readAt = readAt;
      live.heldTail = null;
      if (empty) {
        live.hash = createHash('sha256');
        live.hashed = 0;
      } else if (live.hashed !== sizeOf(record)) live.hash = null;
    }
    return live;
  }

  async getUpload(id: string): Promise<UploadState | null> {
    const live = await this.load(id);
    if (!live) return null;
    return { id, repository: live.record.repository, size: sizeOf(live.record), startedAt: live.record.startedAt };
  }

  private async claim(id: string, fresh = true): Promise<LiveUpload> {
    const held = this.live.get(id);
    // The commit right after this process's own append (commitFollows) trusts what it holds, and so does a request
    // whose session was just read (the registry's check of it).
    const trusted = held && !held.busy && ((!fresh && held.heldTail) || Date.now() - held.readAt < FRESH_MS);
    const live = trusted ? held : await this.load(id);
    if (live) live.readAt = 0;
    if (!live) throw new RegistryError('BLOB_UPLOAD_UNKNOWN');
    if (live.busy) throw new RegistryError('RANGE_INVALID', 'another request is writing to this upload');
    live.busy = true;
    return live;
  }

  private takePartBuffer(): Buffer {
    return this.spareParts.pop() ?? Buffer.allocUnsafeSlow(this.options.partSize);
  }
  private givePartBuffer(b: Buffer): void {
    if (this.spareParts.length < PARTS_IN_FLIGHT + 1 && b.length === this.options.partSize) this.spareParts.push(b);
  }

  private async getTail(id: string, gen: number): Promise<Buffer> {
    const res = await this.s3('GetObject', () => this.client.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: this.tailKey(id, gen) })));
    return Buffer.from(await res.Body!.transformToByteArray());
  }

  async appendUpload(id: string, body: Readable, expectedOffset?: number, commitFollows = false): Promise<UploadState> {
    const live = await this.claim(id);
    const before = live.record;
    const size = sizeOf(before);
    // The digest as it was, to go back to if this request fails: the session stays resumable where it was.
    const hashBefore = live.hash?.copy() ?? null;
    try {
      if (expectedOffset !== undefined && expectedOffset !== size) {
        throw new RegistryError('RANGE_INVALID', `upload is at offset ${size}, chunk starts at ${expectedOffset}`, { size });
      }
      const length = declaredLength(body);
      if (commitFollows && size === 0 && live.hash && length !== undefined && length > 0 && length <= MAX_SINGLE_PUT) {
        return await this.putWhole(id, live, body, length);
      }
      if (!commitFollows && !before.tail && length !== undefined && length >= MIN_PART && length <= MAX_SINGLE_PUT && before.parts.length < MAX_PARTS) {
        return await this.streamPart(id, live, body, length);
      }
      const record: SessionRecord = { ...before, parts: [...before.parts] };
      let part = this.takePartBuffer();
      let filled = 0;
      if (before.tail) {
        const tail = live.heldTail ?? (await this.getTail(id, before.tail.gen));
        tail.copy(part, 0);
        filled = tail.length;
      }
      live.heldTail = null;
      const sending = new Set<Promise<void>>();
      let failed: unknown;
      const sendPart = (buf: Buffer, n: number) => {
        const p = (async () => {
          const res = await this.s3('UploadPart', () =>
            this.client.send(new UploadPartCommand({ Bucket: this.options.bucket, Key: this.objectKey(id), UploadId: record.mpu!, PartNumber: n, Body: buf, ContentLength: buf.length })),
          );
          record.parts.push({ n, etag: res.ETag ?? '', size: buf.length });
        })()
          .catch((e) => (failed ??= e))
          .finally(() => {
            sending.delete(p);
            this.givePartBuffer(buf);
          });
        sending.add(p);
      };
      let nextPart = record.parts.length + 1;
      const hash = live.hash;
      // A request's chunks (withOwnChunks) are the parser's alone once read: freed as soon as they are copied (release-buffer.ts), so a
      // long push does not pile up spent 64 KiB chunks until V8's next collection.
      const release = canReleaseBuffers && hasOwnChunks(body) ? releaseBuffer : undefined;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (failed) throw failed;
        hash?.update(chunk);
        let offset = 0;
        while (offset < chunk.length) {
          const n = chunk.copy(part, filled, offset);
          filled += n;
          offset += n;
          if (offset === chunk.length) release?.(chunk);
          if (filled === part.length) {
            // The multipart upload is created with the first whole part, before any part is sent.
            record.mpu ??= await this.createMultipart(id);
            sendPart(part, nextPart++);
            part = this.takePartBuffer();
            filled = 0;
            while (sending.size >= PARTS_IN_FLIGHT) await Promise.race(sending);
            if (failed) throw failed;
          }
        }
      }
      await Promise.all(sending);
      if (failed) throw failed;
      record.parts.sort((a, b) => a.n - b.n);
      const tail = filled > 0 ? Buffer.from(part.subarray(0, filled)) : null;
      this.givePartBuffer(part);
      const gen = (before.tail?.gen ?? 0) + 1;
      record.tail = tail ? { gen, size: tail.length } : null;
      if (commitFollows) {
        // Held for the commit of this same request; the bucket still has the session as it was before it.
        live.heldTail = tail ?? Buffer.alloc(0);
      } else {
        if (tail) {
          await this.s3('PutObject', () => this.client.send(new PutObjectCommand({ Bucket: this.options.bucket, Key: this.tailKey(id, gen), Body: tail, ContentLength: tail.length })));
        }
        // The session's new state is what state.json says: written last, so a failure before it leaves the old one.
        await this.writeRecord(id, record);
        if (before.tail) void this.client.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: this.tailKey(id, before.tail.gen) })).catch(() => undefined);
      }
      live.record = record;
      if (hash) live.hashed = sizeOf(record);
      return { id, repository: record.repository, size: sizeOf(record), startedAt: record.startedAt };
    } catch (e) {
      live.hash = hashBefore;
      live.heldTail = null;
      throw e;
    } finally {
      live.busy = false;
      // Spare parts serve uploads in flight; an idle process does not keep them.
      if (![...this.live.values()].some((l) => l.busy)) this.spareParts.length = 0;
    }
  }

  /**
   * A whole blob whose length the request declared, into an empty session that this request commits: streamed
   * straight into one PutObject of the session's object as it arrives, hashed on the way. No part buffers, no
   * copy, no multipart upload for the store to assemble. The object stays invisible (no row names it) until the
   * commit has checked the digest; a failure midway leaves no object (S3 stores a PUT whole or not at all) and the
   * session where it was, at 0; kill -9 after the PUT leaves an object that the session's expiry and GC remove.
   */
  private async putWhole(id: string, live: LiveUpload, body: Readable, length: number): Promise<UploadState> {
    const sent = this.hashedBody(body, length, live.hash);
    await this.sendBody(sent, () =>
      this.client.send(
        new PutObjectCommand({ Bucket: this.options.bucket, Key: this.objectKey(id), Body: sent.stream, ContentLength: length, ContentType: 'application/octet-stream' }),
      ),
    );
    const record: SessionRecord = { ...live.record, mpu: null, parts: [], tail: null, whole: length };
    live.record = record;
    live.heldTail = Buffer.alloc(0);
    live.hashed = length;
    return { id, repository: record.repository, size: length, startedAt: record.startedAt };
  }

  /**
   * A chunk of declared length, at least S3's smallest part, that starts on a part boundary (no tail pending):
   * streamed straight into one part of its own size as it arrives, as putWhole does for a whole blob. Parts of a
   * multipart upload may differ in size; only the last may be under 5 MiB.
   */
  private async streamPart(id: string, live: LiveUpload, body: Readable, length: number): Promise<UploadState> {
    const before = live.record;
    const record: SessionRecord = { ...before, parts: [...before.parts] };
    record.mpu ??= await this.createMultipart(id);
    const n = record.parts.length + 1;
    const sent = this.hashedBody(body, length, live.hash);
    const res = await this.sendBody(sent, () =>
      this.client.send(new UploadPartCommand({ Bucket: this.options.bucket, Key: this.objectKey(id), UploadId: record.mpu!, PartNumber: n, Body: sent.stream, ContentLength: length })),
    );
    record.parts.push({ n, etag: res.ETag ?? '', size: length });
    await this.writeRecord(id, record);
    live.record = record;
    if (live.hash) live.hashed = sizeOf(record);
    return { id, repository: record.repository, size: sizeOf(record), startedAt: record.startedAt };
  }

  /** A request body passed on as it arrives, hashed on the way and held to its declared length. */
  private hashedBody(body: Readable, length: number, hash: Hash | null): { stream: Readable; error: () => unknown } {
    let received = 0;
    let error: unknown;
    const stream = Readable.from(
      (async function* () {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          received += chunk.length;
          // Node's parser holds a body to its Content-Length; checked anyway, as the request must carry exactly that.
          if (received > length) throw new RegistryError('SIZE_INVALID', `the body is longer than its Content-Length ${length}`);
          hash?.update(chunk);
          yield chunk;
        }
        if (received !== length) throw new RegistryError('SIZE_INVALID', `the body ended at ${received} of its Content-Length ${length} bytes`);
      })(),
      { objectMode: false },
    );
    stream.on('error', (e) => (error ??= e));
    return { stream, error: () => error };
  }

  /** Sends a request whose body is a client's: the client's body failing (cut off) is its error, not the store's. */
  private async sendBody<T>(sent: { error: () => unknown }, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (e) {
      if (sent.error()) throw sent.error();
      throw storeError(e, 'PutObject', this.where);
    }
  }

  private async createMultipart(id: string): Promise<string> {
    const res = await this.s3('CreateMultipartUpload', () =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: this.options.bucket, Key: this.objectKey(id), ContentType: 'application/octet-stream' })),
    );
    return res.UploadId!;
  }

  async commitUpload(id: string, digest: string, publish?: PublishBlob): Promise<{ size: number }> {
    if (!publish) throw new Error('the S3 blob store records blobs through publish');
    const live = await this.claim(id, false);
    try {
      const d = parseDigest(digest);
      if (!d) throw new RegistryError('DIGEST_INVALID', `invalid digest ${digest}`);
      const record = live.record;
      const size = sizeOf(record);
      const running = d.algorithm === 'sha256' && live.hash && live.hashed === size ? live.hash.copy().digest('hex') : null;
      if (running !== null && running !== d.hex) {
        // As Distribution does: a failed commit ends the session, so no unverifiable data lingers.
        if (record.whole !== undefined) await this.deleteKey(this.objectKey(id)).catch(() => undefined);
        await this.endSession(id, record);
        throw new RegistryError('DIGEST_INVALID', `uploaded content has digest sha256:${running}, not ${digest}`);
      }
      const key = this.objectKey(id);
      const location = key.slice(this.options.prefix.length);
      // A whole blob sent as one PutObject (putWhole) is its object already.
      let completed = record.whole !== undefined;
      const complete = async () => {
        if (record.whole === undefined) await this.completeObject(id, record, live.heldTail);
        completed = true;
      };
      const existing = running !== null ? await this.locations.blobLocation(digest) : null;
      if (!existing?.location) {
        await complete();
        if (running === null) {
          // Bytes hashed elsewhere (another instance, or before a restart): read back before anyone can see them.
          const hex = await this.hashObject(key, d.algorithm);
          if (hex !== d.hex) {
            await this.deleteKey(key).catch(() => undefined);
            await this.endSession(id, { ...record, mpu: null });
            throw new RegistryError('DIGEST_INVALID', `uploaded content has digest ${d.algorithm}:${hex}, not ${digest}`);
          }
        }
      }
      // A digest stored already keeps its object: `complete` then runs only if its row went in the meantime.
      const recorded = await publish(size, completed ? async () => undefined : complete, location);
      if (recorded !== location) {
        if (completed) await this.deleteKey(key).catch(() => undefined);
        await this.endSession(id, completed ? { ...record, mpu: null } : record);
      } else {
        await this.endSession(id, { ...record, mpu: null });
      }
      return { size };
    } finally {
      live.busy = false;
    }
  }

  /** Makes the session's object: one PutObject for a blob smaller than a part, else its last part and Complete. */
  private async completeObject(id: string, record: SessionRecord, heldTail: Buffer | null): Promise<void> {
    const Bucket = this.options.bucket;
    const Key = this.objectKey(id);
    const tail = heldTail ?? (record.tail ? await this.getTail(id, record.tail.gen) : Buffer.alloc(0));
    if (!record.mpu) {
      await this.s3('PutObject', () => this.client.send(new PutObjectCommand({ Bucket, Key, Body: tail, ContentLength: tail.length, ContentType: 'application/octet-stream' })));
      return;
    }
    const parts = [...record.parts];
    if (tail.length > 0) {
      const n = parts.length + 1;
      const res = await this.s3('UploadPart', () => this.client.send(new UploadPartCommand({ Bucket, Key, UploadId: record.mpu!, PartNumber: n, Body: tail, ContentLength: tail.length })));
      parts.push({ n, etag: res.ETag ?? '', size: tail.length });
    }
    // Ceph RGW 16.2 answers an empty ETag here; nothing below needs the object's ETag, so no HEAD follows.
    await this.s3('CompleteMultipartUpload', () =>
      this.client.send(
        new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: record.mpu!, MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.n, ETag: p.etag })) } }),
      ),
    );
  }

  /**
   * Removes a session's traces, all at once: a failure halfway leaves at most a multipart upload or a tail that
   * expireUploads sweeps (it aborts uploads and deletes tails no session owns).
   */
  private async endSession(id: string, record: SessionRecord): Promise<void> {
    this.live.delete(id);
    const Bucket = this.options.bucket;
    await Promise.all([
      record.mpu
        ? this.client.send(new AbortMultipartUploadCommand({ Bucket, Key: this.objectKey(id), UploadId: record.mpu })).catch((e) => {
            if (!isNotFound(e)) throw storeError(e, 'AbortMultipartUpload', this.where);
          })
        : undefined,
      record.tail ? this.client.send(new DeleteObjectCommand({ Bucket, Key: this.tailKey(id, record.tail.gen) })).catch(() => undefined) : undefined,
      this.s3('DeleteObject', () => this.client.send(new DeleteObjectCommand({ Bucket, Key: this.stateKey(id) }))),
    ]);
  }

  async cancelUpload(id: string): Promise<void> {
    const live = await this.load(id);
    if (!live) throw new RegistryError('BLOB_UPLOAD_UNKNOWN');
    await this.endSession(id, live.record);
  }

  private async sessionIds(): Promise<string[]> {
    const ids: string[] = [];
    for await (const o of this.listKeys(`${this.options.prefix}uploads/`)) {
      const m = /uploads\/([a-f0-9-]{36})\/state\.json$/.exec(o.key);
      if (m) ids.push(m[1]!);
    }
    return ids;
  }

  async listUploads(): Promise<UploadState[]> {
    const out: UploadState[] = [];
    for (const id of await this.sessionIds()) {
      const s = await this.getUpload(id);
      if (s) out.push(s);
    }
    return out;
  }

  /**
   * Ends sessions started before `olderThan`, and aborts multipart uploads no session owns (a crash between an
   * abort's steps) and deletes tails left without a session, once they are as old.
   */
  async expireUploads(olderThan: number): Promise<number> {
    let removed = 0;
    const open = new Set<string>();
    const ended = new Set<string>();
    for (const id of await this.sessionIds()) {
      const live = this.live.get(id);
      if (live?.busy) {
        open.add(id);
        continue;
      }
      const record = await this.readRecord(id);
      if (!record) continue;
      if (record.startedAt < olderThan) {
        await this.endSession(id, record);
        ended.add(id);
        removed++;
      } else open.add(id);
    }
    const Bucket = this.options.bucket;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.s3('ListMultipartUploads', () =>
        this.client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: `${this.options.prefix}blobs/`, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker })),
      );
      for (const u of page.Uploads ?? []) {
        const id = u.Key?.slice(`${this.options.prefix}blobs/`.length) ?? '';
        if (open.has(id) || (u.Initiated?.getTime() ?? 0) >= olderThan) continue;
        // One a PATCH created and was killed before recording: it belongs to a session, counted above.
        await this.client.send(new AbortMultipartUploadCommand({ Bucket, Key: u.Key!, UploadId: u.UploadId! })).catch(() => undefined);
        if (!ended.has(id)) removed++;
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    for await (const o of this.listKeys(`${this.options.prefix}uploads/`)) {
      const m = /uploads\/([a-f0-9-]{36})\/tail-\d+$/.exec(o.key);
      if (m && !open.has(m[1]!) && o.mtimeMs < olderThan) await this.client.send(new DeleteObjectCommand({ Bucket, Key: o.key })).catch(() => undefined);
    }
    return removed;
  }
}

/**
 * Positional reads of an object for the blob sender: one ranged GET that the reads consume in order, with up to
 * READ_AHEAD bytes received ahead of them; a read elsewhere starts a new GET from there.
 *
 * Each chunk of the response is copied into the waiting read's buffer as it arrives and then freed on the spot
 * (release-buffer.ts): Node's HTTP client copies every piece of a body into a buffer of its own (up to 64 KiB) for
 * its one reader, so nobody else holds it. Kept until a collection instead, those buffers were most of what the
 * process allocated while serving a pull (two of 64 KiB per socket read, with the socket's own), and chunks that
 * waited in the read-ahead long enough to outlive a young-generation collection were promoted, so that pulls ran
 * into full collections every few hundred milliseconds. A chunk is queued only when no read is waiting: the client
 * is slower than the store.
 */
class S3BlobFile implements BlobFile {
  private body: Readable | null = null;
  /** chunks received ahead of the reads, each with how much of it was consumed already */
  private queue: { chunk: Buffer; used: number }[] = [];
  private queued = 0;
  private position = 0;
  private end = 0;
  private ended = false;
  private error: Error | null = null;
  /** the read waiting for bytes: its buffer, how much it wants, how much it has */
  private waiting: { into: Buffer; length: number; n: number; done: () => void } | null = null;
  private release: ((chunk: Uint8Array) => void) | undefined;
  /** stops freeing the socket's reads (freeSocketReads) */
  private unwatch: (() => void) | undefined;
  /** the object's time: an object is written once, so a digest verified at this time stays verified (hashOnServe) */
  modifiedMs?: number;

  constructor(
    private readonly store: S3BlobStore,
    private readonly key: string,
    readonly size: number,
  ) {}

  /** Starts a GET of bytes [start, end]; false when the object does not exist. */
  async start(start: number, end: number): Promise<boolean> {
    this.drop();
    const got = await this.store.getRange(this.key, start, end);
    if (!got) return false;
    const body = got.body;
    this.modifiedMs ??= got.modifiedMs;
    this.body = body;
    this.position = start;
    this.end = end;
    this.ended = false;
    this.error = null;
    // Only when this file is the body's one reader (the SDK hands over Node's response untouched).
    this.release = canReleaseBuffers && body.listenerCount('data') === 0 ? releaseBuffer : undefined;
    if (this.release) this.unwatch = freeSocketReads((body as { socket?: Readable | null }).socket);
    body.on('data', (chunk: Buffer) => {
      if (body !== this.body) return;
      this.queue.push({ chunk, used: 0 });
      this.queued += chunk.length;
      const w = this.waiting;
      if (w) {
        w.n += this.take(w.into, w.n, w.length - w.n);
        if (w.n === w.length) this.wake();
      }
      if (this.queued >= READ_AHEAD) body.pause();
    });
    body.on('end', () => {
      if (body !== this.body) return;
      // The socket goes back to the client's pool for other requests: they are not this file's to free.
      this.unwatch?.();
      this.unwatch = undefined;
      this.ended = true;
      this.wake();
    });
    body.on('error', (e) => {
      if (body !== this.body) return;
      this.error = e;
      this.wake();
    });
    return true;
  }

  /** Copies up to `length` queued bytes into `into` at `at`, freeing the chunks used up; the count copied. */
  private take(into: Buffer, at: number, length: number): number {
    let n = 0;
    while (n < length && this.queue.length > 0) {
      const head = this.queue[0]!;
      const take = Math.min(head.chunk.length - head.used, length - n);
      head.chunk.copy(into, at + n, head.used, head.used + take);
      n += take;
      head.used += take;
      if (head.used === head.chunk.length) {
        this.queue.shift();
        this.release?.(head.chunk);
      }
    }
    this.queued -= n;
    this.position += n;
    return n;
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = null;
    w?.done();
  }

  async read(into: Buffer, length: number, position: number): Promise<number> {
    if (position >= this.size) return 0;
    if (!this.body || position !== this.position || position > this.end) {
      if (!(await this.start(position, this.size - 1))) throw new RegistryError('BLOB_UNKNOWN', 'blob data is missing');
    }
    // Fill the caller's buffer (fewer, larger socket writes): what is queued now, the rest as it arrives.
    let n = this.take(into, 0, length);
    if (n < length && !this.ended && !this.error) {
      const w = { into, length, n, done: () => {} };
      await new Promise<void>((resolve) => {
        w.done = resolve;
        this.waiting = w;
        this.body!.resume();
      });
      n = w.n;
    }
    if (this.error && n === 0) throw this.error;
    if (this.queued < READ_AHEAD) this.body?.resume();
    return n;
  }

  private drop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    this.wake();
    this.body?.destroy();
    this.body = null;
    this.queue = [];
    this.queued = 0;
  }

  async close(): Promise<void> {
    this.drop();
  }
}

/**
 * Frees each buffer read from an object response's socket once Node's HTTP client has parsed it, until the returned
 * function is called. The client reads a socket into a fresh buffer of up to 64 KiB for every read, parses it at
 * once and copies the body's bytes out (those copies are what S3BlobFile receives, and frees itself), so nobody
 * holds the read's buffer afterwards; left to the collector, it was half of what a pull allocated. The client's
 * listener, added when the request got the socket, runs before this one; a listener ahead of the client's (a
 * socket reused by a later request while this one still listens) would see the bytes before the parser, so such a
 * read is left alone. Only whole buffers are freed (releaseBuffer), never a slice of memory shared with another.
 */
function freeSocketReads(socket: Readable | null | undefined): (() => void) | undefined {
  if (!socket) return undefined;
  const onData = (read: Buffer) => {
    const listeners = socket.listeners('data');
    if (listeners.length > 1 && listeners[0] !== onData && Buffer.isBuffer(read)) releaseBuffer(read);
  };
  socket.on('data', onData);
  return () => socket.off('data', onData);
}
