// The worker thread behind UploadWriters (upload-writer.ts): keeps one running sha256 per upload session, hashes
// the batches the main thread puts in the shared slots in the order sent, and writes each batch to the session's
// file at the offset it was given. A batch goes back to the main thread once it is hashed and on disk.
//
// The page-aligned middle of a batch in a slot is written with O_DIRECT, so it bypasses the page cache: no copy
// into cache pages, no pages to find, and no dirty data for writeback to flush later (the commit's fsync then has
// only a device flush left). An unaligned head or tail, and a batch in a plain buffer (when every slot was taken),
// go through the page cache; Linux keeps the two kinds of write coherent, and they never share a page here.
import { createHash, type Hash } from 'node:crypto';
import { close, constants, openSync, write } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { DIRECT_ALIGN, type WorkerReply, type WorkerRequest, type WorkerSetup } from './upload-protocol.js';

interface Session {
  hash: Hash;
  path: string;
  /** descriptors, opened on the first write */
  fd?: number;
  /** null: this file system takes no O_DIRECT (tmpfs), or it was refused once */
  directFd?: number | null;
  writing: number;
  dropped: boolean;
}

const port = parentPort!;
const { memory, slotStride } = workerData as WorkerSetup;
const slots = new Uint8Array(memory.buffer);
const sessions = new Map<string, Session>();
/** O_DIRECT is not defined off Linux; some file systems refuse it (EINVAL at open or at the first write). */
let directUsable = constants.O_DIRECT !== undefined;

port.on('message', (m: WorkerRequest) => {
  switch (m.op) {
    case 'open':
      sessions.set(m.session, { hash: createHash('sha256'), path: m.path, writing: 0, dropped: false });
      return;
    case 'update': {
      const s = sessions.get(m.session);
      const bytes = m.slot >= 0 ? slots.subarray(m.slot * slotStride, (m.slot + 1) * slotStride) : new Uint8Array(m.buf!);
      const reply = (error?: Error) =>
        port.postMessage({ op: 'updated', session: m.session, slot: m.slot, buf: m.buf, error: error?.message, errorCode: (error as NodeJS.ErrnoException | undefined)?.code } satisfies WorkerReply, m.buf ? [m.buf] : []);
      if (!s) return reply(new Error('unknown upload session'));
      s.hash.update(bytes.subarray(m.start, m.start + m.length));
      s.writing++;
      writeBatch(s, bytes, m.start, m.length, m.position, m.slot >= 0, (error) => {
        s.writing--;
        reply(error);
        if (s.dropped && s.writing === 0) closeFiles(s);
      });
      return;
    }
    case 'digest': {
      // copy(): the session may yet continue (a commit that fails after hashing leaves the upload open).
      const hex = (sessions.get(m.session)?.hash ?? createHash('sha256')).copy().digest('hex');
      port.postMessage({ op: 'digest', seq: m.seq, hex } satisfies WorkerReply);
      return;
    }
    case 'drop': {
      const s = sessions.get(m.session);
      sessions.delete(m.session);
      if (!s) return;
      s.dropped = true;
      // A descriptor closed under a write in flight could be reused by another file before the write lands.
      if (s.writing === 0) closeFiles(s);
      return;
    }
  }
});

/** Writes bytes [start, start + length) of `bytes` at file offset `position`; `aligned`: they sit in a slot. */
function writeBatch(s: Session, bytes: Uint8Array, start: number, length: number, position: number, aligned: boolean, done: (e?: Error) => void): void {
  try {
    s.fd ??= openSync(s.path, constants.O_WRONLY);
    if (s.directFd === undefined) s.directFd = directUsable ? openDirect(s.path) : null;
  } catch (e) {
    return done(e as Error);
  }
  const end = position + length;
  // [from, to): the whole pages of the batch, written directly.
  const direct = aligned && s.directFd !== null;
  const from = direct ? Math.min(end, roundUp(position, DIRECT_ALIGN)) : end;
  const to = direct ? Math.max(from, end - (end % DIRECT_ALIGN)) : end;
  const at = (p: number) => start + (p - position);
  let pending = 1; // held while the pieces are issued
  let failed: Error | undefined;
  const finish = (e?: Error | null) => {
    failed ??= e ?? undefined;
    if (--pending === 0) done(failed);
  };
  const buffered = (p: number, q: number) => {
    if (q <= p) return;
    pending++;
    writeAll(s.fd!, bytes, at(p), q - p, p, finish);
  };
  buffered(position, from);
  if (from < to) {
    pending++;
    writeAll(s.directFd!, bytes, at(from), to - from, from, (e) => {
      if (e && (e as NodeJS.ErrnoException).code === 'EINVAL') {
        // Refused after all (this kernel or file system wants another alignment): the page cache from now on.
        directUsable = false;
        s.directFd = null;
        return writeAll(s.fd!, bytes, at(from), to - from, from, finish);
      }
      finish(e);
    });
  }
  buffered(to, end);
  finish();
}

/** pwrite until every byte is written (a regular file takes all at once; this is for the rare short write). */
function writeAll(fd: number, bytes: Uint8Array, offset: number, length: number, position: number, cb: (e?: Error | null) => void): void {
  write(fd, bytes, offset, length, position, (e, n) => {
    if (e) return cb(e);
    if (n === length) return cb();
    if (n === 0) return cb(new Error('short write'));
    writeAll(fd, bytes, offset + n, length - n, position + n, cb);
  });
}

function openDirect(path: string): number | null {
  try {
    return openSync(path, constants.O_WRONLY | constants.O_DIRECT);
  } catch {
    directUsable = false;
    return null;
  }
}

function closeFiles(s: Session): void {
  for (const fd of [s.fd, s.directFd]) if (typeof fd === 'number') close(fd, () => undefined);
  s.fd = undefined;
  s.directFd = undefined;
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}
