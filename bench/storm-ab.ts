// `node dist/bench/storm-ab.js [--runs N] [--anonymous] ROOT…`: the pull storm of `npm run bench` against one Wharf
// per ROOT (a checkout or a copy of one, built: `bin/` and `dist/`), all running at once, their storms alternating
// (A B, B A, …), with the server CPU each storm cost — for an A/B of two builds of the blob path on a machine shared
// with other work, where the storm's wall time swings more than the difference being measured. The storm, fixtures
// and login are the bench's own (bench/load.ts, bench/fixtures.ts); only the comparison is new.
//   e.g. cp -r bin dist package.json /tmp/before && ln -s $PWD/node_modules /tmp/before/ (at the old commit), then
//   node dist/bench/storm-ab.js /tmp/before .
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BlobSource } from './blobs.js';
import { basicAuthorization } from './credentials.js';
import { STORM_REPO, STORM_TAG, makeFixtures, seedRegistry } from './fixtures.js';
import { FULL } from './figures.js';
import { pullStorm, timed } from './load.js';
import { killAll, startWharf, type Server } from './registries.js';

const USAGE = 'usage: node dist/bench/storm-ab.js [--runs N] [--anonymous] ROOT [ROOT…]';
const MiB = 1 << 20;

interface Arm {
  label: string;
  server: Server;
  login: Server['login'];
  cpu: number[];
  wall: number[];
  rss: number[];
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let runs = 7;
  let anonymous = false;
  const roots: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--runs') runs = Number(args[++i]);
    else if (args[i] === '--anonymous') anonymous = true;
    else if (args[i]!.startsWith('--')) throw new Error(USAGE);
    else roots.push(resolve(args[i]!));
  }
  if (roots.length === 0 || !Number.isInteger(runs) || runs < 1) throw new Error(USAGE);
  const dir = mkdtempSync(join(tmpdir(), 'wharf-storm-ab-'));
  const servers: Server[] = [];
  try {
    const fixtures = makeFixtures(new BlobSource(64 * MiB), MiB, FULL.storm.layers, 1);
    const arms: Arm[] = [];
    for (const [i, root] of roots.entries()) {
      const own = join(dir, String(i));
      mkdirSync(own);
      const server = await startWharf(root, own);
      servers.push(server);
      await seedRegistry(server.url, fixtures, { pull: false, storm: true, tags: false }, basicAuthorization(server.login!));
      const login = anonymous ? undefined : server.login;
      // Untimed: one client (the bench's warm-up), then one whole storm, so each build's JIT and pool are warm.
      await pullStorm(server.url, STORM_REPO, STORM_TAG, 1, login);
      await pullStorm(server.url, STORM_REPO, STORM_TAG, FULL.storm.clients, login);
      arms.push({ label: root, server, login, cpu: [], wall: [], rss: [] });
    }
    const load = loadavg().map((l) => l.toFixed(2)).join(' ');
    for (let run = 0; run < runs; run++) {
      for (const arm of run % 2 ? [...arms].reverse() : arms) {
        const sample = await timed(arm.server.pid, () => pullStorm(arm.server.url, STORM_REPO, STORM_TAG, FULL.storm.clients, arm.login), true);
        arm.cpu.push(sample.serverCpu);
        arm.wall.push(sample.wallSeconds);
        arm.rss.push(sample.peakRssMiB ?? 0);
      }
    }
    console.log(`\`node dist/bench/storm-ab.js --runs ${runs}${anonymous ? ' --anonymous' : ''} …\`: ${runs} storms each, alternating; load average ${load} at the start, ${loadavg()[0]!.toFixed(2)} at the end`);
    console.log('| build | server CPU per storm, median (each run) | wall, median | peak RSS, median (max) |');
    console.log('| --- | ---: | ---: | ---: |');
    for (const arm of arms) {
      console.log(
        `| ${arm.label} | ${median(arm.cpu).toFixed(2)} CPU s (${arm.cpu.map((c) => c.toFixed(2)).join(', ')}) | ${median(arm.wall).toFixed(2)} s | ${median(arm.rss).toFixed(0)} MiB (${Math.max(...arm.rss).toFixed(0)}) |`,
      );
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

process.once('SIGINT', () => {
  killAll();
  process.exit(130);
});
await main();
