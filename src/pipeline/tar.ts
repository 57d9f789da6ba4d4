// Tar headers (POSIX ustar, with a PAX extended header for names, link targets or sizes ustar cannot hold),
// enough to send a build context to the Docker Engine. Pure.

export const BLOCK = 512;

export interface TarEntry {
  /** `/`-separated, relative; directories without the trailing slash */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  /** permission bits */
  mode: number;
  size: number;
  /** seconds since the epoch */
  mtime: number;
  linkname?: string;
}

const TYPE_FLAG = { file: '0', symlink: '2', directory: '5' } as const;
const MAX_OCTAL_SIZE = 8 ** 11 - 1;

/** The header block(s) of an entry: a PAX header first when ustar fields overflow. */
export function tarHeader(entry: TarEntry): Buffer {
  const name = entry.type === 'directory' ? `${entry.path}/` : entry.path;
  const size = entry.type === 'file' ? entry.size : 0;
  const pax: Record<string, string> = {};
  if (Buffer.byteLength(name) > 100) pax.path = name;
  if (entry.linkname !== undefined && Buffer.byteLength(entry.linkname) > 100) pax.linkpath = entry.linkname;
  if (size > MAX_OCTAL_SIZE) pax.size = String(size);
  const main = ustar({ name, size: size > MAX_OCTAL_SIZE ? 0 : size, mode: entry.mode, mtime: entry.mtime, type: TYPE_FLAG[entry.type], linkname: entry.linkname ?? '' });
  if (Object.keys(pax).length === 0) return main;
  const body = Buffer.from(Object.entries(pax).map(([k, v]) => paxRecord(k, v)).join(''));
  const paxHeader = ustar({ name: `PaxHeaders/${name}`, size: body.length, mode: 0o644, mtime: entry.mtime, type: 'x', linkname: '' });
  return Buffer.concat([paxHeader, body, Buffer.alloc(padding(body.length)), main]);
}

/** Zero bytes that round a body of `size` bytes up to whole blocks. */
export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Two zero blocks end an archive. */
export const TAR_END = Buffer.alloc(2 * BLOCK);

/** "<len> <key>=<value>\n" where len counts the whole record, its own digits included. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  const restLength = Buffer.byteLength(rest);
  let len = restLength + 1;
  while (String(len).length + restLength !== len) len = String(len).length + restLength;
  return `${len}${rest}`;
}

function ustar(h: { name: string; size: number; mode: number; mtime: number; type: string; linkname: string }): Buffer {
  const b = Buffer.alloc(BLOCK);
  writeString(b, 0, 100, h.name);
  writeOctal(b, 100, 8, h.mode & 0o7777);
  writeOctal(b, 108, 8, 0);
  writeOctal(b, 116, 8, 0);
  writeOctal(b, 124, 12, h.size);
  writeOctal(b, 136, 12, Math.max(0, Math.floor(h.mtime)));
  b.write(h.type, 156, 'latin1');
  writeString(b, 157, 100, h.linkname);
  b.write('ustar\u000000', 257, 'latin1');
  writeString(b, 265, 32, 'root');
  writeString(b, 297, 32, 'root');
  // The checksum is computed with its own field read as spaces.
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of b) sum += byte;
  b.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 'latin1');
  return b;
}

/** Truncated to the field: an overflowing value travels in the PAX header instead. */
function writeString(b: Buffer, at: number, length: number, value: string): void {
  Buffer.from(value).copy(b, at, 0, Math.min(length, Buffer.byteLength(value)));
}

function writeOctal(b: Buffer, at: number, length: number, value: number): void {
  b.write(`${value.toString(8).padStart(length - 1, '0')}\u0000`, at, 'latin1');
}
