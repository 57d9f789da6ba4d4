// Starts a real Wharf (`node bin/wharf.js serve`) on a random loopback port for end-to-end tests,
// and runs other wharf commands (fsck …) against the same checkout.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { mustRun, run, type RunOptions, type RunResult } from './command.js';
import { rememberCredentials } from './registry-client.js';
import { databaseEnv, forgetDatabase } from './database.js';

/** The repository root: this file is compiled to dist/test/support/. */
export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const WHARF_BIN = join(REPO_ROOT, 'bin', 'wharf.js');

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const KEPT_LOG_LINES = 5_000;
/** The admin password every test server starts with (WHARF_ADMIN_PASSWORD), unless opts.env sets another. */
export const TEST_ADMIN_PASSWORD = 'wharf-test-admin-password';
/**
 * scrypt's cost (log2 N) for the passwords test servers and CLI commands set (WHARF_PASSWORD_COST), unless opts.env
 * sets another: 2^10 instead of the default 2^15. The passwords here are throwaway, and each hash at the default
 * took 0.18 CPU s — every test Wharf makes its admin and verifies it at its first login, hundreds a CI run. The
 * default cost is tested on its own (test/auth/password.test.ts, test/auth/password-cost.test.ts).
 */
export const TEST_PASSWORD_COST = 10;

export type LoginTool = 'docker' | 'podman' | 'skopeo';

export interface StartOptions {
  /** Reuse a data directory (e.g. to restart after a crash); it is then never removed. */
  dataDir?: string;
  env?: Record<string, string>;
  args?: string[];
}

export interface WharfServer {
  /** e.g. "http://127.0.0.1:43210" */
  url: string;
  /** e.g. "127.0.0.1:43210", the registry part of an image reference */
  host: string;
  dataDir: string;
  proc: ChildProcess;
  /** What the server printed so far (stdout and stderr, interleaved), for failure messages. */
  logs(): string;
  /** SIGTERM, then wait for the exit; fails if the server does not stop by itself in time. */
  stop(): Promise<void>;
  /** Sends a signal to the server's process group and waits for the server to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** The admin's credentials: authentication is on, as in a real install. */
  admin: { username: string; password: string };
  /** `Basic …` of the admin, for raw HTTP requests (the registry-client helpers send it by themselves). */
  authorization: string;
  /** Logs docker, podman or skopeo in to this server as admin; stop() logs them out again. */
  login(tool: LoginTool): Promise<void>;
}

// Safety net: a test that throws before stop() must not leave a server behind.
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const proc of live) killGroup(proc, 'SIGKILL');
});

export async function startWharf(opts: StartOptions = {}): Promise<WharfServer> {
  const ownDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'wharf-test-data-')));
  const args = [WHARF_BIN, 'serve', '--listen', '127.0.0.1:0', '--data', dataDir, ...(opts.args ?? [])];
  // Own process group, so that kill -9 also takes any helper process the server starts.
  const admin = { username: 'admin', password: opts.env?.WHARF_ADMIN_PASSWORD ?? TEST_ADMIN_PASSWORD };
  const proc = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    // Test receivers listen on loopback, which webhooks refuse unless allowed (the SSRF tests unset this).
    env: {
      ...process.env,
      WHARF_ADMIN_PASSWORD: admin.password,
      WHARF_PASSWORD_COST: String(TEST_PASSWORD_COST),
      WHARF_WEBHOOK_ALLOW_TARGETS: '127.0.0.1',
      ...(await databaseEnv(dataDir)),
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  live.add(proc);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  exited.then(() => live.delete(proc));

  const lines: string[] = [];
  const keep = (line: string) => {
    lines.push(line);
    if (lines.length > KEPT_LOG_LINES) lines.splice(0, lines.length - KEPT_LOG_LINES);
  };
  const logs = () => lines.join('\n');
  createInterface({ input: proc.stderr! }).on('line', (l) => keep(`[stderr] ${l}`));

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => fail(`no "listening" line within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    function fail(why: string) {
      clearTimeout(timer);
      killGroup(proc, 'SIGKILL');
      reject(new Error(`wharf serve did not start: ${why}\n$ node ${args.join(' ')}\n${logs()}`));
    }
    proc.once('error', (e) => fail(String(e)));
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => fail(`exited with ${code ?? signal}`);
    proc.once('exit', onExit);
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      keep(line);
      const url = listeningUrl(line);
      if (url === undefined) return;
      clearTimeout(timer);
      proc.off('exit', onExit);
      resolve(url);
    });
  });

  async function kill(signal: NodeJS.Signals = 'SIGKILL') {
    if (proc.exitCode === null && proc.signalCode === null) killGroup(proc, signal);
    await exited;
    await logout();
  }

  const host = new URL(url).host;
  const authorization = `Basic ${Buffer.from(`${admin.username}:${admin.password}`).toString('base64')}`;
  rememberCredentials(url, authorization);
  const loggedIn = new Set<LoginTool>();
  async function login(tool: LoginTool) {
    const tls = tool === 'docker' ? [] : ['--tls-verify=false'];
    await mustRun(tool, ['login', ...tls, '-u', admin.username, '--password-stdin', host], { input: admin.password });
    loggedIn.add(tool);
  }

  /** Tools logged in to this server forget it again (the port is someone else's next time). */
  async function logout() {
    for (const tool of loggedIn) await run(tool, ['logout', host]);
    loggedIn.clear();
  }

  async function stop() {
    await logout();
    try {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const stopped = await Promise.race([
          exited.then(() => true),
          new Promise<boolean>((r) => setTimeout(() => r(false), STOP_TIMEOUT_MS).unref()),
        ]);
        if (!stopped) {
          await kill('SIGKILL');
          throw new Error(`wharf serve ignored SIGTERM for ${STOP_TIMEOUT_MS} ms\n${logs()}`);
        }
      }
    } finally {
      if (ownDataDir) {
        await rm(dataDir, { recursive: true, force: true });
        await forgetDatabase(dataDir);
      }
    }
  }

  return { url, host, dataDir, proc, logs, stop, kill, admin, authorization, login };
}

/** Runs fn; if it fails, the error message gets the tail of the server's log, which usually says why. */
export async function withLogsOnFailure<T>(server: Pick<WharfServer, 'logs'>, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof Error) e.message += `\n--- last lines of the wharf log\n${server.logs().split('\n').slice(-150).join('\n')}`;
    throw e;
  }
}

/** Runs `node bin/wharf.js <args>` (e.g. fsck) from the repository root. */
export async function runWharf(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  // On PostgreSQL (WHARF_TEST_DB), a command over a data directory finds that directory's database.
  const data = args.indexOf('--data');
  const db = data >= 0 && args[data + 1] ? await databaseEnv(args[data + 1]!) : {};
  return run(process.execPath, [WHARF_BIN, ...args], { cwd: REPO_ROOT, timeoutMs: 120_000, ...opts, env: { WHARF_PASSWORD_COST: String(TEST_PASSWORD_COST), ...db, ...opts.env } });
}

/** The server announces readiness with a pino line {"msg":"listening","url":"http://127.0.0.1:PORT"}. */
function listeningUrl(line: string): string | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const entry = JSON.parse(line) as { msg?: unknown; url?: unknown };
    return entry.msg === 'listening' && typeof entry.url === 'string' ? entry.url : undefined;
  } catch {
    return undefined;
  }
}

function killGroup(proc: ChildProcess, signal: NodeJS.Signals) {
  if (proc.pid === undefined) return;
  try {
    process.kill(-proc.pid, signal);
  } catch {
    // already gone
  }
}
