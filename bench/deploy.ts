// `npm run bench -- --deploy` (or `--only deploy`, or `node dist/bench/deploy.js`): how long a deployment takes until 5 replicas run the new release healthy —
// Wharf deploying to a Swarm service, next to `docker service update` with the same settings, and Wharf's own
// rolling deploy of 5 replicas on a Docker host — and how long a rollback takes until they run the previous release
// healthy again: Wharf deploying the older release's digest next to `docker service rollback` (same rollback
// settings). Run after run, Wharf and docker alternate, on one throwaway dockerd (never the machine's own daemon).
import { readFile } from 'node:fs/promises';
import { median } from './report.js';
import { startDaemons } from '../test/support/dockerd.js';
import { startWharf } from '../test/support/server.js';
import { pushTestReleases } from '../test/support/deploy-images.js';
import { freePort } from '../test/support/net.js';
import { mustRun } from '../test/support/command.js';
import { parseAppFile } from '../src/app-file/parse.js';
import { resolveEnvironment } from '../src/app-file/plan.js';
import { Deployer } from '../src/deploy/deployer.js';
import { dockerEngines } from '../src/engine/dockerode-engines.js';

const USAGE = 'usage: npm run bench -- --deploy [--runs N] [--parallelism P] [--monitor 1s] (or node dist/bench/deploy.js …)';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = process.argv[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value\n${USAGE}`);
  return v;
}

const RUNS = Number(option('--runs', '3'));
const PARALLELISM = Number(option('--parallelism', '2'));
const MONITOR = option('--monitor', '1s');
const REPLICAS = 5;
if (!Number.isInteger(RUNS) || RUNS < 1 || !Number.isInteger(PARALLELISM) || PARALLELISM < 1) throw new Error(`--runs and --parallelism are positive integers\n${USAGE}`);

async function main(): Promise<void> {
  const [daemons, server] = await Promise.all([startDaemons(1), startWharf()]);
  const host = daemons.daemons[0]!;
  try {
    await host.mustDocker(['swarm', 'init', '--advertise-addr', '127.0.0.1', '--listen-addr', `127.0.0.1:${await freePort()}`]);
    await server.login('docker');
    const rel = await pushTestReleases(server.host, 'benchapp', ['a', 'b']);
    const auth = { serveraddress: server.host, username: server.admin.username, password: server.admin.password };
    const file = parseAppFile(`
app: benchapp
container: { network: host, stopTimeout: 2s }
rollout: { parallelism: ${PARALLELISM}, order: start-first, monitor: ${MONITOR}, healthTimeout: 60s }
environments:
  swarm:
    swarm: { target: bench-host, service: viawharf }
    replicas: ${REPLICAS}
  hosts:
    targets: [bench-host]
    replicas: ${REPLICAS}
`);
    const deployer = new Deployer(dockerEngines());
    let n = 0;
    const deploy = async (env: string, version: string) => {
      const t0 = performance.now();
      const r = await deployer.deploy({ id: `b${++n}`, plan: resolveEnvironment(file, env), image: rel.image, release: { id: n, digest: rel.releases[version]!.digest }, auth }, new Map([['bench-host', { name: 'bench-host', endpoint: host.endpoint }]]));
      if (r.status !== 'succeeded') throw new Error(`${env} deploy of ${version}: ${r.status}: ${r.reason}`);
      return performance.now() - t0;
    };
    const cliUpdate = async (version: string) => {
      const t0 = performance.now();
      await host.mustDocker(
        ['service', 'update', '--detach=false', '--quiet', '--with-registry-auth', '--image', `${rel.image}@${rel.releases[version]!.digest}`,
          '--update-parallelism', String(PARALLELISM), '--update-order', 'start-first', '--update-monitor', MONITOR, '--update-failure-action', 'rollback', 'bycli'],
        300_000,
      );
      return performance.now() - t0;
    };

    // Both services start on release a; every run moves each to the other release.
    await deploy('swarm', 'a');
    await deploy('hosts', 'a');
    await mustRun('docker', ['-H', host.endpoint, 'service', 'create', '--detach=false', '--quiet', '--with-registry-auth', '--name', 'bycli', '--replicas', String(REPLICAS), '--network', 'host',
      '--stop-grace-period', '2s', '--rollback-parallelism', String(PARALLELISM), '--rollback-order', 'start-first', '--rollback-monitor', MONITOR,
      `${rel.image}@${rel.releases.a!.digest}`], { timeoutMs: 300_000 });
    const cliRollback = async () => {
      const t0 = performance.now();
      await host.mustDocker(['service', 'rollback', '--detach=false', '--quiet', 'bycli'], 300_000);
      return performance.now() - t0;
    };

    const times = { wharfSwarm: [] as number[], cli: [] as number[], wharfHosts: [] as number[], wharfBack: [] as number[], cliBack: [] as number[] };
    const loads: string[] = [];
    for (let i = 0; i < RUNS; i++) {
      loads.push((await readFile('/proc/loadavg', 'utf8')).split(' ')[0]!);
      // Swarm: a → b, then back to a (Wharf deploys a's digest, as `wharf rollback --deploy` does; docker rolls back).
      times.wharfSwarm.push(await deploy('swarm', 'b'));
      times.cli.push(await cliUpdate('b'));
      times.wharfBack.push(await deploy('swarm', 'a'));
      times.cliBack.push(await cliRollback());
      times.wharfHosts.push(await deploy('hosts', i % 2 === 0 ? 'b' : 'a'));
    }
    const row = (what: string, xs: number[]) => `| ${what} | ${(median(xs) / 1000).toFixed(1)} s | ${xs.map((x) => (x / 1000).toFixed(1)).join(', ')} |`;
    console.log(`\n${REPLICAS} replicas, parallelism ${PARALLELISM}, start-first, monitor ${MONITOR}, health check every 300 ms; ${RUNS} runs\n`);
    console.log('| deployment until all replicas run the new release healthy | median | runs |');
    console.log('|---|---|---|');
    console.log(row('`wharf deploy` to a Swarm service (follows UpdateStatus to completed)', times.wharfSwarm));
    console.log(row('`docker service update --detach=false` (same UpdateConfig)', times.cli));
    console.log(row('`wharf deploy` to a Docker host (Wharf\'s own rollout, 5 replicas at once)', times.wharfHosts));
    console.log(row('rollback: Wharf deploys the previous release to the Swarm service', times.wharfBack));
    console.log(row('rollback: `docker service rollback --detach=false` (same RollbackConfig)', times.cliBack));
    const ratios = times.wharfSwarm.map((w, i) => w / times.cli[i]!);
    console.log(`\nWharf / docker service update, run by run: ${ratios.map((r) => r.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(2)})`);
    console.log(`load average (1 min) at the start of each run: ${loads.join(', ')}`);
  } finally {
    await daemons.teardown();
    await server.stop();
  }
}

// Awaited at the top, so that `npm run bench -- --deploy` (bench/run.ts imports this file) waits for the runs.
await main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
