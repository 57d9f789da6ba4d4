// What authentication costs on the hottest path: manifest GETs by tag under wrk, against a server with
// auth off and one with auth on — anonymous (an anonymousPull repository), Bearer token, HTTP Basic.
// The machine this runs on may be shared, so the cases alternate in short runs, in rotating order, many
// times, and each auth-on run is compared with the auth-off run next to it (the median of those ratios is
// reported); besides req/s, the server's CPU time per request, which neighbours skew less.
// Run: npm run build && node dist/bench/auth-overhead.js [seconds per run] [connections] [rounds]
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cpuSeconds } from './procstat.js';
import { runWrk, writeWrkScript } from './wrk.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PASSWORD = 'bench-admin-password';
const BASIC = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';
const seconds = Number(process.argv[2] ?? 3);
const connections = Number(process.argv[3] ?? 32);
const rounds = Number(process.argv[4] ?? 15);

const digest = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Server {
  url: string;
  proc: ChildProcess;
}

async function startServer(dir: string, authOn: boolean): Promise<Server> {
  await mkdir(dir, { recursive: true });
  const config = join(dir, 'wharf.yaml');
  await writeFile(config, `auth:\n  enabled: ${authOn}\n  anonymousPull: ["public/*"]\n`);
  const proc = spawn(process.execPath, ['bin/wharf.js', 'serve', '--listen', '127.0.0.1:0', '--data', join(dir, 'data'), '--config', config], {
    cwd: ROOT,
    env: { ...process.env, WHARF_ADMIN_PASSWORD: PASSWORD },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`wharf exited ${code}`)));
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (line.includes('"listening"')) resolve((JSON.parse(line) as { url: string }).url);
    });
  });
  return { url, proc };
}

async function push(url: string, repo: string): Promise<void> {
  const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
  const layer = Buffer.from('bench layer');
  for (const blob of [config, layer]) {
    const res = await fetch(`${url}/v2/${repo}/blobs/uploads/?digest=${digest(blob)}`, { method: 'POST', body: new Uint8Array(blob), headers: { authorization: BASIC } });
    if (res.status !== 201) throw new Error(`blob push: ${res.status} ${await res.text()}`);
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: ACCEPT,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digest(config), size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digest(layer), size: layer.length }],
  });
  const res = await fetch(`${url}/v2/${repo}/manifests/v1`, { method: 'PUT', body: manifest, headers: { authorization: BASIC, 'content-type': ACCEPT } });
  if (res.status !== 201) throw new Error(`manifest push: ${res.status} ${await res.text()}`);
}

async function bearer(url: string, repo: string): Promise<string> {
  const res = await fetch(`${url}/token?service=wharf&scope=repository:${repo}:pull`, { headers: { authorization: BASIC } });
  return `Bearer ${((await res.json()) as { token: string }).token}`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

interface Run {
  rps: number;
  p99: number;
  cpuUs: number;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-bench-auth-'));
  const script = writeWrkScript(dir);
  const servers: Server[] = [];
  try {
    const off = await startServer(join(dir, 'off'), false);
    servers.push(off);
    const on = await startServer(join(dir, 'on'), true);
    servers.push(on);
    await push(off.url, 'public/app');
    await push(on.url, 'public/app');
    const cases: [string, Server, Record<string, string>][] = [
      ['auth off', off, {}],
      ['auth on, anonymous (anonymousPull)', on, {}],
      ['auth on, Bearer token', on, { Authorization: await bearer(on.url, 'public/app') }],
      ['auth on, Basic', on, { Authorization: BASIC }],
    ];
    // The same Authorization header sent to the auth-off server (which ignores it): what the header itself
    // costs the client and the HTTP parser, apart from checking it.
    if (process.env.BENCH_HEADER_CONTROL) cases.push(['auth off, Basic header ignored', off, { Authorization: BASIC }]);
    const run = async ([name, server, headers]: (typeof cases)[number], secs: number): Promise<Run> => {
      const before = cpuSeconds(server.proc.pid!);
      const r = await runWrk({ url: `${server.url}/v2/public/app/manifests/v1`, script, seconds: secs, connections, threads: 1, headers: { Accept: ACCEPT, ...headers } });
      if (r.errors > 0) throw new Error(`${name}: ${r.errors} errors`);
      return { rps: r.requestsPerSecond, p99: r.p99Ms, cpuUs: ((cpuSeconds(server.proc.pid!) - before) / r.requests) * 1e6 };
    };
    for (const c of cases) await run(c, 2); // warm-up: JIT, caches, the credential cache
    const runs = new Map<string, Run[]>(cases.map(([name]) => [name, []]));
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < cases.length; i++) {
        const c = cases[(i + round) % cases.length]!;
        runs.get(c[0])!.push(await run(c, seconds));
      }
    }
    const base = runs.get('auth off')!;
    console.log(`manifest GET by tag, wrk -t1 -c${connections}, ${rounds} rounds of ${seconds} s per case, cases alternating`);
    console.log('| case | req/s (median) | vs auth off (median of paired ratios) | p99 ms | server CPU µs/request | vs auth off |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
    const pct = (ratios: number[]) => {
      const m = median(ratios);
      return `${m >= 1 ? '+' : ''}${((m - 1) * 100).toFixed(1)}%`;
    };
    for (const [name, rs] of runs) {
      const rpsRatio = rs.map((r, i) => r.rps / base[i]!.rps);
      const cpuRatio = rs.map((r, i) => r.cpuUs / base[i]!.cpuUs);
      console.log(`| ${name} | ${Math.round(median(rs.map((r) => r.rps)))} | ${pct(rpsRatio)} | ${median(rs.map((r) => r.p99)).toFixed(1)} | ${median(rs.map((r) => r.cpuUs)).toFixed(1)} | ${pct(cpuRatio)} |`);
    }
  } finally {
    for (const s of servers) s.proc.kill('SIGTERM');
    await Promise.all(servers.map((s) => new Promise((r) => (s.proc.exitCode !== null ? r(null) : s.proc.once('exit', r)))));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
