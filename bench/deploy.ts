// `npm run bench -- --deploy` (or `--only deploy`, or `node dist/bench/deploy.js`): deploy and rollback through the
// `wharf` CLI against a running Wharf, side by side with docker at the same settings. On one throwaway dockerd (never
// the machine's own daemon) with a one-node Swarm, 11 releases are deployed in turn to a Wharf-managed Swarm service;
// then each round rolls it back k releases (`wharf rollback --to <k back> --deploy`, k = 1, 3, 6, 10 by default) and
// deploys the newest again (`wharf release` + `wharf deploy`), next to `docker service rollback` and `docker service
// update` of a service docker manages; then the rollbacks again with docker's service gone, and a `wharf deploy` of 5
// replicas on a Docker host with neither service left (see "gone" below for why). Each figure is the wall
// time of the command, which ends when all 5 replicas run the release healthy. The goals (issue 20): deploy ≤ 1.2×
// `docker service update`; a rollback to any of the last 10 releases healthy in < 15 s.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { median } from './report.js';
import { withDeployHub } from '../test/support/deploy-hub.js';

const USAGE = 'usage: npm run bench -- --deploy [--runs N] [--back 1,3,6,10] [--parallelism P] [--monitor 1s] (or node dist/bench/deploy.js …)';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = process.argv[i + 1];
  if (v === undefined) throw new Error(`${name} needs a value\n${USAGE}`);
  return v;
}

const RUNS = Number(option('--runs', '2'));
const BACK = option('--back', '1,3,6,10').split(',').map(Number);
const PARALLELISM = Number(option('--parallelism', '2'));
const MONITOR = option('--monitor', '1s');
const REPLICAS = 5;
/** releases r0 … r10: the newest and the 10 before it */
const RELEASES = 11;
const NEWEST = RELEASES - 1;
if (!Number.isInteger(RUNS) || RUNS < 1 || !Number.isInteger(PARALLELISM) || PARALLELISM < 1) throw new Error(`--runs and --parallelism are positive integers\n${USAGE}`);
if (BACK.some((k) => !Number.isInteger(k) || k < 1 || k > NEWEST)) throw new Error(`--back takes releases back, each 1 to ${NEWEST}\n${USAGE}`);

const version = (n: number) => `r${n}`;
const seconds = (ms: number) => (ms / 1000).toFixed(1);

/** The hub's helper wants a test context only to skip; a bench that cannot run says why and fails. */
const noSkip = { skip: (why: string) => { throw new Error(`the deploy bench cannot run here: ${why}`); } } as unknown as TestContext;

async function main(): Promise<void> {
  const versions = Array.from({ length: RELEASES }, (_, n) => version(n));
  await withDeployHub(noSkip, { name: 'bench-deploy', hosts: 1, swarm: true, app: 'benchapp', versions, cliTimeoutMs: 300_000 }, async ({ hosts, releases: rel, dir, ok }) => {
    const host = hosts[0]!;
    const timed = async (run: () => Promise<unknown>) => {
      const t0 = performance.now();
      await run();
      return performance.now() - t0;
    };
    const file = join(dir, 'wharf.yaml');
    await writeFile(
      file,
      `app: benchapp
container: { network: host, stopTimeout: 2s }
rollout: { parallelism: ${PARALLELISM}, order: start-first, monitor: ${MONITOR}, healthTimeout: 60s }
environments:
  swarm:
    swarm: { target: bench-host, service: viawharf }
    replicas: ${REPLICAS}
  hosts:
    targets: [bench-host]
    replicas: ${REPLICAS}
`,
    );
    await ok('target', 'add', 'bench-host', host.endpoint, '--apps', 'benchapp', '--allow', 'network-host');
    await ok('apply', '-f', file);
    // The history: every release deployed once, so that each of the last 10 is one that ran.
    const setupFrom = performance.now();
    for (let n = 0; n < RELEASES; n++) await ok('release', 'benchapp', version(n), '--env', 'swarm', '--deploy');
    // docker's service: on the newest release, the one before it as its previous spec (what `docker service rollback`
    // goes back to: one step is all Swarm keeps).
    const image = (n: number) => `${rel.image}@${rel.releases[version(n)]!.digest}`;
    const update = (n: number) =>
      host.mustDocker(
        ['service', 'update', '--detach=false', '--quiet', '--with-registry-auth', '--image', image(n),
          '--update-parallelism', String(PARALLELISM), '--update-order', 'start-first', '--update-monitor', MONITOR, '--update-failure-action', 'rollback', 'bycli'],
        300_000,
      );
    await host.mustDocker(['service', 'create', '--detach=false', '--quiet', '--with-registry-auth', '--name', 'bycli', '--replicas', String(REPLICAS), '--network', 'host',
      '--stop-grace-period', '2s', '--rollback-parallelism', String(PARALLELISM), '--rollback-order', 'start-first', '--rollback-monitor', MONITOR, image(NEWEST - 1)], 300_000);
    await update(NEWEST);
    console.error(`setup: ${RELEASES} releases deployed through wharf, docker's service created, in ${seconds(performance.now() - setupFrom)} s`);

    const times = {
      deploy: [] as number[],
      update: [] as number[],
      hosts: [] as number[],
      cliBack: [] as number[],
      back: new Map<number, number[]>(BACK.map((k) => [k, []])),
      backAlone: new Map<number, number[]>(BACK.map((k) => [k, []])),
    };
    const loads: string[] = [];
    let round = 0;
    for (let run = 0; run < RUNS; run++) {
      for (const k of BACK) {
        loads.push((await readFile('/proc/loadavg', 'utf8')).split(' ')[0]!);
        // Back k releases (a Swarm update to that release's pinned digest), then docker's own one-step rollback.
        times.back.get(k)!.push(await timed(() => ok('rollback', 'benchapp', '--env', 'swarm', '--to', version(NEWEST - k), '--deploy')));
        times.cliBack.push(await timed(() => host.mustDocker(['service', 'rollback', '--detach=false', '--quiet', 'bycli'], 300_000)));
        // Forward to the newest again: the release waits as pending until `wharf deploy` ships it.
        await ok('release', 'benchapp', version(NEWEST), '--env', 'swarm');
        times.deploy.push(await timed(() => ok('deploy', 'benchapp', '--env', 'swarm')));
        times.update.push(await timed(() => update(NEWEST)));
        round++;
        console.error(`round ${round} (k = ${k}, load ${loads.at(-1)}): rollback ${seconds(times.back.get(k)!.at(-1)!)} s, docker rollback ${seconds(times.cliBack.at(-1)!)} s, deploy ${seconds(times.deploy.at(-1)!)} s, docker update ${seconds(times.update.at(-1)!)} s`);
      }
    }
    // Each replica's health check is a `runc exec` a second (~0.1 CPU s): with docker's service beside Wharf's, 10
    // replicas probed at once keep about one of this 2-vCPU machine's cores busy. That is fair to the ratios above (each
    // command runs beside the other's service), but the rollback goal is about one service on its host: the rollbacks
    // are timed again with docker's service gone, and the Docker host's rollout with no service beside it.
    const gone = async (services: string[]) => {
      await host.mustDocker(['service', 'rm', ...services]);
      const filters = services.flatMap((name) => ['--filter', `label=com.docker.swarm.service.name=${name}`]);
      for (let i = 0; (await host.mustDocker(['ps', '-q', ...filters])).stdout.trim(); i++) {
        if (i >= 600) throw new Error(`the containers of ${services.join(', ')} did not stop within 60 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await gone(['bycli']);
    for (let run = 0; run < RUNS; run++) {
      for (const k of BACK) {
        loads.push((await readFile('/proc/loadavg', 'utf8')).split(' ')[0]!);
        times.backAlone.get(k)!.push(await timed(() => ok('rollback', 'benchapp', '--env', 'swarm', '--to', version(NEWEST - k), '--deploy')));
        await ok('release', 'benchapp', version(NEWEST), '--env', 'swarm', '--deploy');
        console.error(`alone (k = ${k}, load ${loads.at(-1)}): rollback ${seconds(times.backAlone.get(k)!.at(-1)!)} s`);
      }
    }
    await gone(['viawharf']);
    await ok('release', 'benchapp', version(NEWEST), '--env', 'hosts', '--deploy');
    for (let i = 0; i < RUNS * BACK.length; i++) {
      loads.push((await readFile('/proc/loadavg', 'utf8')).split(' ')[0]!);
      // Between the two newest releases.
      await ok('release', 'benchapp', version(i % 2 === 0 ? NEWEST - 1 : NEWEST), '--env', 'hosts');
      times.hosts.push(await timed(() => ok('deploy', 'benchapp', '--env', 'hosts')));
      console.error(`hosts ${i + 1} (load ${loads.at(-1)}): deploy ${seconds(times.hosts.at(-1)!)} s`);
    }
    const row = (what: string, xs: number[]) => `| ${what} | ${seconds(median(xs))} s | ${xs.map(seconds).join(', ')} |`;
    console.log(`\n${REPLICAS} replicas, parallelism ${PARALLELISM}, start-first, monitor ${MONITOR}, health check every 1 s; ${RUNS} run(s) of k = ${BACK.join(', ')}\n`);
    console.log('| command, until all replicas run the release healthy | median | runs |');
    console.log('|---|---|---|');
    console.log(row('`wharf deploy` to a Swarm service (the newest release, pending)', times.deploy));
    console.log(row('`docker service update --detach=false` (same UpdateConfig)', times.update));
    for (const k of BACK) console.log(row(`\`wharf rollback --to <${k} back> --deploy\` (Swarm service)`, times.back.get(k)!));
    console.log(row('`docker service rollback --detach=false` (1 back, same RollbackConfig)', times.cliBack));
    for (const k of BACK) console.log(row(`\`wharf rollback --to <${k} back> --deploy\`, docker's service gone`, times.backAlone.get(k)!));
    console.log(row("`wharf deploy` to a Docker host (Wharf's own rollout, 5 replicas at once), no service beside", times.hosts));
    const ratios = times.deploy.map((w, i) => w / times.update[i]!);
    const backs = [...times.back.values()].flat();
    const alone = [...times.backAlone.values()].flat();
    console.log(`\nwharf deploy / docker service update, round by round: ${ratios.map((r) => r.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(2)}; goal ≤ 1.2)`);
    console.log(`slowest wharf rollback: ${seconds(Math.max(...backs))} s beside docker's service, ${seconds(Math.max(...alone))} s alone (goal < 15 s)`);
    console.log(`load average (1 min) at the start of each round (the Swarm rounds, then the Docker host's): ${loads.join(', ')}`);
  });
}

// Awaited at the top, so that `npm run bench -- --deploy` (bench/run.ts imports this file) waits for the runs.
await main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
