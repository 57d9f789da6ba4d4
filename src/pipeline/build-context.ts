// The build context as the Docker Engine takes it: a tar stream of the context directory, leaving out what
// .dockerignore excludes — except the Dockerfile and .dockerignore themselves, which the engine always needs
// (as the docker CLI does). Files are streamed, never read whole into memory.
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DockerIgnore } from './dockerignore.js';
import { padding, TAR_END, tarHeader, type TarEntry } from './tar.js';

export interface ContextEntry extends TarEntry {
  /** absolute path on disk */
  source: string;
}

/** What goes into the context, in archive order (sorted, parents before children). */
export async function contextEntries(dir: string, dockerfile: string): Promise<ContextEntry[]> {
  let ignore = DockerIgnore.parse('');
  try {
    ignore = DockerIgnore.parse(await readFile(join(dir, '.dockerignore'), 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const always = new Set([dockerfile.replace(/^\.\//, ''), '.dockerignore']);
  const out: ContextEntry[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const source = join(dir, path);
      const st = await lstat(source);
      const excluded = ignore.excludes(path) && !always.has(path);
      const base = { path, source, mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000), size: 0 };
      if (st.isDirectory()) {
        // An excluded directory may still hold files an exception (`!`) brings back.
        if (excluded && !ignore.hasExceptions) continue;
        if (!excluded) out.push({ ...base, type: 'directory' });
        await walk(path);
      } else if (excluded) {
        continue;
      } else if (st.isFile()) {
        out.push({ ...base, type: 'file', size: st.size });
      } else if (st.isSymbolicLink()) {
        out.push({ ...base, type: 'symlink', linkname: await readlink(source) });
      }
      // sockets, FIFOs and devices have no place in a build context
    }
  };
  await walk('');
  return out;
}

/** The context as a tar stream. A file that changes size while it is sent fails the stream. */
export function contextTar(entries: ContextEntry[]): Readable {
  async function* archive(): AsyncGenerator<Buffer> {
    for (const e of entries) {
      yield tarHeader(e);
      if (e.type !== 'file') continue;
      let sent = 0;
      if (e.size > 0) {
        for await (const chunk of createReadStream(e.source, { start: 0, end: e.size - 1 })) {
          sent += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
      }
      if (sent !== e.size) throw new Error(`${e.path} changed while the build context was sent (${sent} of ${e.size} bytes)`);
      yield Buffer.alloc(padding(e.size));
    }
    yield TAR_END;
  }
  return Readable.from(archive());
}
