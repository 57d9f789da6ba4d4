// Integrity of stored blobs when they are served: the size is checked on every open and the bytes are hashed as
// they go out, so a corrupt or truncated blob is never delivered whole under its digest; a bad one is quarantined.
// Works over any BlobStore (filesystem, S3): it only wraps the BlobFile the store opens.
import type { Hash } from 'node:crypto';
import { newHasher, parseDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import type { BlobFile, BlobStore, ByteRange } from '../storage/blob-store.js';

/**
 * always: every whole-blob GET is hashed. unverified: only blobs not verified (by the scrub, fsck or an earlier
 * hashed serve) since their bytes last changed; the size is still checked on every open.
 */
export type HashOnServe = 'always' | 'unverified';

export interface QuarantineEvent {
  digest: string;
  /** size: the stored size differs from the recorded one; digest: the bytes hash to something else */
  reason: 'size' | 'digest';
  foundBy: 'serve' | 'scrub';
  detail: string;
}

/**
 * Blobs remembered as verified, about 150 bytes each: 7–8 MiB at most, whatever the size of the store. A blob that
 * falls out is hashed at its next GET, which verifies it again.
 */
const MAX_VERIFIED = 50_000;

/** Thrown (from BlobFile.read) when the bytes being served turn out wrong: the sender cuts the response short. */
export class BlobIntegrityError extends Error {}

export class BlobIntegrity {
  /** digest → the modifiedMs of the stored bytes when they were last verified */
  private readonly verified = new Map<string, number>();
  /** quarantined by this process, for a clearer answer than "missing" until the blob comes back */
  private readonly quarantined = new Set<string>();
  /** blobs quarantined since start, by who found them (the /metrics counter) */
  readonly counts = { serve: 0, scrub: 0 };

  constructor(
    private readonly blobs: BlobStore,
    private readonly hashOnServe: HashOnServe = 'always',
    /** told of every quarantine (the audit log); its failure is not the reader's */
    private readonly onQuarantine: (e: QuarantineEvent) => Promise<void> | void = () => {},
  ) {}

  /**
   * Opens a blob for serving `range` (or all of it) when the database records it as `recordedSize` bytes. A blob
   * of another size is quarantined and answered as unknown. Reads of the whole blob are hashed (see HashOnServe);
   * the read that would deliver the last byte throws BlobIntegrityError instead when the digest does not match.
   */
  async openForServe(digest: string, recordedSize: number, range?: ByteRange): Promise<BlobFile> {
    // The range lets a store that reads over a network (S3) ask for those bytes only.
    const file = await this.blobs.open(digest, range);
    if (!file) throw this.unknown(digest);
    this.quarantined.delete(digest);
    if (file.size !== recordedSize) {
      await file.close().catch(() => undefined);
      await this.quarantine({ digest, reason: 'size', foundBy: 'serve', detail: `${file.size} bytes stored, ${recordedSize} recorded` });
      throw this.unknown(digest);
    }
    const whole = range === undefined || (range.start === 0 && range.end === file.size - 1);
    if (!whole || file.size === 0) return file;
    if (this.hashOnServe === 'unverified' && file.modifiedMs !== undefined && this.verified.get(digest) === file.modifiedMs) return file;
    return new VerifyingBlobFile(file, digest, (actual) =>
      actual === null ? this.markVerified(digest, file.modifiedMs) : this.quarantine({ digest, reason: 'digest', foundBy: 'serve', detail: `bytes hash to ${actual}` }),
    );
  }

  /** Whether a blob is stored at its recorded size (HEAD): a blob of another size is quarantined. */
  async checkStored(digest: string, recordedSize: number): Promise<void> {
    const stored = await this.blobs.stat(digest);
    if (!stored) throw this.unknown(digest);
    this.quarantined.delete(digest);
    if (stored.size !== recordedSize) {
      await this.quarantine({ digest, reason: 'size', foundBy: 'serve', detail: `${stored.size} bytes stored, ${recordedSize} recorded` });
      throw this.unknown(digest);
    }
  }

  /** Records that the bytes stored under `digest`, as of `modifiedMs`, hash to it. */
  markVerified(digest: string, modifiedMs: number | undefined): void {
    if (modifiedMs === undefined) return;
    // Latest last (a Map keeps insertion order), so the bound drops the blobs verified longest ago.
    this.verified.delete(digest);
    this.verified.set(digest, modifiedMs);
    if (this.verified.size > MAX_VERIFIED) this.verified.delete(this.verified.keys().next().value!);
  }

  /** Moves a bad blob out of every read path (or deletes it when the store cannot move it), and reports it. */
  async quarantine(e: QuarantineEvent): Promise<void> {
    this.verified.delete(e.digest);
    this.quarantined.add(e.digest);
    this.counts[e.foundBy]++;
    if (this.blobs.quarantine) await this.blobs.quarantine(e.digest);
    else await this.blobs.delete(e.digest);
    try {
      await this.onQuarantine(e);
    } catch {
      // The blob is out of the way either way; the hook logs its own failures.
    }
  }

  private unknown(digest: string): RegistryError {
    if (!this.quarantined.has(digest)) return new RegistryError('BLOB_UNKNOWN', 'blob data is missing');
    return new RegistryError(
      'BLOB_UNKNOWN',
      `blob ${digest} failed its integrity check and was quarantined: push it again, or run 'wharf fsck --repair'`,
    );
  }
}

/**
 * Hashes the reads of a whole blob in order. The read that reaches the end checks the digest before it returns:
 * on a mismatch it throws, so the sender never writes the last bytes and the client sees a short body, not a good one.
 * A read out of order (none today: the sender reads front to back) just stops the hashing.
 */
class VerifyingBlobFile implements BlobFile {
  private hash: Hash | null;
  private next = 0;
  private readonly expected: string;

  constructor(
    private readonly inner: BlobFile,
    private readonly digest: string,
    /** null: the bytes match; otherwise the digest they have */
    private readonly checked: (actual: string | null) => Promise<void> | void,
  ) {
    const d = parseDigest(digest)!;
    this.hash = newHasher(d.algorithm);
    this.expected = d.hex;
  }

  get size(): number {
    return this.inner.size;
  }

  get modifiedMs(): number | undefined {
    return this.inner.modifiedMs;
  }

  async read(into: Buffer, length: number, position: number): Promise<number> {
    const n = await this.inner.read(into, length, position);
    const hash = this.hash;
    if (!hash) return n;
    if (position !== this.next) {
      this.hash = null;
      return n;
    }
    this.next += n;
    if (n > 0) hash.update(n === into.length ? into : into.subarray(0, n));
    if (this.next < this.inner.size && n > 0) return n;
    this.hash = null;
    // The end: the whole of it, or a file that shrank under us (n = 0 early).
    const hex = this.next === this.inner.size ? hash.digest('hex') : null;
    if (hex === this.expected) {
      await this.checked(null);
      return n;
    }
    const actual = hex === null ? `a file that ended at byte ${this.next} of ${this.inner.size}` : `${this.digest.split(':')[0]}:${hex}`;
    await this.checked(actual);
    throw new BlobIntegrityError(`blob ${this.digest} does not match its digest (${actual}): response cut short`);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
