// `node dist/bench/round-trips.js [--pg] [--requests N]`: database round trips and server CPU per request, for each
// kind of registry request, authenticated and anonymous, on SQLite and (with --pg) on PostgreSQL — the two numbers
// that say what N instances on N machines would carry (docs/benchmarks.md). Both are read from the server's own
// /metrics: wharf_db_queries_total (every statement the metadata store sent) and process_cpu_seconds_total
// (process.cpuUsage), before and after N requests of one kind. CPU per request is the server's own, so the load
// generator's share of the cores does not enter it; other load on the machine still slows it a little (caches).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlobSource } from './blobs.js';
import { Client } from './client.js';
import { authorization, basicAuthorization, type Headers } from './credentials.js';
import { pool } from './load.js';
import { MANIFEST_ACCEPT, makeImage, pushChunked, pushMonolithic, putManifest, type Image } from './oci.js';
import { RawConnection } from './rawhttp.js';
import { killAll, startPostgres, startWharf, type Server } from './registries.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REPO = 'bench/rt';
const TAG = 'latest';
const TAG_COUNT = 100;

const USAGE = `usage: node dist/bench/round-trips.js [--pg] [--requests N] [--connections C] [--runs R]
  --pg           also Wharf with its metadata on PostgreSQL (a cluster of scripts/postgres.sh, or WHARF_BENCH_POSTGRES)
  --requests     requests per kind of small request and run (default 2000; pushes: a tenth, at least 20)
  --connections  keep-alive connections the requests are spread over (default 8)
  --runs         runs per kind and server, alternating the servers' order (default 3); medians are reported`;

interface Options {
  pg: boolean;
  requests: number;
  connections: number;
  runs: number;
}

function parseArgs(argv: string[]): Options {
  const options: Options = { pg: false, requests: 2000, connections: 8, runs: 3 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const number = () => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${arg} takes a positive integer\n${USAGE}`);
      return n;
    };
    if (arg === '--pg') options.pg = true;
    else if (arg === '--requests') options.requests = number();
    else if (arg === '--connections') options.connections = number();
    else if (arg === '--runs') options.runs = number();
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  return options;
}

/** What the server's /metrics says now: statements by name, and its CPU seconds. */
interface Reading {
  statements: Map<string, number>;
  cpuSeconds: number;
}

async function read(url: string): Promise<Reading> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const statements = new Map<string, number>();
  for (const m of text.matchAll(/^wharf_db_queries_total\{[^}]*statement="([^"]+)"[^}]*\} (\d+)$/gm)) statements.set(m[1]!, Number(m[2]));
  const cpu = /^wharf_process_cpu_seconds_total (\S+)$/m.exec(text);
  if (!cpu) throw new Error(`${url}/metrics has no wharf_process_cpu_seconds_total`);
  return { statements, cpuSeconds: Number(cpu[1]) };
}

interface Row {
  kind: string;
  credentials: string;
  /** requests the kind's N operations made (a push is several) */
  requests: number;
  operations: number;
  perOperation: string;
  statements: number;
  byStatement: Map<string, number>;
  cpuSeconds: number;
}

/** A kind of work: `operation(i, connection)` is one unit of it (a request, or a whole blob push). */
interface Kind {
  kind: string;
  credentials: string;
  /** requests per operation */
  requests: number;
  perOperation: string;
  operations: number;
  operation(i: number, connection: RawConnection, client: Client): Promise<void>;
}

/** Runs a kind's operations over `connections` connections (raw ones, and a Client sending `clientAuth` for pushes). */
async function measure(server: Server, kind: Kind, connections: number, clientAuth: Headers): Promise<Row> {
  const conns = Array.from({ length: connections }, () => new RawConnection(new URL(server.url)));
  const client = new Client(server.url, connections, clientAuth);
  try {
    // Warm: JIT, caches, the credential cache, the connections themselves.
    await pool(connections, Array.from({ length: Math.min(50, kind.operations) }, (_, i) => i), (i, w) => kind.operation(-1 - i, conns[w]!, client));
    const before = await read(server.url);
    await pool(connections, Array.from({ length: kind.operations }, (_, i) => i), (i, w) => kind.operation(i, conns[w]!, client));
    const after = await read(server.url);
    const byStatement = new Map<string, number>();
    for (const [name, n] of after.statements) {
      const d = n - (before.statements.get(name) ?? 0);
      if (d > 0) byStatement.set(name, d);
    }
    return {
      kind: kind.kind,
      credentials: kind.credentials,
      requests: kind.requests,
      operations: kind.operations,
      perOperation: kind.perOperation,
      statements: [...byStatement.values()].reduce((a, b) => a + b, 0),
      byStatement,
      cpuSeconds: after.cpuSeconds - before.cpuSeconds,
    };
  } finally {
    for (const c of conns) c.close();
    client.close();
  }
}

function expect(status: number, want: number, what: string): void {
  if (status !== want) throw new Error(`${what}: HTTP ${status}, expected ${want}`);
}

function kinds(server: Server, options: Options, image: Image, source: BlobSource, auth: { bearerPull: Headers; bearerPush: Headers; basic: Headers }): Kind[] {
  const n = options.requests;
  const pushes = Math.max(20, Math.round(n / 10));
  const manifest = `/v2/${REPO}/manifests/${TAG}`;
  const byDigest = `/v2/${REPO}/manifests/${image.digest}`;
  const layer = image.layers[0]!;
  const blob = `/v2/${REPO}/blobs/${layer.digest}`;
  const accept = { Accept: MANIFEST_ACCEPT };
  const request = (kind: string, credentials: string, method: string, path: string, headers: Headers, status = 200): Kind => ({
    kind,
    credentials,
    requests: 1,
    perOperation: 'request',
    operations: n,
    async operation(_, connection) {
      expect((await connection.request(method, path, headers, method === 'GET')).status, status, `${method} ${path}`);
    },
  });
  const reads: [string, string, string, Headers][] = [
    ['manifest GET by tag', 'GET', manifest, accept],
    ['manifest HEAD by tag', 'HEAD', manifest, accept],
    ['manifest GET by digest', 'GET', byDigest, accept],
    [`tags/list (${TAG_COUNT} tags)`, 'GET', `/v2/${REPO}/tags/list`, {}],
    ['blob HEAD', 'HEAD', blob, {}],
    [`blob GET (${layer.size / 1024} KiB)`, 'GET', blob, {}],
  ];
  const out: Kind[] = [];
  for (const [kind, method, path, headers] of reads) {
    out.push(request(kind, 'anonymous', method, path, headers));
    out.push(request(kind, 'Bearer', method, path, { ...headers, ...auth.bearerPull }));
    if (method === 'HEAD' && kind.startsWith('manifest')) out.push(request(kind, 'Basic', method, path, { ...headers, ...auth.basic }));
  }
  out.push(request('token (Basic → Bearer, pull scope)', 'Basic', 'GET', `/token?service=wharf&scope=${encodeURIComponent(`repository:${REPO}:pull`)}`, auth.basic));
  const size = 1 << 20;
  let run = 0;
  const label = () => `${server.name}/${process.pid}/${run++}`;
  out.push({
    kind: 'blob push, monolithic 1 MiB (POST + PUT)',
    credentials: 'Bearer',
    requests: 2,
    perOperation: 'blob',
    operations: pushes,
    operation: (_, __, client) => pushMonolithic(client, REPO, source.blob(size, `mono/${label()}`)),
  });
  out.push({
    kind: 'blob push, chunked 1 MiB (POST + 4 PATCH + PUT)',
    credentials: 'Bearer',
    requests: 6,
    perOperation: 'blob',
    operations: pushes,
    operation: (_, __, client) => pushChunked(client, REPO, source.blob(size, `chunked/${label()}`), size / 4),
  });
  out.push({
    kind: 'manifest PUT by tag (new tag)',
    credentials: 'Bearer',
    requests: 1,
    perOperation: 'request',
    operations: pushes,
    operation: (_, __, client) => putManifest(client, REPO, `push-${label().replace(/\W/g, '-')}`, image.manifest),
  });
  return out;
}

/** A server seeded with the bench image, and the kinds of work to measure on it. */
interface Prepared {
  name: string;
  server: Server;
  kinds: Kind[];
  bearerPush: Headers;
}

async function prepare(name: string, server: Server, options: Options, source: BlobSource): Promise<Prepared> {
  const login = server.login!;
  const basic = basicAuthorization(login);
  const seed = new Client(server.url, 8, basic);
  const image = makeImage([source.blob(64 * 1024, 'rt/layer')]);
  try {
    await pool(2, [image.config, ...image.layers], (blob) => pushMonolithic(seed, REPO, blob));
    await pool(8, [TAG, ...Array.from({ length: TAG_COUNT - 1 }, (_, i) => `1.0.${i}`)], (tag) => putManifest(seed, REPO, tag, image.manifest));
  } finally {
    seed.close();
  }
  const bearerPull = await authorization(server.url, login, 'bearer', REPO, ['pull']);
  const bearerPush = await authorization(server.url, login, 'bearer', REPO, ['pull', 'push']);
  return { name, server, kinds: kinds(server, options, image, source, { bearerPull, bearerPush, basic }), bearerPush };
}

/** Kind i on one server; pushes run through the bench's HTTP client with the push token, 4 at a time (as docker pushes layers). */
function measureKind(p: Prepared, i: number, options: Options): Promise<Row> {
  const kind = p.kinds[i]!;
  const pushing = kind.perOperation === 'blob' || kind.kind.startsWith('manifest PUT');
  return measure(p.server, kind, pushing ? Math.min(4, options.connections) : options.connections, p.bearerPush);
}

/** The run with the median CPU per operation (its statements too: they hardly vary between runs). */
function medianRow(rows: Row[]): Row {
  const sorted = [...rows].sort((a, b) => a.cpuSeconds / a.operations - b.cpuSeconds / b.operations);
  return sorted[(sorted.length - 1) >> 1]!;
}

function perOp(row: Row): { statements: number; cpuUs: number } {
  return { statements: row.statements / row.operations, cpuUs: (row.cpuSeconds / row.operations) * 1e6 };
}

function breakdown(row: Row): string {
  return [...row.byStatement]
    .sort((a, b) => b[1] - a[1])
    .map(([name, n]) => `${name} ${fmt(n / row.operations)}`)
    .join(', ');
}

function fmt(v: number): string {
  return v === 0 ? '0' : v < 0.1 ? v.toFixed(3) : v < 10 ? v.toFixed(2).replace(/\.?0+$/, '') : v.toFixed(1);
}

function describe(row: Row): string {
  const { statements, cpuUs } = perOp(row);
  return `${row.kind} [${row.credentials}]: ${fmt(statements)} statements/${row.perOperation} (${breakdown(row) || 'none'}), ${cpuUs.toFixed(0)} µs CPU/${row.perOperation}`;
}

function table(results: Map<string, Row[]>): string {
  const servers = [...results.keys()];
  const lines = [
    `| request | credentials | ${servers.map((s) => `${s}: round trips`).join(' | ')} | ${servers.map((s) => `${s}: server CPU`).join(' | ')} | statements (${servers.at(-1)}) |`,
    `| --- | --- | ${servers.map(() => '---:').join(' | ')} | ${servers.map(() => '---:').join(' | ')} | --- |`,
  ];
  const first = results.get(servers[0]!)!;
  for (let i = 0; i < first.length; i++) {
    const rows = servers.map((s) => results.get(s)![i]!);
    const row = rows[0]!;
    lines.push(
      `| ${row.kind} | ${row.credentials} | ${rows.map((r) => `${fmt(perOp(r).statements)} per ${r.perOperation}`).join(' | ')} | ${rows.map((r) => `${perOp(r).cpuUs.toFixed(0)} µs`).join(' | ')} | ${breakdown(rows.at(-1)!) || '—'} |`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const root = mkdtempSync(join(tmpdir(), 'wharf-round-trips-'));
  const servers: Server[] = [];
  const stoppers: (() => Promise<void>)[] = [];
  const load = loadavg()[0]!;
  const source = new BlobSource(4 << 20);
  try {
    const prepared: Prepared[] = [];
    for (const name of options.pg ? ['SQLite', 'PostgreSQL'] : ['SQLite']) {
      const dir = join(root, name);
      mkdirSync(dir);
      let db: string | undefined;
      if (name === 'PostgreSQL') {
        const postgres = await startPostgres(REPO_ROOT, dir, 'round-trips');
        stoppers.push(postgres.stop);
        db = postgres.url;
      }
      const server = await startWharf(REPO_ROOT, dir, [], db);
      servers.push(server);
      prepared.push(await prepare(name, server, options, source));
    }
    // Both servers run side by side; each kind is measured on one, then the other, the order swapped every run, so
    // the machine's other load falls on both alike.
    const results = new Map<string, Row[]>(prepared.map((p) => [p.name, []]));
    for (let i = 0; i < prepared[0]!.kinds.length; i++) {
      const runs = new Map<string, Row[]>(prepared.map((p) => [p.name, []]));
      for (let run = 0; run < options.runs; run++) {
        for (const p of run % 2 ? [...prepared].reverse() : prepared) {
          const row = await measureKind(p, i, options);
          runs.get(p.name)!.push(row);
          process.stderr.write(`${p.name} run ${run + 1}: ${describe(row)}\n`);
        }
      }
      for (const p of prepared) results.get(p.name)!.push(medianRow(runs.get(p.name)!));
    }
    console.log(
      [
        `\`node dist/bench/round-trips.js ${process.argv.slice(2).join(' ')}\` — ${options.requests} requests per kind and run over ${options.connections} connections, medians of ${options.runs} alternating runs (pushes: ${Math.max(20, Math.round(options.requests / 10))} blobs), load average ${load.toFixed(2)} at the start; round trips are statements sent to the metadata database (wharf_db_queries_total), CPU is the server's process.cpuUsage (process_cpu_seconds_total), both per request or per pushed blob.`,
        '',
        table(results),
      ].join('\n'),
    );
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    for (const stop of stoppers) await stop();
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  killAll();
  process.stderr.write(`round-trips: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
