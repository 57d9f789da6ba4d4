// Blob contents for the benchmark: any number of distinct blobs of any size, made from one shared random buffer, with digests that cost almost nothing.
import { createHash, randomFillSync, type Hash } from 'node:crypto';

/** Bytes at the end of every blob that make it unique; everything before them repeats the shared buffer. */
const TAIL = 32;

/** What a push or pull needs to know about a blob; `slices` streams its bytes without copying them. */
export interface BlobBody {
  digest: string;
  size: number;
  slices(start?: number, end?: number): Iterable<Buffer>;
}

export function bufferBlob(bytes: Buffer): BlobBody {
  return {
    digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
    size: bytes.length,
    *slices(start = 0, end = bytes.length) {
      if (end > start) yield bytes.subarray(start, end);
    },
  };
}

export class BlobSource {
  private readonly base: Buffer;
  // Hash state of the shared prefix of each blob size seen, so a new blob of that size hashes only its tail (Hash.copy).
  private readonly prefixes = new Map<number, Hash>();

  constructor(baseBytes: number) {
    this.base = randomFillSync(Buffer.allocUnsafe(baseBytes));
  }

  /** A blob of `size` bytes whose content is fixed by `label`: the same label gives the same blob. */
  blob(size: number, label: string): BlobBody {
    if (size < TAIL) throw new Error(`blob size ${size} is below ${TAIL} bytes`);
    const tail = createHash('sha256').update(label).digest();
    const hash = this.prefixHash(size - TAIL).copy().update(tail);
    const base = this.base;
    return {
      digest: `sha256:${hash.digest('hex')}`,
      size,
      *slices(start = 0, end = size) {
        const prefixEnd = size - TAIL;
        let pos = start;
        while (pos < Math.min(end, prefixEnd)) {
          const inBase = pos % base.length;
          const len = Math.min(base.length - inBase, Math.min(end, prefixEnd) - pos);
          yield base.subarray(inBase, inBase + len);
          pos += len;
        }
        if (end > prefixEnd) yield tail.subarray(Math.max(0, pos - prefixEnd), end - prefixEnd);
      },
    };
  }

  private prefixHash(length: number): Hash {
    let hash = this.prefixes.get(length);
    if (!hash) {
      hash = createHash('sha256');
      for (let pos = 0; pos < length; pos += this.base.length) {
        hash.update(this.base.subarray(0, Math.min(this.base.length, length - pos)));
      }
      this.prefixes.set(length, hash);
    }
    return hash;
  }
}
