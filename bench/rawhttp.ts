// A lean HTTP/1.1 client for reading responses fast: one keep-alive socket per connection, reads land in one reusable
// buffer (socket onread) and bodies are counted, not kept. Node's http client spends about a core to pull 700 MiB/s.
import { connect, type Socket } from 'node:net';

const READ_BUFFER = 256 * 1024;
const HEADERS_END = Buffer.from('\r\n\r\n');
const TIMEOUT_MS = 60_000;

export interface RawResponse {
  status: number;
  headers: Map<string, string>;
  /** Body bytes received (none for HEAD). */
  bytes: number;
  body?: Buffer;
}

interface Pending {
  method: string;
  keepBody: boolean;
  resolve(response: RawResponse): void;
  reject(err: Error): void;
}

/** One keep-alive connection carrying one request at a time. */
export class RawConnection {
  private readonly socket: Socket;
  private readonly ready: Promise<void>;
  private pending?: Pending;
  private head: Buffer[] = [];
  private response?: RawResponse;
  private kept: Buffer[] = [];
  private remaining = 0;
  /** Body bytes so far of a chunked response (small JSON answers only), decoded once complete. */
  private chunked?: Buffer;
  private failure?: Error;

  constructor(private readonly url: URL) {
    this.socket = connect({
      host: url.hostname,
      port: Number(url.port),
      noDelay: true,
      onread: { buffer: Buffer.allocUnsafe(READ_BUFFER), callback: (n: number, buf: Buffer) => this.onRead(buf, n) },
    });
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
    this.ready.catch(() => undefined); // a connection never used must not fail the process; request() rethrows

    this.socket.setTimeout(TIMEOUT_MS, () => this.socket.destroy(new Error(`no answer from ${url.host} in ${TIMEOUT_MS / 1000} s`)));
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => this.fail(new Error(`${url.host} closed the connection`)));
  }

  async request(method: string, path: string, headers: Record<string, string> = {}, keepBody = false): Promise<RawResponse> {
    await this.ready;
    if (this.failure) throw this.failure;
    if (this.pending) throw new Error('one request at a time on a RawConnection');
    const lines = [`${method} ${path} HTTP/1.1`, `Host: ${this.url.host}`];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    return new Promise((resolve, reject) => {
      this.pending = { method, keepBody, resolve, reject };
      this.socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    });
  }

  close(): void {
    this.socket.removeAllListeners('close');
    this.socket.destroy();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(err);
  }

  // Runs synchronously on every read; `buf` is overwritten by the next one, so only the header bytes are copied.
  private onRead(buf: Buffer, n: number): boolean {
    let offset = 0;
    while (offset < n) {
      if (!this.pending) {
        this.socket.destroy(new Error('response bytes with no request'));
        return false;
      }
      if (!this.response) {
        const start = offset;
        const previous = this.head.reduce((sum, part) => sum + part.length, 0);
        const joined = previous ? Buffer.concat([...this.head, buf.subarray(start, n)]) : buf.subarray(start, n);
        const end = joined.indexOf(HEADERS_END);
        if (end < 0) {
          this.head.push(Buffer.from(buf.subarray(start, n)));
          return true;
        }
        this.head = [];
        try {
          this.response = this.parseHead(joined.subarray(0, end).toString('latin1'));
        } catch (err) {
          this.socket.destroy(err as Error);
          return false;
        }
        offset = start + end + HEADERS_END.length - previous;
        if (this.remaining === 0 && !this.chunked) this.complete();
        continue;
      }
      if (this.chunked) {
        this.chunked = Buffer.concat([this.chunked, buf.subarray(offset, n)]);
        let decoded: Buffer | undefined;
        try {
          decoded = decodeChunked(this.chunked);
        } catch (err) {
          this.socket.destroy(err as Error);
          return false;
        }
        if (decoded) {
          this.chunked = undefined;
          this.response.bytes = decoded.length;
          if (this.pending.keepBody) this.kept.push(decoded);
          this.complete();
        }
        return true;
      }
      const take = Math.min(this.remaining, n - offset);
      this.response.bytes += take;
      if (this.pending.keepBody) this.kept.push(Buffer.from(buf.subarray(offset, offset + take)));
      this.remaining -= take;
      offset += take;
      if (this.remaining === 0) this.complete();
    }
    return true;
  }

  private parseHead(text: string): RawResponse {
    const [statusLine, ...lines] = text.split('\r\n');
    const status = Number(statusLine.split(' ')[1]);
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const bodyless = this.pending?.method === 'HEAD' || status === 204 || status === 304;
    this.remaining = 0;
    if (bodyless) return { status, headers, bytes: 0 };
    if (headers.get('transfer-encoding')?.toLowerCase() === 'chunked') this.chunked = Buffer.alloc(0);
    else if (headers.has('content-length')) this.remaining = Number(headers.get('content-length'));
    else throw new Error(`response with neither Content-Length nor chunked encoding (status ${status})`);
    return { status, headers, bytes: 0 };
  }

  private complete(): void {
    const response = this.response as RawResponse;
    const pending = this.pending as Pending;
    if (pending.keepBody) response.body = Buffer.concat(this.kept);
    this.response = undefined;
    this.pending = undefined;
    this.kept = [];
    pending.resolve(response);
  }
}

const CRLF = Buffer.from('\r\n');
const MAX_CHUNKED = 16 * 1024 * 1024;

/** The body of a complete chunked message (trailers skipped), or undefined while more bytes are due. */
function decodeChunked(message: Buffer): Buffer | undefined {
  if (message.length > MAX_CHUNKED) throw new Error('chunked response over 16 MiB: the raw client reads those only for small answers');
  const parts: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const lineEnd = message.indexOf(CRLF, pos);
    if (lineEnd < 0) return undefined;
    const size = parseInt(message.toString('latin1', pos, lineEnd).split(';')[0], 16);
    if (Number.isNaN(size)) throw new Error('bad chunk size in a chunked response');
    pos = lineEnd + 2;
    if (size === 0) {
      for (;;) {
        const end = message.indexOf(CRLF, pos);
        if (end < 0) return undefined;
        if (end === pos) {
          if (end + 2 !== message.length) throw new Error('bytes after the end of a chunked response');
          return Buffer.concat(parts);
        }
        pos = end + 2;
      }
    }
    if (message.length < pos + size + 2) return undefined;
    parts.push(message.subarray(pos, pos + size));
    pos += size + 2;
  }
}
