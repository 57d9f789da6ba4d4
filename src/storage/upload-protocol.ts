// The messages between UploadWriters (upload-writer.ts, main thread) and their worker (upload-worker.ts).

export type WorkerRequest =
  | { op: 'open'; session: string; path: string }
  /** The first `length` bytes of `buf` are the file's bytes at [position, position + length). */
  | { op: 'update'; session: string; buf: ArrayBuffer; length: number; position: number }
  | { op: 'digest'; session: string; seq: number }
  | { op: 'drop'; session: string };

export type WorkerReply =
  | { op: 'updated'; session: string; buf: ArrayBuffer; error?: string }
  | { op: 'digest'; seq: number; hex: string };

/** Alignment of offsets, lengths and memory for O_DIRECT writes (the page size covers every block size here). */
export const DIRECT_ALIGN = 4096;
