// The HTTP client that pushes and pulls blobs: keep-alive connections, request bodies streamed from shared buffers, response bodies counted and dropped.
import http from 'node:http';

const REQUEST_TIMEOUT_MS = 120_000;

export interface RequestBody {
  length: number;
  chunks: Iterable<Buffer>;
}

export interface RequestOptions {
  headers?: http.OutgoingHttpHeaders;
  body?: RequestBody;
  /** Keep the response body (for small JSON answers); otherwise it is only counted. */
  keepBody?: boolean;
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Response body bytes received. */
  bytes: number;
  body?: Buffer;
}

export class Client {
  private readonly agent: http.Agent;

  constructor(
    readonly baseUrl: string,
    maxSockets = Infinity,
    /** sent with every request (the Authorization header) */
    private readonly defaultHeaders: http.OutgoingHttpHeaders = {},
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets, scheduling: 'lifo' });
  }

  close(): void {
    this.agent.destroy();
  }

  /** `target` is a path, or an absolute URL such as an upload's Location. */
  request(method: string, target: string, options: RequestOptions = {}): Promise<Response> {
    const url = new URL(target, this.baseUrl);
    const headers: http.OutgoingHttpHeaders = { ...this.defaultHeaders, ...options.headers };
    if (options.body) headers['content-length'] = options.body.length;
    else if (method !== 'GET' && method !== 'HEAD' && method !== 'DELETE') headers['content-length'] = 0;
    return new Promise((resolve, reject) => {
      const req = http.request(url, { method, headers, agent: this.agent });
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`${method} ${url.pathname} timed out`)));
      req.once('error', reject);
      req.once('response', (res) => {
        let bytes = 0;
        const kept: Buffer[] = [];
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (options.keepBody) kept.push(chunk);
        });
        res.once('error', reject);
        res.once('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            bytes,
            body: options.keepBody ? Buffer.concat(kept) : undefined,
          }),
        );
      });
      if (options.body) writeBody(req, options.body.chunks).catch((err: Error) => req.destroy(err));
      else req.end();
    });
  }
}

async function writeBody(req: http.ClientRequest, chunks: Iterable<Buffer>): Promise<void> {
  for (const chunk of chunks) {
    if (req.destroyed) return;
    if (!req.write(chunk)) await drainedOrClosed(req);
  }
  req.end();
}

function drainedOrClosed(req: http.ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      req.off('drain', done);
      req.off('close', done);
      resolve();
    };
    req.on('drain', done);
    req.on('close', done);
  });
}
