// A file made once and never overwritten, safe when several processes start on one (shared) data directory: the
// key files (token signing, secret box).
import { randomBytes } from 'node:crypto';
import { link, unlink, writeFile } from 'node:fs/promises';

/**
 * Writes `content` to `file` unless it exists: written whole under a temporary name, then hard-linked into place, so
 * of several processes racing, one link wins, none overwrites another's file, and none reads one half-written. Every
 * caller reads `file` afterwards and goes on with the winner's content.
 */
export async function createOnce(file: string, content: string, mode = 0o600): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, content, { mode, flag: 'wx' });
  try {
    await link(tmp, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  } finally {
    await unlink(tmp);
  }
}
