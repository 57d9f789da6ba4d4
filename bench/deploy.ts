// `node dist/bench/deploy.js`: how long a deployment takes until 5 replicas run the new release healthy —
// Wharf deploying to a Swarm service, next to `docker service update` with the same settings, and Wharf's own
// rolling deploy of 5 replicas on a Docker host — on one throwaway dockerd (never the machine's own daemon).
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

const USAGE = 'usage: node dist/bench/deploy.js [--runs N] [--parallelism P] [--monitor 1s]';

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
      '--stop-grace-period', '2s', `${rel.image}@${rel.releases.a!.digest}`], { timeoutMs: 300_000 });

    const times = { wharfSwarm: [] as number[], cli: [] as number[], wharfHosts: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      const version = i % 2 === 0 ? 'b' : 'a';
      times.wharfSwarm.push(await deploy('swarm', version));
      times.cli.push(await cliUpdate(version));
      times.wharfHosts.push(await deploy('hosts', version));
    }
    const row = (what: string, xs: number[]) => `| ${what} | ${(median(xs) / 1000).toFixed(1)} s | ${xs.map((x) => (x / 1000).toFixed(1)).join(', ')} |`;
    console.log(`\n${REPLICAS} replicas, parallelism ${PARALLELISM}, start-first, monitor ${MONITOR}, health check every 300 ms; ${RUNS} runs\n`);
    console.log('| deployment until all replicas run the new release healthy | median | runs |');
    console.log('|---|---|---|');
    console.log(row('`wharf deploy` to a Swarm service (follows UpdateStatus to completed)', times.wharfSwarm));
    console.log(row('`docker service update --detach=false` (same UpdateConfig)', times.cli));
    console.log(row('`wharf deploy` to a Docker host (Wharf\'s own rollout, 5 replicas at once)', times.wharfHosts));
  } finally {
    await daemons.teardown();
    await server.stop();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
