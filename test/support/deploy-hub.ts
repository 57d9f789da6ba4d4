// What every deploy end-to-end test sets up: extra dockerd hosts (dockerd.ts; the first one a Swarm manager when
// asked), a running Wharf with the app's test releases pushed (deploy-images.ts), and the wharf CLI logged in as
// the global admin in a config directory of its own. All of it is stopped and removed afterwards, whatever happened.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { daemonsUnavailable, startDaemons, type DaemonSet, type TestDaemon } from './dockerd.js';
import { pushTestReleases, type TestReleases } from './deploy-images.js';
import { freePort } from './net.js';
import { runWharf, startWharf, withLogsOnFailure, type StartOptions, type WharfServer } from './server.js';
import type { RunResult } from './command.js';
import { startReceiver, type Receiver } from '../webhooks/receiver.js';

export interface DeployHubOptions {
  /** names the temporary directory */
  name: string;
  /** how many Docker hosts */
  hosts: number;
  /** the first host initialises a one-node swarm */
  swarm?: boolean;
  /** the app (repository) the test releases are pushed to, and their versions (tags) */
  app: string;
  versions: string[];
  wharf?: StartOptions;
  /** how long one `wharf` command may take (120 s unless given) */
  cliTimeoutMs?: number;
  /** false: the CLI is not logged in (the test logs its own users in, each in a config directory under `dir`) */
  login?: boolean;
}

export interface DeployHub {
  server: WharfServer;
  hosts: TestDaemon[];
  releases: TestReleases;
  /** a temporary directory for app files and CLI config, removed afterwards */
  dir: string;
  /** the environment the CLI runs with: this server, its own config directory */
  env: NodeJS.ProcessEnv;
  /** runs `wharf ARGS` as the global admin */
  wharf(...args: string[]): Promise<RunResult>;
  /** runs `wharf ARGS` as the global admin, which must exit 0; answers its stdout */
  ok(...args: string[]): Promise<string>;
  /** a webhook receiver, closed with the hub */
  receiver(): Promise<Receiver>;
}

/** Runs `body` against a fresh deploy hub, or skips the test (fails it under CI=true) when dockerd hosts cannot run here. */
export async function withDeployHub(t: TestContext, opts: DeployHubOptions, body: (hub: DeployHub) => Promise<void>): Promise<void> {
  const why = await daemonsUnavailable();
  if (why) return t.skip(why);
  let daemons: DaemonSet | undefined;
  let server: WharfServer | undefined;
  const receivers: Receiver[] = [];
  const dir = await mkdtemp(join(tmpdir(), `wharf-${opts.name}-`));
  try {
    [daemons, server] = await Promise.all([startDaemons(opts.hosts), startWharf(opts.wharf)]);
    const s = server;
    const hosts = daemons.daemons;
    await withLogsOnFailure(s, async () => {
      if (opts.swarm) await hosts[0]!.mustDocker(['swarm', 'init', '--advertise-addr', '127.0.0.1', '--listen-addr', `127.0.0.1:${await freePort()}`]);
      await s.login('docker');
      const releases = await pushTestReleases(s.host, opts.app, opts.versions);
      const env = { ...process.env, WHARF_SERVER: s.url, WHARF_CONFIG_DIR: join(dir, 'config') };
      const wharf = (...args: string[]) => runWharf(args, { env, timeoutMs: opts.cliTimeoutMs ?? 120_000 });
      const ok = async (...args: string[]) => {
        const r = await wharf(...args);
        assert.equal(r.code, 0, `wharf ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
        return r.stdout;
      };
      if (opts.login !== false) {
        const login = await runWharf(['login', s.url, '-u', s.admin.username, '--password-stdin'], { env, input: s.admin.password });
        assert.equal(login.code, 0, login.stderr);
      }
      const receiver = async () => {
        const r = await startReceiver();
        receivers.push(r);
        return r;
      };
      await body({ server: s, hosts, releases, dir, env, wharf, ok, receiver });
    });
  } finally {
    for (const r of receivers) await r.close();
    // Both at once (neither needs the other any more), and each even when the other fails.
    const stopped = await Promise.allSettled([daemons?.teardown(), server?.stop()]);
    await rm(dir, { recursive: true, force: true });
    const failed = stopped.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
