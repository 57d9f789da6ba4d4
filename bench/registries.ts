// Starts and stops the servers under test — Wharf, CNCF Distribution and nginx — each on a loopback port with its own temp dir.
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Login } from './credentials.js';

/**
 * `wharf` runs with authentication on, as users run it, its clients logged in; `wharf-anon` is the same process with
 * clients that send no credentials (bench/* may be pulled anonymously), the baseline authentication is held to.
 */
export type ServerName = 'wharf' | 'wharf-anon' | 'wharf-pg' | 'wharf-pg2' | 'distribution' | 'nginx';

export interface Server {
  name: ServerName;
  url: string;
  /** the process whose tree is measured (CPU, RSS); several for a cluster (its instances and its proxy) */
  pid: number | number[];
  /** whom the clients log in as; absent when the server has no authentication */
  login?: Login;
  stop(): Promise<void>;
}

/** The repositories the bench user may pull from and push to (the fixtures' and the push figures'). */
const BENCH_REPOSITORIES = 'bench/*';

const DISTRIBUTION_BIN = '/usr/bin/docker-registry';
const NGINX_BIN = '/usr/sbin/nginx';
const START_TIMEOUT_MS = 30_000;

const running = new Set<ChildProcess>();

/** Kills, without waiting, every server still running: for a bench that is being interrupted. */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Runs a server with stdout and stderr going to a log file, so the bench never spends CPU reading its logs. */
function startProcess(command: string, args: string[], logFile: string, cwd?: string, env?: NodeJS.ProcessEnv): ChildProcess {
  const log = openSync(logFile, 'a');
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', log, log] });
  closeSync(log);
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timeout = sleep(10_000).then(() => 'timeout');
  if ((await Promise.race([exited, timeout])) === 'timeout') {
    child.kill('SIGKILL');
    await exited;
  }
}

function logTail(logFile: string): string {
  try {
    return readFileSync(logFile, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}

function exitedEarly(child: ChildProcess, name: string, logFile: string): Promise<never> {
  return new Promise((_, reject) =>
    child.once('exit', (code, signal) =>
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready; log ${logFile}:\n${logTail(logFile)}`)),
    ),
  );
}

async function withStartTimeout<T>(name: string, logFile: string, ready: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${name} not ready after ${START_TIMEOUT_MS / 1000} s; log ${logFile}:\n${logTail(logFile)}`)),
      START_TIMEOUT_MS,
    );
  });
  try {
    return await Promise.race([ready, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = get(url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
  });
}

/** Polls until the server answers `url` with `status`, or with anything at all when no status is given. */
async function waitForStatus(url: string, status?: number): Promise<void> {
  for (;;) {
    const got = await httpStatus(url);
    if (got !== 0 && (status === undefined || got === status)) return;
    await sleep(50);
  }
}

function server(name: ServerName, url: string, child: ChildProcess): Server {
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  return { name, url, pid: child.pid, stop: () => stopProcess(child) };
}

/** Runs a `wharf` CLI verb on a data dir, beside the running server, as an operator would. */
function wharfCli(repoRoot: string, args: string[], input?: string, env: NodeJS.ProcessEnv = {}): void {
  const result = spawnSync(process.execPath, ['bin/wharf.js', ...args], { cwd: repoRoot, input, encoding: 'utf8', env: { ...process.env, ...env } });
  if (result.status !== 0) throw new Error(`wharf ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
}

/**
 * Wharf as a user starts it: with authentication on (its default), and a member user `bench` granted pull and push on
 * bench/* — not the admin, whose role skips the grant lookup every other user pays for. bench/* may also be pulled
 * without credentials (`auth.anonymousPull`), so the same process serves the anonymous baseline: two Wharf processes
 * of one configuration differ by a few percent between themselves, as much as what is measured. Ready when it logs
 * its `listening` line with the URL it bound. With `db` (a PostgreSQL URL) it keeps its metadata there (`wharf-pg`),
 * everything else the same.
 */
export async function startWharf(repoRoot: string, dir: string, nodeArgs: string[] = [], db?: string, instance?: WharfInstance): Promise<Server> {
  const name: ServerName = db ? 'wharf-pg' : 'wharf';
  const data = instance?.data ?? join(dir, 'data');
  const logFile = join(dir, instance ? `wharf-${instance.index}.log` : 'wharf.log');
  const config = join(dir, 'wharf.yaml');
  writeFileSync(config, `auth:\n  anonymousPull: ["${BENCH_REPOSITORIES}"]\n`);
  const args = [
    ...nodeArgs,
    'bin/wharf.js',
    'serve',
    '--listen',
    '127.0.0.1:0',
    '--data',
    data,
    '--config',
    config,
    ...(db ? ['--db', db, '--migrate'] : []),
    ...(instance ? ['--external-url', instance.externalUrl] : []),
  ];
  const { WHARF_CONFIG: _config, WHARF_AUTH: _auth, WHARF_ADMIN_PASSWORD: _password, WHARF_DB: _db, ...env } = process.env;
  const password = instance?.password ?? randomBytes(18).toString('base64url');
  const child = startProcess(process.execPath, args, logFile, repoRoot, { ...env, WHARF_ADMIN_PASSWORD: password });
  const cliEnv = db ? { WHARF_DB: db } : {};
  const listening = (async () => {
    for (;;) {
      for (const line of readFileSync(logFile, 'utf8').split('\n')) {
        if (!line.includes('"listening"')) continue;
        try {
          const url = (JSON.parse(line) as { url?: string }).url;
          if (url) return url;
        } catch {
          // a line still being written
        }
      }
      await sleep(50);
    }
  })();
  try {
    const url = await withStartTimeout(name, logFile, Promise.race([listening, exitedEarly(child, name, logFile)]));
    if (!instance || instance.index === 0) {
      wharfCli(repoRoot, ['user', 'add', 'bench', '--password-stdin', '--data', data], password, cliEnv);
      wharfCli(repoRoot, ['grant', 'bench', 'pull,push', BENCH_REPOSITORIES, '--data', data], undefined, cliEnv);
    }
    return { ...server(name, url.replace(/\/$/, ''), child), login: { user: 'bench', password } };
  } catch (err) {
    await stopProcess(child);
    throw err;
  }
}

/** One of several Wharf instances that share a data directory and a database behind a proxy. */
export interface WharfInstance {
  index: number;
  data: string;
  /** the admin's (and the bench user's) password, the same for every instance */
  password: string;
  /** the proxy's URL: the token realm every instance names */
  externalUrl: string;
}

/**
 * `wharf-pg2`: two Wharf instances over one PostgreSQL database and one data directory, nginx in front as a
 * round-robin load balancer (the cluster of docs/configuration.md), as one server: its URL is nginx's, its CPU and
 * memory the three processes'.
 */
export async function startWharfCluster(repoRoot: string, dir: string, db: string, nodeArgs: string[] = [], instances = 2): Promise<Server> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const shared = { data: join(dir, 'data'), password: randomBytes(18).toString('base64url'), externalUrl: url };
  const started: Server[] = [];
  try {
    // One after the other: the first creates the keys and the admin in the shared data directory and database.
    for (let index = 0; index < instances; index++) started.push(await startWharf(repoRoot, dir, nodeArgs, db, { ...shared, index }));
    const proxy = await startProxy(dir, port, started.map((s) => s.url));
    return {
      name: 'wharf-pg2',
      url,
      pid: [proxy.pid as number, ...started.map((s) => s.pid as number)],
      login: started[0]!.login,
      stop: async () => {
        await proxy.stop();
        await Promise.all(started.map((s) => s.stop()));
      },
    };
  } catch (err) {
    await Promise.all(started.map((s) => s.stop()));
    throw err;
  }
}

/** The part of an nginx configuration every nginx of the bench shares: one process tree under `prefix`, up to `http {`. */
function nginxMain(prefix: string): string {
  return `daemon off;
worker_processes auto;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;`;
}

/** nginx as a round-robin HTTP load balancer in front of `upstreams`, streaming bodies both ways (the docs' config). */
async function startProxy(dir: string, port: number, upstreams: string[]): Promise<Server> {
  const prefix = join(dir, 'proxy');
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  const config = join(prefix, 'nginx.conf');
  writeFileSync(
    config,
    `${nginxMain(prefix)}
  upstream wharf {
${upstreams.map((u) => `    server ${new URL(u).host};`).join('\n')}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    client_max_body_size 0;
    location / {
      proxy_pass http://wharf;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_buffer_size 256k;
      proxy_buffers 4 256k;
      proxy_read_timeout 900s;
      proxy_send_timeout 900s;
    }
  }
}
`,
  );
  const logFile = join(prefix, 'logs', 'stderr.log');
  const child = startProcess(NGINX_BIN, ['-p', prefix, '-e', join(prefix, 'logs', 'error.log'), '-c', config], logFile);
  const url = `http://127.0.0.1:${port}`;
  try {
    await withStartTimeout('nginx proxy', logFile, Promise.race([waitForStatus(`${url}/healthz`), exitedEarly(child, 'nginx proxy', logFile)]));
    return server('nginx', url, child);
  } catch (err) {
    await stopProcess(child);
    throw err;
  }
}

export function distributionVersion(): string {
  return execFileSync(DISTRIBUTION_BIN, ['--version'], { encoding: 'utf8' }).trim();
}

/** Distribution with the Debian package's defaults (info logging, in-memory blob descriptor cache), minus auth. */
export async function startDistribution(dir: string): Promise<Server> {
  const port = await freePort();
  const config = join(dir, 'config.yml');
  const logFile = join(dir, 'distribution.log');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: info',
      'storage:',
      '  cache:',
      '    blobdescriptor: inmemory',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '  headers:',
      '    X-Content-Type-Options: [nosniff]',
      '',
    ].join('\n'),
  );
  const child = startProcess(DISTRIBUTION_BIN, ['serve', config], logFile);
  const url = `http://127.0.0.1:${port}`;
  try {
    await withStartTimeout(
      'distribution',
      logFile,
      Promise.race([waitForStatus(`${url}/v2/`, 200), exitedEarly(child, 'distribution', logFile)]),
    );
    return server('distribution', url, child);
  } catch (err) {
    await stopProcess(child);
    throw err;
  }
}

/**
 * nginx serving `root` as static files, laid out like the registry API (root/v2/<repo>/blobs/<digest>, …), so the
 * same request paths work against it. It is the ceiling: what a server that only copies files to sockets achieves.
 */
export async function startNginx(dir: string, root: string): Promise<Server> {
  const port = await freePort();
  const prefix = join(dir, 'prefix');
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  const config = join(prefix, 'nginx.conf');
  writeFileSync(
    config,
    `${nginxMain(prefix)}
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types { }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location ~ /manifests/ { default_type application/vnd.oci.image.manifest.v1+json; }
    location ~ /tags/list$ { default_type application/json; }
  }
}
`,
  );
  const logFile = join(prefix, 'logs', 'stderr.log');
  const child = startProcess(NGINX_BIN, ['-p', prefix, '-e', join(prefix, 'logs', 'error.log'), '-c', config], logFile);
  const url = `http://127.0.0.1:${port}`;
  try {
    await withStartTimeout(
      'nginx',
      logFile,
      Promise.race([waitForStatus(`${url}/`), exitedEarly(child, 'nginx', logFile)]),
    );
    return server('nginx', url, child);
  } catch (err) {
    await stopProcess(child);
    throw err;
  }
}

/**
 * A PostgreSQL cluster of the bench's own (scripts/postgres.sh, in `dir`) and one empty database on it for `wharf-pg`;
 * WHARF_BENCH_POSTGRES (an admin URL) uses a running cluster instead. Returns the database URL and how to stop.
 */
export async function startPostgres(repoRoot: string, dir: string, server = 'wharf-pg'): Promise<{ url: string; stop(): Promise<void> }> {
  let admin = process.env.WHARF_BENCH_POSTGRES;
  let stopCluster = async () => {};
  if (!admin) {
    const port = await freePort();
    const clusterDir = join(dir, 'cluster');
    const started = spawnSync('scripts/postgres.sh', ['start', clusterDir, String(port)], { cwd: repoRoot, encoding: 'utf8' });
    if (started.status !== 0) throw new Error(`scripts/postgres.sh start failed (${started.status}): ${started.stderr}`);
    admin = /WHARF_TEST_POSTGRES=(\S+)/.exec(started.stdout)?.[1]?.replace(/^['"]|['"]$/g, '');
    if (!admin) throw new Error(`scripts/postgres.sh printed no URL: ${started.stdout}`);
    stopCluster = async () => {
      spawnSync('scripts/postgres.sh', ['stop', clusterDir], { cwd: repoRoot, stdio: 'ignore' });
    };
  }
  const name = `wharf_bench_${process.pid}_${server.replace(/\W/g, '_')}`;
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  try {
    await client.query(`drop database if exists ${name} with (force)`);
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    stop: async () => {
      const c = new pg.Client({ connectionString: admin });
      await c.connect().then(() => c.query(`drop database if exists ${name} with (force)`)).catch(() => undefined);
      await c.end().catch(() => undefined);
      await stopCluster();
    },
  };
}
