// Freeing a request body's chunks as soon as they are copied, instead of at V8's next collection.
//
// Node's HTTP parser allocates a fresh buffer for every 64 KiB of a body, and V8 frees those only when a collection
// finds them dead. During a 1 GiB push that left 30–70 MiB of spent chunks in the C heap (more on Node 24 than on
// Node 20), the largest part of the process's peak, and every new chunk landed on memory the CPU had not touched
// lately. ArrayBuffer.prototype.transfer(0) detaches a buffer and frees its memory at once, so the next chunk
// reuses the same, still cached, memory: on Node 24 a 1 GiB push went from 330–420 MiB/s at a 190 MiB peak to
// 590–760 MiB/s at 130 MiB.
//
// transfer() is ES2024: Node 22 and later have it. Node 20's V8 has it behind --harmony-rab-gsab-transfer, and only
// a context created after the flag is set gets it; a builtin works on any realm's ArrayBuffer, so the function is
// taken from a fresh context, which it keeps alive. (Node 20's detachArrayBuffer binding does not free until a
// collection either.)
import v8 from 'node:v8';
import vm from 'node:vm';

type Transfer = (this: ArrayBuffer, length: number) => ArrayBuffer;

const transfer: Transfer | undefined = (() => {
  const own = (ArrayBuffer.prototype as { transfer?: Transfer }).transfer;
  if (typeof own === 'function') return own;
  try {
    v8.setFlagsFromString('--harmony-rab-gsab-transfer');
    const borrowed = vm.runInNewContext('ArrayBuffer.prototype.transfer') as unknown;
    if (typeof borrowed !== 'function') return undefined;
    // A trial: the old buffer must come out detached, or the function is not what it claims to be.
    const trial = new ArrayBuffer(8);
    (borrowed as Transfer).call(trial, 0);
    return trial.byteLength === 0 ? (borrowed as Transfer) : undefined;
  } catch {
    return undefined;
  }
})();

/** Whether releaseBuffer() frees anything here (false: chunks wait for V8's collections, as usual). */
export const canReleaseBuffers = transfer !== undefined;

/**
 * Frees the memory under `chunk` now. The chunk must be the whole of its ArrayBuffer and nobody may use it, or any
 * other view of that memory, afterwards: they all read as empty from then on.
 */
export function releaseBuffer(chunk: Uint8Array): void {
  if (transfer && chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength && !(chunk.buffer instanceof SharedArrayBuffer)) {
    transfer.call(chunk.buffer as ArrayBuffer, 0);
  }
}

const OWN_CHUNKS = Symbol('wharf.ownChunks');
type Marked = { [OWN_CHUNKS]?: true };

/**
 * Marks a stream whose chunks nobody else holds: a request body, whose chunks the HTTP parser made for its one
 * reader. A blob store frees such chunks once copied; a stream of a caller's own buffers must keep them.
 */
export function withOwnChunks<T extends object>(stream: T): T {
  (stream as Marked)[OWN_CHUNKS] = true;
  return stream;
}

/** Whether `stream` was marked by withOwnChunks. */
export function hasOwnChunks(stream: object): boolean {
  return (stream as Marked)[OWN_CHUNKS] === true;
}
