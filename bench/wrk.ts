// Runs wrk (small GET requests at high rates) and reads its figures, with the CPU wrk itself used.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ticksToSeconds } from './procstat.js';

export interface WrkResult {
  requestsPerSecond: number;
  p99Ms: number;
  requests: number;
  /** Responses with status ≥ 400 plus socket errors: any at all makes the run invalid. */
  errors: number;
  clientCpu: number;
  wallSeconds: number;
}

// done() runs once after the test in wrk's main thread; /proc/self/stat then holds the CPU of all its threads.
const SCRIPT = `
function done(summary, latency, requests)
  local f = io.open("/proc/self/stat")
  local stat = f:read("*a")
  f:close()
  local fields = {}
  for field in stat:match(".*%)%s(.*)"):gmatch("%S+") do fields[#fields + 1] = field end
  local e = summary.errors
  io.write(string.format("BENCH cpu_ticks=%d p99_us=%d requests=%d duration_us=%d errors=%d\\n",
    fields[12] + fields[13], latency:percentile(99), summary.requests, summary.duration,
    e.status + e.connect + e.read + e.write + e.timeout))
end
`;

export function writeWrkScript(dir: string): string {
  const path = join(dir, 'bench.lua');
  writeFileSync(path, SCRIPT);
  return path;
}

export interface WrkOptions {
  url: string;
  script: string;
  seconds: number;
  connections: number;
  threads: number;
  headers?: Record<string, string>;
}

export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${options.threads}`,
    `-c${options.connections}`,
    `-d${options.seconds}s`,
    '--latency',
    '--timeout',
    '10s',
    '-s',
    options.script,
    ...Object.entries(options.headers ?? {}).flatMap(([name, value]) => ['-H', `${name}: ${value}`]),
    options.url,
  ];
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited ${code}:\n${out}`))));
  });
  return parseWrk(output);
}

export function parseWrk(output: string): WrkResult {
  const extra = output.match(/^BENCH cpu_ticks=(\d+) p99_us=(\d+) requests=(\d+) duration_us=(\d+) errors=(\d+)$/m);
  const rate = output.match(/^Requests\/sec:\s+([\d.]+)/m);
  if (!extra || !rate) throw new Error(`cannot read wrk's output:\n${output}`);
  const non2xx = Number(output.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  return {
    requestsPerSecond: Number(rate[1]),
    p99Ms: Number(extra[2]) / 1000,
    requests: Number(extra[3]),
    errors: Math.max(Number(extra[5]), non2xx),
    clientCpu: ticksToSeconds(Number(extra[1])),
    wallSeconds: Number(extra[4]) / 1e6,
  };
}
