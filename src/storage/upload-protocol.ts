// The messages between UploadWriters (upload-writer.ts, main thread) and their worker (upload-worker.ts).

export type WorkerRequest =
  | { op: 'open'; session: string; path: string }
  /**
   * Bytes [start, start + length) of shared slot `slot` (or of `buf` when slot is -1) are the file's bytes at
   * [position, position + length). In a slot, start ≡ position (mod DIRECT_ALIGN).
   */
  | { op: 'update'; session: string; slot: number; buf?: ArrayBuffer; start: number; length: number; position: number }
  | { op: 'digest'; session: string; seq: number }
  | { op: 'drop'; session: string };

export type WorkerReply =
  | { op: 'updated'; session: string; slot: number; buf?: ArrayBuffer; error?: string; errorCode?: string }
  | { op: 'digest'; seq: number; hex: string };

export interface WorkerSetup {
  /** the shared slots: a WebAssembly memory, whose base is page-aligned as O_DIRECT needs (an ArrayBuffer's is not) */
  memory: WebAssembly.Memory;
  slotStride: number;
}

/** Alignment of offsets, lengths and memory for O_DIRECT writes (the page size covers every block size here). */
export const DIRECT_ALIGN = 4096;
