// What authentication costs on the hottest path: manifest GETs by tag under wrk, against one server with
// auth off, then with auth on for an anonymous-pull repository, a Bearer token and HTTP Basic. Besides
// req/s (which a busy machine skews) it reports the server's CPU time per request, which it skews less.
// Run: npm run build && node dist/bench/auth-overhead.js [seconds] [connections]
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cpuSeconds } from './procstat.js';
import { runWrk, writeWrkScript, type WrkResult } from './wrk.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PASSWORD = 'bench-admin-password';
const BASIC = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json';
const seconds = Number(process.argv[2] ?? 10);
const connections = Number(process.argv[3] ?? 32);
const ROUNDS = 3;

const digest = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function startServer(dir: string, authOn: boolean): Promise<{ url: string; proc: ChildProcess }> {
  await mkdir(dir, { recursive: true });
  const config = join(dir, 'wharf.yaml');
  await writeFile(config, `log: { level: warn }\nauth:\n  enabled: ${authOn}\n  anonymousPull: ["public/*"]\n`);
  const proc = spawn(process.execPath, ['bin/wharf.js', 'serve', '--listen', '127.0.0.1:0', '--data', join(dir, 'data'), '--config', config, '--log-level', 'info'], {
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
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-bench-auth-'));
  const script = writeWrkScript(dir);
  const results = new Map<string, (WrkResult & { cpuUsPerRequest: number })[]>();
  const servers: ChildProcess[] = [];
  try {
    const off = await startServer(join(dir, 'off'), false);
    servers.push(off.proc);
    await push(off.url, 'public/app');
    const on = await startServer(join(dir, 'on'), true);
    servers.push(on.proc);
    await push(on.url, 'public/app');
    const token = await bearer(on.url, 'public/app');
    const cases: [string, string, ChildProcess, Record<string, string>][] = [
      ['auth off', off.url, off.proc, {}],
      ['auth on, anonymous (anonymousPull)', on.url, on.proc, {}],
      ['auth on, Bearer token', on.url, on.proc, { Authorization: token }],
      ['auth on, Basic', on.url, on.proc, { Authorization: BASIC }],
    ];
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, url, proc, headers] of cases) {
        const cpuBefore = cpuSeconds(proc.pid!);
        const r = await runWrk({ url: `${url}/v2/public/app/manifests/v1`, script, seconds, connections, threads: 1, headers: { Accept: ACCEPT, ...headers } });
        if (r.errors > 0) throw new Error(`${name}: ${r.errors} errors`);
        const cpuUsPerRequest = ((cpuSeconds(proc.pid!) - cpuBefore) / r.requests) * 1e6;
        results.set(name, [...(results.get(name) ?? []), { ...r, cpuUsPerRequest }]);
      }
    }
    const base = median(results.get('auth off')!.map((r) => r.requestsPerSecond));
    const baseCpu = median(results.get('auth off')!.map((r) => r.cpuUsPerRequest));
    console.log(`manifest GET by tag, wrk -t1 -c${connections} -d${seconds}s, median of ${ROUNDS} rounds`);
    console.log('| case | req/s | vs auth off | p99 ms | server CPU µs/request | vs auth off |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
    const pct = (x: number, b: number) => `${x >= b ? '+' : ''}${((x / b - 1) * 100).toFixed(1)}%`;
    for (const [name, rs] of results) {
      const rps = median(rs.map((r) => r.requestsPerSecond));
      const p99 = median(rs.map((r) => r.p99Ms));
      const cpu = median(rs.map((r) => r.cpuUsPerRequest));
      console.log(`| ${name} | ${Math.round(rps)} | ${pct(rps, base)} | ${p99.toFixed(1)} | ${cpu.toFixed(0)} | ${pct(cpu, baseCpu)} |`);
    }
  } finally {
    for (const p of servers) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
