// How the CLI talks to a Wharf server: which server (--server, WHARF_SERVER, or the last `wharf login`),
// which credentials (WHARF_TOKEN, or those saved by `wharf login`, mode 0600), and plain-line errors.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError } from './cli-error.js';

export interface Credentials {
  username: string;
  /** the secret of the token `wharf login` got from the server (never the password) */
  token?: string;
  /** its name, so that `wharf logout` can revoke it */
  tokenName?: string;
  /** a password: only given for one call (WHARF_TOKEN, -u with --password-stdin), or left by an older wharf login */
  password?: string;
}

interface CredentialsFile {
  current?: string;
  servers: Record<string, Credentials>;
}

/** The management API path of an app: a repository name's slashes stay path separators, each part encoded. */
export function appPath(app: string): string {
  return `/api/v1/apps/${app.split('/').map(encodeURIComponent).join('/')}`;
}

export function configDir(): string {
  if (process.env.WHARF_CONFIG_DIR) return process.env.WHARF_CONFIG_DIR;
  return join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'wharf');
}

function credentialsPath(): string {
  return join(configDir(), 'credentials.json');
}

function readCredentials(): CredentialsFile {
  try {
    return JSON.parse(readFileSync(credentialsPath(), 'utf8')) as CredentialsFile;
  } catch {
    return { servers: {} };
  }
}

export function normalizeServer(url: string): string {
  const withScheme = /^https?:\/\//.test(url) ? url : `http://${url}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new CliError(`invalid server URL ${JSON.stringify(url)}`, 2);
  }
  return `${u.protocol}//${u.host}`;
}

export function saveCredentials(server: string, creds: Credentials): void {
  const file = readCredentials();
  file.servers[server] = creds;
  file.current = server;
  mkdirSync(configDir(), { recursive: true, mode: 0o700 });
  writeFileSync(credentialsPath(), JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
  chmodSync(credentialsPath(), 0o600);
}

export function savedCredentials(server: string): Credentials | undefined {
  return readCredentials().servers[server];
}

export function removeCredentials(server: string): boolean {
  const file = readCredentials();
  if (!file.servers[server]) return false;
  delete file.servers[server];
  if (file.current === server) delete file.current;
  writeFileSync(credentialsPath(), JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
  return true;
}

/** A non-2xx answer of the server, with its status (e.g. 404: nothing there). */
export class ApiError extends CliError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export class ApiClient {
  constructor(
    readonly server: string,
    readonly credentials: Credentials | undefined,
  ) {}

  authorization(): string | undefined {
    const secret = this.credentials?.token ?? this.credentials?.password;
    if (!this.credentials || secret === undefined) return undefined;
    return 'Basic ' + Buffer.from(`${this.credentials.username}:${secret}`).toString('base64');
  }

  private async send(method: string, path: string, body: unknown, accept: string): Promise<Answer> {
    const headers: Record<string, string> = { Accept: accept };
    const auth = this.authorization();
    if (auth) headers.Authorization = auth;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Answer;
    try {
      res = await send(this.server + path, method, headers, body === undefined ? undefined : JSON.stringify(body));
    } catch (e) {
      throw new CliError(`cannot connect to ${this.server}: ${connectionFailure(e)}`);
    }
    if (!res.ok) throw new ApiError(errorMessage(res.status, await res.text()), res.status);
    return res;
  }

  /** JSON request; a non-2xx answer becomes a CliError carrying the server's message. */
  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const text = await (await this.send(method, path, body, 'application/json')).text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Every item of a cursor-paginated list (`{items, next}`), read 500 at a time. */
  async items<T>(path: string): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | null = null;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const page: { items: T[]; next: string | null } = await this.request('GET', `${path}${sep}limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      items.push(...page.items);
      cursor = page.next;
    } while (cursor);
    return items;
  }

  /**
   * Every row of a list the server answers as a JSON array page by page: follows its `Link: rel="next"`
   * header (the lists of releases, tag history, deployments, deliveries, GC runs) to the end.
   */
  async all<T>(path: string): Promise<T[]> {
    const rows: T[] = [];
    let next: string | null = path;
    for (let pages = 0; next !== null; pages++) {
      if (pages >= 10_000) throw new CliError(`${path}: the server kept answering more pages`);
      const res: Answer = await this.send('GET', next, undefined, 'application/json');
      rows.push(...((await res.json()) as T[]));
      next = nextLink(res.header('link') ?? null);
    }
    return rows;
  }

  /**
   * A request whose answer may be a stream of JSON lines (a deployment's progress): each line goes to
   * `onLine` as it arrives. A plain JSON answer is handed to `onLine` once.
   */
  async stream(method: string, path: string, body: unknown, onLine: (value: any) => void): Promise<void> {
    for await (const line of this.lines(method, path, body)) onLine(line);
  }

  /**
   * The same answer pulled line by line, so that one caller can read the first lines (a release) and hand
   * the rest (the deployment that follows it) to another. Stopping early closes the connection.
   */
  async *lines(method: string, path: string, body: unknown): AsyncGenerator<any, void, undefined> {
    const res = await this.send(method, path, body, 'application/x-ndjson, application/json');
    if (!(res.header('content-type') ?? '').startsWith('application/x-ndjson')) {
      const text = await res.text();
      if (text) yield JSON.parse(text);
      return;
    }
    let buffered = '';
    const decoder = new TextDecoder();
    for await (const chunk of res.body) {
      buffered += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) yield JSON.parse(line);
      }
    }
    if (buffered.trim()) yield JSON.parse(buffered);
  }
}

/** A server's answer, read once: its body as text, JSON, or chunk by chunk as it arrives. */
export interface Answer {
  status: number;
  ok: boolean;
  header(name: string): string | undefined;
  body: AsyncIterable<Buffer>;
  text(): Promise<string>;
  json(): Promise<unknown>;
}

/**
 * One HTTP request over node:http(s) rather than fetch(): a CLI command makes one or two requests and exits, and
 * fetch's HTTP client (undici, its parser compiled to WebAssembly) costs more to load than the request itself —
 * `wharf user list --server` on Node 20: ~85 CPU ms more, on Node 24 ~40 (docs/benchmarks.md). The same trust
 * store applies (Node's CAs plus NODE_EXTRA_CA_CERTS); redirects are not followed (the API answers none).
 */
export function send(url: string, method: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  const u = new URL(url);
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(u, { method, headers: body === undefined ? headers : { ...headers, 'Content-Length': String(Buffer.byteLength(body)) } }, (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      const text = async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of res) chunks.push(chunk as Buffer);
        return Buffer.concat(chunks).toString('utf8');
      };
      resolve({
        status,
        ok: status >= 200 && status < 300,
        header: (name) => {
          const v = res.headers[name.toLowerCase()];
          return Array.isArray(v) ? v.join(', ') : v;
        },
        body: res,
        text,
        json: async () => JSON.parse(await text()) as unknown,
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Why a request never got an answer, in words: "connection refused", not an errno. */
export function connectionFailure(e: unknown): string {
  const err = e as Error & { code?: string; cause?: Error & { code?: string } };
  const words: Record<string, string> = {
    ECONNREFUSED: 'connection refused (is wharf serve running there?)',
    ENOTFOUND: 'no such host',
    EAI_AGAIN: 'the host name does not resolve',
    ETIMEDOUT: 'timed out',
    ECONNRESET: 'the connection was reset',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
  };
  const code = err.code ?? err.cause?.code;
  if (code && words[code]) return words[code]!;
  const message = err.cause?.message ?? err.message;
  // Node's TLS check refused the server's certificate: say how to trust a private CA.
  if (code && /CERT|SELF_SIGNED|LEAF_SIGNATURE|ISSUER/.test(code)) return `${message} (a private CA: NODE_EXTRA_CA_CERTS=ca.crt wharf …)`;
  return message;
}

function errorMessage(status: number, text: string): string {
  try {
    const body = JSON.parse(text) as { errors?: { code: string; message: string }[] };
    const e = body.errors?.[0];
    if (e) {
      if (status === 401) return `not logged in or credentials refused (${e.message}); run 'wharf login'`;
      return e.message;
    }
  } catch {
    // not JSON: fall through
  }
  return `server answered ${status}${text ? `: ${text.slice(0, 200)}` : ''}`;
}

/** The client for a command: --server beats WHARF_SERVER beats the last login. */
export function clientFor(serverFlag?: string, override?: Credentials): ApiClient {
  const file = readCredentials();
  const chosen = serverFlag ?? process.env.WHARF_SERVER ?? file.current;
  if (!chosen) throw new CliError("no server: pass --server URL, set WHARF_SERVER, or run 'wharf login URL'", 2);
  const server = normalizeServer(chosen);
  const token = process.env.WHARF_TOKEN;
  const creds = override ?? (token ? { username: 'token', password: token } : file.servers[server]);
  return new ApiClient(server, creds);
}

/** The target of an RFC 8288 `rel="next"` link: a path on the same server (the hub writes only those). */
export function nextLink(header: string | null): string | null {
  const m = header === null ? null : /<(\/[^>]*)>\s*;\s*rel="?next"?/.exec(header);
  return m ? m[1]! : null;
}
