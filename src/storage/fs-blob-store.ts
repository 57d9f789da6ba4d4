// BlobStore on the local filesystem: blobs/<alg>/<2 hex>/<hex>, uploads/<id>/{data,info.json},
// quarantine/<alg>/<hex>.<epoch ms> for blobs whose bytes were found not to match their digest.
// An upload is hashed while it streams, verified, fsynced and renamed into place, so a blob is never
// visible half-written; the uploads directory sits on the same filesystem so the rename is atomic.
import { close as closeFdCb, createReadStream, createWriteStream, fdatasync as fdatasyncCb, fstat as fstatCb, open as openFdCb, read as readCb } from 'node:fs';
import { promisify } from 'node:util';
import { mkdir, open, readFile, readdir, rename, rm, stat, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import { randomUUID, type Hash } from 'node:crypto';
import { join } from 'node:path';
import { Transform, finished, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { newHasher, parseDigest, type DigestAlgorithm } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { BlobFile, BlobStore, ByteRange, UploadState } from './blob-store.js';
import { canReleaseBuffers, hasOwnChunks, releaseBuffer } from './release-buffer.js';
import { uploadWriters, type UploadWriter, type UploadWriters } from './upload-writer.js';

const openFd = promisify(openFdCb);
const closeFd = promisify(closeFdCb);
const fdatasync = promisify(fdatasyncCb);
const fstatFd = promisify(fstatCb);
const readFd = promisify(readCb);

const READ_CHUNK = 1 << 20;
/** Bytes of an upload body written on the main thread between background flushes to disk. */
const SYNC_EVERY = 4 << 20;
const UPLOAD_ID_RE = /^[a-f0-9-]{36}$/;

/** A sha256 on the main thread, for sessions whose state was rebuilt from their file. */
class LocalDigest {
  constructor(private readonly hash: Hash) {}
  update(chunk: Buffer): void {
    this.hash.update(chunk);
  }
  hex(): string {
    return this.hash.copy().digest('hex');
  }
}

interface LiveUpload {
  state: UploadState;
  /** the worker that hashes and writes this session's bytes; null after a restart or once its worker was lost */
  writer: UploadWriter | null;
  /** without a writer: the running sha256 of the bytes so far, rebuilt from the file when needed */
  hash: LocalDigest | null;
  busy: boolean;
}

export class FsBlobStore implements BlobStore {
  private readonly blobsDir: string;
  private readonly uploadsDir: string;
  private readonly quarantineDir: string;
  private readonly live = new Map<string, LiveUpload>();

  constructor(
    root: string,
    private readonly writers: UploadWriters = uploadWriters(),
  ) {
    this.blobsDir = join(root, 'blobs');
    this.uploadsDir = join(root, 'uploads');
    this.quarantineDir = join(root, 'quarantine');
    writers.hold();
  }

  private storeClosed = false;

  /** Sessions stay on disk (a client resumes them after a restart); their workers stop with the last store. */
  async close(): Promise<void> {
    if (this.storeClosed) return;
    this.storeClosed = true;
    for (const id of [...this.live.keys()]) this.forget(id);
    await this.writers.release();
  }

  async init(): Promise<void> {
    await mkdir(this.blobsDir, { recursive: true });
    await mkdir(this.uploadsDir, { recursive: true });
  }

  blobPath(digest: string): string {
    const d = parseDigest(digest);
    if (!d) throw new RegistryError('DIGEST_INVALID', `invalid digest ${digest}`);
    return join(this.blobsDir, d.algorithm, d.hex.slice(0, 2), d.hex);
  }

  async stat(digest: string): Promise<{ size: number } | null> {
    try {
      const s = await stat(this.blobPath(digest));
      return { size: s.size };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  read(digest: string, range?: ByteRange): Readable {
    return createReadStream(this.blobPath(digest), { highWaterMark: READ_CHUNK, start: range?.start, end: range?.end });
  }

  async open(digest: string): Promise<BlobFile | null> {
    // A bare descriptor through the callback API, not a FileHandle: the sender reads into its own buffers, and
    // needs nothing a FileHandle adds.
    let fd: number;
    try {
      fd = await openFd(this.blobPath(digest), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    try {
      const s = await fstatFd(fd);
      // ctime, not mtime: utimes can set mtime back, but any write, truncate or rename moves ctime.
      // The key changes with any write, rename or truncate (ctime), and with a new file under the same name (inode).
      return new FdBlobFile(fd, s.size, s.ctimeMs, `${digest}:${s.dev}:${s.ino}:${s.ctimeMs}:${s.size}`);
    } catch (e) {
      await closeFd(fd);
      throw e;
    }
  }

  async delete(digest: string): Promise<void> {
    await unlink(this.blobPath(digest)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }

  async quarantine(digest: string): Promise<void> {
    const d = parseDigest(digest);
    if (!d) throw new RegistryError('DIGEST_INVALID', `invalid digest ${digest}`);
    const dir = join(this.quarantineDir, d.algorithm);
    await mkdir(dir, { recursive: true });
    // A suffix per event: the same digest may be quarantined again after a re-push, and each copy is evidence.
    await rename(this.blobPath(digest), join(dir, `${d.hex}.${Date.now()}`)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }

  async *list(): AsyncIterable<{ digest: string; size: number; mtimeMs: number }> {
    for (const algorithm of await readdir(this.blobsDir).catch(() => [] as string[])) {
      const algDir = join(this.blobsDir, algorithm);
      for (const prefix of await readdir(algDir).catch(() => [] as string[])) {
        for (const hex of await readdir(join(algDir, prefix)).catch(() => [] as string[])) {
          const digest = `${algorithm}:${hex}`;
          if (!parseDigest(digest)) continue;
          const s = await stat(join(algDir, prefix, hex)).catch(() => null);
          if (s) yield { digest, size: s.size, mtimeMs: s.mtimeMs };
        }
      }
    }
  }

  async verify(digest: string): Promise<boolean> {
    const d = parseDigest(digest)!;
    const actual = await hashFile(this.blobPath(digest), d.algorithm);
    return actual === d.hex;
  }

  // --- upload sessions -------------------------------------------------------------------------

  private uploadDir(id: string): string {
    return join(this.uploadsDir, id);
  }

  async startUpload(repository: string): Promise<UploadState> {
    const id = randomUUID();
    const state: UploadState = { id, repository, size: 0, startedAt: Date.now() };
    const dir = this.uploadDir(id);
    await mkdir(dir);
    await writeFile(join(dir, 'data'), '');
    // info.json is written last: a session directory without it is debris from a crash and gets swept.
    await writeFile(join(dir, 'info.json'), JSON.stringify({ repository, startedAt: state.startedAt }));
    this.live.set(id, { state, writer: this.writers.open(id, join(dir, 'data')), hash: null, busy: false });
    return { ...state };
  }

  /**
   * Loads a session from disk (after a restart, or one another instance over the same directory started) or memory.
   * A cached session is checked against its file first: with several instances on one directory, a chunk may have
   * been appended (or the session committed or cancelled) by another one since this one last wrote to it.
   */
  private async load(id: string): Promise<LiveUpload | null> {
    const cached = this.live.get(id);
    if (cached && !cached.busy) {
      const size = await stat(join(this.uploadDir(id), 'data')).then(
        (s) => s.size,
        () => null,
      );
      if (this.live.get(id) !== cached || cached.busy) return this.load(id);
      if (size === null) {
        this.forget(id);
        return null;
      }
      if (size !== cached.state.size) {
        // Someone else's bytes: this instance's running digest and worker position no longer describe the file.
        this.dropWriter(cached);
        cached.hash = null;
        cached.state.size = size;
      }
      return cached;
    }
    if (cached) return cached;
    if (!UPLOAD_ID_RE.test(id)) return null;
    try {
      const info = JSON.parse(await readFile(join(this.uploadDir(id), 'info.json'), 'utf8')) as { repository: string; startedAt: number };
      const s = await stat(join(this.uploadDir(id), 'data'));
      // Another request may have loaded it while we read: share its entry, or both could claim the session.
      const loaded = this.live.get(id);
      if (loaded) return loaded;
      const live: LiveUpload = { state: { id, repository: info.repository, size: s.size, startedAt: info.startedAt }, writer: null, hash: null, busy: false };
      this.live.set(id, live);
      return live;
    } catch {
      return null;
    }
  }

  async getUpload(id: string): Promise<UploadState | null> {
    const live = await this.load(id);
    return live ? { ...live.state } : null;
  }

  private async claim(id: string): Promise<LiveUpload> {
    const live = await this.load(id);
    if (!live) throw new RegistryError('BLOB_UPLOAD_UNKNOWN');
    // One request at a time per session: a second writer would interleave bytes.
    if (live.busy) throw new RegistryError('RANGE_INVALID', 'another request is writing to this upload');
    live.busy = true;
    return live;
  }

  async appendUpload(id: string, body: Readable, expectedOffset?: number): Promise<UploadState> {
    const live = await this.claim(id);
    try {
      if (expectedOffset !== undefined && expectedOffset !== live.state.size) {
        throw new RegistryError('RANGE_INVALID', `upload is at offset ${live.state.size}, chunk starts at ${expectedOffset}`, {
          size: live.state.size,
        });
      }
      const path = join(this.uploadDir(id), 'data');
      if (live.writer?.alive) {
        await this.appendThroughWorker(live, live.writer, path, body);
        return { ...live.state };
      }
      // No worker: the session was resumed after a restart, or its worker was lost (and the running digest with it).
      this.dropWriter(live);
      if (!live.hash) live.hash = new LocalDigest(await hashFileState(path));
      const hash = live.hash;
      let written = 0;
      // Flushes to disk in the background as the body arrives, so the fsync of the commit has only the tail
      // left to write (about 7 ms → 1 ms for 16 MiB here) instead of every byte at once. Through a descriptor
      // of its own: the write stream closes its descriptor whenever it is destroyed.
      const fd = await openFd(path, 'r');
      const syncs: Promise<void>[] = [];
      let unsynced = 0;
      const tap = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          written += chunk.length;
          unsynced += chunk.length;
          if (unsynced >= SYNC_EVERY) {
            unsynced = 0;
            syncs.push(fdatasync(fd).catch(() => undefined));
          }
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      try {
        await pipeline(body, tap, createWriteStream(path, { flags: 'a', highWaterMark: READ_CHUNK }));
      } catch (e) {
        // A broken request leaves an unknown number of bytes on disk: the hash can no longer be trusted.
        live.hash = null;
        live.state.size = (await stat(path)).size;
        throw e;
      } finally {
        await Promise.all(syncs);
        await closeFd(fd);
      }
      live.state.size += written;
      return { ...live.state };
    } finally {
      live.busy = false;
    }
  }

  /** The usual path: the body goes to the session's worker, which hashes it and writes it to the file. */
  private async appendThroughWorker(live: LiveUpload, writer: UploadWriter, path: string, body: Readable): Promise<void> {
    writer.position = live.state.size;
    try {
      await feed(body, writer);
    } catch (e) {
      if (await writer.abandon()) {
        // The body broke: what the worker was sent is on disk, hashed, and contiguous; the client resumes there.
        live.state.size = writer.position;
      } else {
        // A write failed or the worker was lost: which of the request's bytes reached the file is unknown.
        this.dropWriter(live);
        await truncate(path, live.state.size);
      }
      throw e;
    }
    live.state.size = writer.position;
  }

  private dropWriter(live: LiveUpload): void {
    live.writer?.drop();
    live.writer = null;
  }

  async commitUpload(id: string, digest: string, publish?: (size: number, reveal: () => Promise<void>) => Promise<void>): Promise<{ size: number }> {
    const live = await this.claim(id);
    try {
      const d = parseDigest(digest);
      if (!d) throw new RegistryError('DIGEST_INVALID', `invalid digest ${digest}`);
      const path = join(this.uploadDir(id), 'data');
      // The file is made durable while the digest is computed; a mismatch wasted only that fsync.
      const digestOfUpload = async () => {
        // A lost hash worker costs a re-read of the file, not the upload.
        let running: string | null = null;
        if (d.algorithm === 'sha256') running = live.writer ? await live.writer.hex().catch(() => null) : (live.hash?.hex() ?? null);
        return running ?? hashFile(path, d.algorithm);
      };
      const [hex] = await Promise.all([digestOfUpload(), fsyncPath(path)]);
      if (hex !== d.hex) {
        // As Distribution does: a failed commit ends the session, so no unverifiable data lingers.
        this.forget(id);
        await rm(this.uploadDir(id), { recursive: true, force: true });
        throw new RegistryError('DIGEST_INVALID', `uploaded content has digest ${d.algorithm}:${hex}, not ${digest}`);
      }
      const target = this.blobPath(digest);
      const dir = join(target, '..');
      const size = live.state.size;
      // Outside `publish`, which holds the database's write lock: only the rename and its fsync need to be in it.
      await mkdir(dir, { recursive: true });
      // A blob file's age is the time of its commit (not of its last chunk): grace periods count from it.
      const now = new Date();
      await utimes(path, now, now);
      const reveal = async () => {
        await rename(path, target);
        await fsyncPath(dir);
      };
      if (publish) await publish(size, reveal);
      else await reveal();
      this.forget(id);
      // What is left (info.json) is no longer a session: load() finds no data file. The client need not wait for
      // its removal, and a crash before it leaves debris that expireUploads sweeps.
      void rm(this.uploadDir(id), { recursive: true, force: true }).catch(() => undefined);
      return { size };
    } finally {
      live.busy = false;
    }
  }

  async cancelUpload(id: string): Promise<void> {
    const live = await this.load(id);
    if (!live) throw new RegistryError('BLOB_UPLOAD_UNKNOWN');
    this.forget(id);
    await rm(this.uploadDir(id), { recursive: true, force: true });
  }

  private forget(id: string): void {
    this.live.get(id)?.writer?.drop();
    this.live.delete(id);
  }

  async listUploads(): Promise<UploadState[]> {
    const out: UploadState[] = [];
    for (const id of await readdir(this.uploadsDir).catch(() => [] as string[])) {
      const s = await this.getUpload(id);
      if (s) out.push(s);
    }
    return out;
  }

  async expireUploads(olderThan: number): Promise<number> {
    let removed = 0;
    for (const id of await readdir(this.uploadsDir).catch(() => [] as string[])) {
      const live = this.live.get(id);
      if (live?.busy) continue;
      let startedAt: number;
      if (live) startedAt = live.state.startedAt;
      else {
        const info = await readFile(join(this.uploadDir(id), 'info.json'), 'utf8').catch(() => null);
        // No info.json: a session that crashed while being created; judge it by its directory's age.
        startedAt = info ? (JSON.parse(info) as { startedAt: number }).startedAt : (await stat(this.uploadDir(id)).catch(() => ({ mtimeMs: 0 }))).mtimeMs;
      }
      if (startedAt < olderThan) {
        this.forget(id);
        await rm(this.uploadDir(id), { recursive: true, force: true });
        removed++;
      }
    }
    return removed;
  }
}

class FdBlobFile implements BlobFile {
  private closed = false;
  constructor(
    private readonly fd: number,
    readonly size: number,
    readonly modifiedMs: number,
    readonly contentKey: string,
  ) {}

  async read(into: Buffer, length: number, position: number): Promise<number> {
    return (await readFd(this.fd, into, 0, length, position)).bytesRead;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await closeFd(this.fd);
  }
}

async function hashFile(path: string, algorithm: DigestAlgorithm): Promise<string> {
  return (await hashFileState(path, algorithm)).digest('hex');
}

async function hashFileState(path: string, algorithm: DigestAlgorithm = 'sha256'): Promise<Hash> {
  const hash = newHasher(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK })) hash.update(chunk as Buffer);
  return hash;
}

/**
 * Whether a body's chunks may be freed once given to the writer (releaseBuffer): only a request's (marked by
 * withOwnChunks), whose chunks the HTTP parser made for the one 'data' listener, feed()'s, and which nobody else holds. A stream of a caller's own
 * buffers must keep them.
 */
function ownChunks(body: Readable): boolean {
  return canReleaseBuffers && hasOwnChunks(body) && body.listenerCount('data') === 0;
}

/**
 * Gives a request body to an upload writer chunk by chunk, and resolves once every byte is hashed and written. It
 * listens to 'data' itself rather than piping into a Writable: a push arrives in 64 KiB chunks, 16,000 per GiB, and
 * the Writable's bookkeeping around each one was a measurable part of the main thread's work; and a request's chunks,
 * once copied into the writer's batch, are freed on the spot (release-buffer.ts). A failed write drains the rest of
 * the body (so that the answer reaches the client), and a body that breaks rejects.
 */
function feed(body: Readable, writer: UploadWriter): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      body.off('data', onData);
      stopWatching();
      // The rest of the body is read and dropped rather than the body destroyed: destroying a request that is still
      // arriving resets its connection, and the client would see that instead of the answer (507 on a full disk).
      // An 'error' event nobody hears is a crash, so one is heard (and dropped) from now on.
      body.on('error', () => undefined);
      body.resume();
      reject(e);
    };
    const release = ownChunks(body) ? releaseBuffer : undefined;
    const onData = (chunk: Buffer) => {
      try {
        const wait = writer.write(chunk);
        release?.(chunk);
        if (wait) {
          body.pause();
          wait.then(() => settled || body.resume(), fail);
        }
      } catch (e) {
        fail(e);
      }
    };
    body.on('data', onData);
    const stopWatching = finished(body, (err) => {
      if (err) return fail(err);
      writer.finish().then(() => {
        if (settled) return;
        settled = true;
        stopWatching();
        resolve();
      }, fail);
    });
  });
}

/** fsync of a file or a directory (a read-only descriptor is enough for both on Linux). */
async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
