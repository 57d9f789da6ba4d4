// Recognises "the disk is full" among storage and database failures, wherever it was raised.

/** errno codes of a write refused for lack of space (or of quota), SQLite's own, and PostgreSQL's disk_full (SQLSTATE 53100). */
const FULL = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL', '53100']);

/** Whether `err` (or an error it wraps) says the storage has no space left. */
export function isStorageFull(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && FULL.has(code)) return true;
  }
  return false;
}
