// Extra Docker daemons on this machine, standing in for several hosts in deploy tests. Each has its own data root,
// exec root, pidfile, containerd and unix socket (optionally also tcp with TLS client certificates); none touches
// the machine's own daemon on /var/run/docker.sock. Start a few per test file and reuse them across its tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { mustRun, run, type RunResult } from './command.js';
import { freePort } from './net.js';
import { missingReason } from './tools.js';

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

export interface TestDaemon {
  name: string;
  root: string;
  socket: string;
  /** unix:///…/docker.sock */
  endpoint: string;
  /** tcp://127.0.0.1:PORT when started with TLS, and the client's certificate files */
  tcp?: { endpoint: string; tls: TlsFiles };
  /** milliseconds from spawn to the first answered /_ping */
  startupMs: number;
  /** runs the docker CLI against this daemon */
  docker(args: string[], timeoutMs?: number): Promise<RunResult>;
  mustDocker(args: string[], timeoutMs?: number): Promise<RunResult>;
  /**
   * SIGKILL: the host is gone, its socket refuses connections. It stays down (dockerd 20.10 comes back slowly and
   * without the containers it ran, so a test does not restart it); teardown cleans up after it.
   */
  kill(): Promise<void>;
  alive(): boolean;
}

export interface DaemonSet {
  daemons: TestDaemon[];
  /** Removes containers, leaves swarms, stops the daemons and removes their directories. */
  teardown(): Promise<void>;
}

/**
 * Why deploy tests cannot run here (no docker, no static busybox for the test images, not root, no dockerd), or
 * undefined if they can. Under CI=true a missing piece throws instead, so CI can never go green by skipping.
 */
export async function daemonsUnavailable(): Promise<string | undefined> {
  const why =
    (await missingReason('docker')) ??
    (await missingReason('busybox')) ??
    (process.getuid?.() !== 0 ? 'extra dockerd daemons need root' : undefined) ??
    ((await run('dockerd', ['--version']).catch(() => ({ code: 1 }))).code !== 0 ? 'dockerd not installed' : undefined);
  if (why !== undefined && process.env.CI === 'true') throw new Error(`CI=true and deploy tests cannot run: ${why}`);
  return why;
}

// A test that throws before teardown must not leave daemons behind.
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

/** `tls`: the first daemon also listens on tcp with TLS; `args`: more dockerd flags, for every daemon. */
export async function startDaemons(n: number, opts: { tls?: boolean; args?: string[] } = {}): Promise<DaemonSet> {
  const daemons: Daemon[] = [];
  try {
    for (let i = 0; i < n; i++) daemons.push(await Daemon.create(`host${i + 1}`, opts.tls === true && i === 0, opts.args ?? []));
    await Promise.all(daemons.map((d) => d.start()));
  } catch (e) {
    await Promise.all(daemons.map((d) => d.destroy().catch(() => undefined)));
    throw e;
  }
  return { daemons, teardown: () => Promise.all(daemons.map((d) => d.destroy())).then(() => undefined) };
}

class Daemon implements TestDaemon {
  socket: string;
  endpoint: string;
  tcp?: { endpoint: string; tls: TlsFiles };
  startupMs = 0;
  private proc?: ChildProcess;
  private exited?: Promise<void>;
  private tcpPort?: number;
  private serverTls?: TlsFiles;

  private constructor(
    readonly name: string,
    readonly root: string,
    private readonly extraArgs: string[],
  ) {
    this.socket = join(root, 'docker.sock');
    this.endpoint = `unix://${this.socket}`;
  }

  static async create(name: string, tls: boolean, extraArgs: string[]): Promise<Daemon> {
    // Short paths: a unix socket path must fit in 108 bytes.
    const d = new Daemon(name, await mkdtemp(`/tmp/wharf-dockerd-`), extraArgs);
    if (tls) {
      const files = await makeCertificates(join(d.root, 'tls'));
      d.tcpPort = await freePort();
      d.serverTls = files.server;
      d.tcp = { endpoint: `tcp://127.0.0.1:${d.tcpPort}`, tls: files.client };
    }
    return d;
  }

  alive(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async start(): Promise<void> {
    const args = [
      '--data-root', join(this.root, 'data'),
      '--exec-root', join(this.root, 'exec'),
      '--pidfile', join(this.root, 'docker.pid'),
      '-H', this.endpoint,
      '--bridge=none',
      '--iptables=false',
      '--ip-masq=false',
      ...this.extraArgs,
    ];
    if (this.serverTls) {
      args.push('-H', `tcp://127.0.0.1:${this.tcpPort}`, '--tlsverify', '--tlscacert', this.serverTls.ca, '--tlscert', this.serverTls.cert, '--tlskey', this.serverTls.key);
    }
    const log = openSync(join(this.root, 'dockerd.log'), 'a');
    const began = Date.now();
    const proc = spawn('dockerd', args, { stdio: ['ignore', log, log], detached: true });
    closeSync(log);
    this.proc = proc;
    live.add(proc);
    this.exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    void this.exited.then(() => live.delete(proc));
    const deadline = began + START_TIMEOUT_MS;
    while (!(await ping(this.socket))) {
      if (!this.alive() || Date.now() > deadline) {
        throw new Error(`dockerd ${this.name} did not start:\n${this.logTail()}`);
      }
      await sleep(50);
    }
    this.startupMs = Date.now() - began;
  }

  docker(args: string[], timeoutMs = 120_000): Promise<RunResult> {
    return run('docker', ['-H', this.endpoint, ...args], { timeoutMs });
  }

  mustDocker(args: string[], timeoutMs = 120_000): Promise<RunResult> {
    return mustRun('docker', ['-H', this.endpoint, ...args], { timeoutMs });
  }

  async kill(): Promise<void> {
    if (!this.alive()) return;
    this.proc!.kill('SIGKILL');
    await this.exited;
  }

  async destroy(): Promise<void> {
    try {
      if (this.alive()) {
        await this.docker(['swarm', 'leave', '--force'], 30_000);
        const ids = (await this.docker(['ps', '-aq'], 30_000)).stdout.split('\n').filter(Boolean);
        if (ids.length) await this.docker(['rm', '-f', ...ids], 60_000);
        // A daemon keeps its networks' bridges on the machine when it stops (they are its state, for its next start),
        // and this one never starts again: each left behind holds one of Docker's 31 default address pools, and once
        // they are all held no daemon here can create a network ("could not find an available, non-overlapping IPv4
        // address pool"), as a long-used machine showed.
        await this.docker(['network', 'prune', '-f'], 30_000);
        this.proc!.kill('SIGTERM');
        // unref'd: the timer of a daemon that stopped in time must not keep the test process alive for its 30 s
        const stopped = await Promise.race([this.exited!.then(() => true), sleep(STOP_TIMEOUT_MS, undefined, { ref: false }).then(() => false)]);
        if (!stopped) await this.kill();
      }
    } finally {
      await killLeftovers(this.root);
      await unmountUnder(this.root);
      await rm(this.root, { recursive: true, force: true });
    }
  }

  private logTail(): string {
    try {
      return readFileSync(join(this.root, 'dockerd.log'), 'utf8').split('\n').slice(-30).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

/** GET /_ping on the socket: true once the daemon answers OK. */
function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

/**
 * After a daemon was killed, its containers' shims (and their processes) live on. They are found by the daemon's
 * own directory in their command line, and killed by PID, children first.
 */
async function killLeftovers(root: string): Promise<void> {
  const procs: { pid: number; ppid: number; cmdline: string }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      procs.push({ pid: Number(entry), ppid: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]), cmdline });
    } catch {
      // exited meanwhile
    }
  }
  const ours = new Set(procs.filter((p) => p.cmdline.includes(`${root}/`) && p.pid !== process.pid).map((p) => p.pid));
  const order: number[] = [];
  const visit = (pid: number) => {
    for (const child of procs.filter((p) => p.ppid === pid)) visit(child.pid);
    order.push(pid);
  };
  for (const pid of ours) visit(pid);
  for (const pid of order) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 10_000;
  while (order.some(running) && Date.now() < deadline) await sleep(50);
}

/** Exists and is not a zombie waiting to be reaped. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The daemon leaves its network namespace mount (and after a kill, overlay mounts) behind; unmount them, deepest first. */
async function unmountUnder(root: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === root || p.startsWith(`${root}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run('umount', ['-l', m]);
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, as `docker --tlsverify` expects them. */
async function makeCertificates(dir: string): Promise<{ server: TlsFiles; client: TlsFiles }> {
  await mkdir(dir, { recursive: true });
  const f = (name: string) => join(dir, name);
  const openssl = (args: string[]) => mustRun('openssl', args, { cwd: dir });
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=wharf-test-ca', '-keyout', f('ca-key.pem'), '-out', f('ca.pem')]);
  for (const [who, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'],
    ['client', 'extendedKeyUsage=clientAuth\n'],
  ] as const) {
    await writeFile(f(`${who}.ext`), ext);
    await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${who}`, '-keyout', f(`${who}-key.pem`), '-out', f(`${who}.csr`)]);
    await openssl(['x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial', '-days', '2', '-extfile', f(`${who}.ext`), '-out', f(`${who}-cert.pem`)]);
  }
  return {
    server: { ca: f('ca.pem'), cert: f('server-cert.pem'), key: f('server-key.pem') },
    client: { ca: f('ca.pem'), cert: f('client-cert.pem'), key: f('client-key.pem') },
  };
}
