// `npm run bench`: runs Wharf, CNCF Distribution and nginx side by side on this machine, takes the figures of issue 2 and prints them with their ratios.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlobSource } from './blobs.js';
import { figures, FULL, MiB, QUICK, type Context, type Figure, type Target } from './figures.js';
import { makeFixtures, seedRegistry, writeStaticRoot, type Needs } from './fixtures.js';
import { distributionVersion, killAll, startDistribution, startNginx, startPostgres, startWharf, startWharfCluster, type Server, type ServerName } from './registries.js';
import { basicAuthorization } from './credentials.js';
import { authTable, clusterTable, cpuTable, figuresTable, postgresTable, type Result } from './report.js';
import { writeWrkScript } from './wrk.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ALL_SERVERS: ServerName[] = ['wharf', 'wharf-anon', 'wharf-pg', 'wharf-pg2', 'distribution', 'nginx'];
/** What runs without --servers: wharf-pg needs a PostgreSQL cluster (started by the bench) and is asked for by --pg. */
const DEFAULT_SERVERS: ServerName[] = ['wharf', 'wharf-anon', 'distribution', 'nginx'];

const USAGE = `usage: npm run bench -- [--quick] [--only FIGURE,…] [--servers wharf,wharf-anon,distribution,nginx] [--runs N]
                       [--json FILE] [--keep] [--wharf-node-args "ARGS"] [--pg]
  --quick            1 run with smaller sizes: a smoke check
  --only             figures by id or id prefix (e.g. --only pull,manifest-get)
  --servers          which servers to run (default: all four); wharf has authentication on and its clients log in;
                     wharf-anon is the same Wharf with clients that send no credentials (it needs wharf), for the
                     figures that compare the two; wharf-pg is Wharf with its metadata on PostgreSQL
  --pg               add wharf-pg: the same figures with the metadata on PostgreSQL (the bench starts a cluster
                     with scripts/postgres.sh, or uses the admin URL in WHARF_BENCH_POSTGRES), against SQLite; and
                     wharf-pg2: two instances over that database and one data directory behind nginx
  --runs             runs per figure (default 3; 1 with --quick); the median is reported
  --json             also write every run's measurements to FILE
  --keep             keep the temp dir (server logs) and print where it is
  --wharf-node-args  extra node flags for the Wharf servers, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  --s3               the S3 figures instead (bench/s3.ts: Wharf vs Distribution's s3-aws driver on one Ceph RGW;
                     needs WHARF_TEST_S3_*; options --blobs N --size MiB --concurrency N --big MiB --runs N)
  --deploy           the deploy figures instead (bench/deploy.ts, also --only deploy: Wharf vs docker service
                     update / rollback; needs root and dockerd; options --runs N --parallelism P --monitor 1s)`;

interface Options {
  quick: boolean;
  only: string[];
  servers: ServerName[];
  runs?: number;
  json?: string;
  keep: boolean;
  wharfNodeArgs: string[];
}

function parseArgs(argv: string[]): Options {
  const options: Options = { quick: false, only: [], servers: DEFAULT_SERVERS, keep: false, wharfNodeArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
      return next;
    };
    if (arg === '--quick') options.quick = true;
    else if (arg === '--keep') options.keep = true;
    else if (arg === '--only') options.only.push(...value().split(',').filter(Boolean));
    else if (arg === '--json') options.json = value();
    else if (arg === '--wharf-node-args') options.wharfNodeArgs = value().split(' ').filter(Boolean);
    else if (arg === '--pg') options.servers = [...new Set([...options.servers, 'wharf-pg' as const, 'wharf-pg2' as const])];
    else if (arg === '--runs') {
      options.runs = Number(value());
      if (!Number.isInteger(options.runs) || options.runs < 1) throw new Error(`--runs must be a positive integer`);
    } else if (arg === '--servers') {
      const names = value().split(',').filter(Boolean);
      const unknown = names.filter((name) => !ALL_SERVERS.includes(name as ServerName));
      if (unknown.length) throw new Error(`unknown server ${unknown.join(', ')}; known: ${ALL_SERVERS.join(', ')}`);
      options.servers = names as ServerName[];
    } else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  return options;
}

function firstLine(command: string, args: string[]): string {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  return `${result.stdout}${result.stderr}`.split('\n')[0].trim();
}

function machine(): string {
  const model = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? 'unknown';
  return [
    `- CPU: ${availableParallelism()} cores (nproc), ${model}`,
    `- memory: ${(totalmem() / 1024 ** 3).toFixed(1)} GiB; Linux ${release()}`,
    `- Node.js ${process.version}; ${distributionVersion()}; ${firstLine('nginx', ['-v'])}; ${firstLine('wrk', ['-v'])}`,
  ].join('\n');
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

function describe(figure: Figure, server: ServerName, result: Result): string {
  const m = result.measurement;
  if (!m) return `${server}: FAILED ${result.error}`;
  const value = figure.unit === 's' ? m.value.toFixed(2) : Math.round(m.value).toLocaleString('en-US');
  const p99 = m.p99Ms === undefined ? '' : `, p99 ${m.p99Ms.toFixed(2)} ms`;
  const rss = m.sample.peakRssMiB === undefined ? '' : `, peak RSS ${Math.round(m.sample.peakRssMiB)} MiB`;
  const cores = (cpu: number) => (cpu / m.sample.wallSeconds).toFixed(2);
  const cpu = `client ${cores(m.sample.clientCpu)}, server ${cores(m.sample.serverCpu)}, other ${cores(m.sample.otherCpu)}`;
  return `${server}: ${value} ${figure.unit}${p99}${rss} (CPU cores: ${cpu})`;
}

async function main(): Promise<number> {
  // The S3 figures are their own run (bench/s3.ts): Wharf and Distribution over one Ceph RGW.
  if (process.argv.includes('--s3')) {
    await import('./s3.js');
    return 0;
  }
  // So are the deploy figures (bench/deploy.ts): Wharf and docker side by side on a throwaway dockerd and Swarm.
  if (process.argv.includes('--deploy') || process.argv[process.argv.indexOf('--only') + 1] === 'deploy') {
    await import('./deploy.js');
    return Number(process.exitCode ?? 0);
  }
  const options = parseArgs(process.argv.slice(2));
  const settings = { ...(options.quick ? QUICK : FULL) };
  if (options.runs) settings.runs = options.runs;
  const all = figures(settings);
  // An exact id picks that figure alone (pull-c1 is not pull-c16); anything else is a prefix (pull: all three pulls).
  const picks = (wanted: string) =>
    all.some((figure) => figure.id === wanted) ? [wanted] : all.filter((f) => f.id.startsWith(wanted)).map((f) => f.id);
  const wanted = new Set(options.only.flatMap(picks));
  const selected = options.only.length ? all.filter((figure) => wanted.has(figure.id)) : all;
  if (selected.length === 0) throw new Error(`no figure matches --only ${options.only.join(',')}; figures: ${all.map((f) => f.id).join(', ')}`);
  const needs: Needs = {
    pull: selected.some((f) => f.needs === 'pull'),
    storm: selected.some((f) => f.needs === 'storm'),
    tags: selected.some((f) => f.needs === 'tags'),
  };
  if (options.servers.some((name) => name.startsWith('wharf')) && !existsSync(join(REPO_ROOT, 'dist/src/cli/main.js'))) {
    throw new Error('Wharf is not built (dist/src/cli/main.js is missing): run `npm run build`, or leave it out with --servers distribution,nginx');
  }

  const root = mkdtempSync(join(tmpdir(), 'wharf-bench-'));
  chmodSync(root, 0o755); // nginx workers run as nobody and must reach the static files
  const servers: Server[] = [];
  /** what runs beside the servers (the PostgreSQL cluster of wharf-pg), stopped after them */
  const stoppers: (() => Promise<void>)[] = [];
  const cleanUp = async () => {
    await Promise.all(servers.map((server) => server.stop()));
    servers.length = 0;
    for (const stop of stoppers.splice(0)) await stop();
    if (options.keep) log(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
  };
  const interrupted = () => {
    killAll();
    if (!options.keep) rmSync(root, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  try {
    const started = Date.now();
    const load = loadavg()[0];
    if (load > 0.5) log(`warning: load average ${load.toFixed(2)} before the bench: other work on this machine will make the figures noisy`);
    log(`temp dir ${root}; figures: ${selected.map((f) => f.id).join(', ')}; ${settings.runs} run(s) each`);
    const source = new BlobSource(64 * MiB);
    const fixtures = makeFixtures(source, settings.pull.size, settings.storm.layers, settings.tagCount);
    const context: Context = { settings, source, fixtures, wrkScript: writeWrkScript(root) };

    const registries: Server[] = [];
    // Started in this order, so each auth-on Wharf run has its anonymous twin right next to it (see below).
    for (const name of ALL_SERVERS.filter((n) => options.servers.includes(n))) {
      if (name === 'wharf-anon') {
        const wharf = registries.find((r) => r.name === 'wharf');
        if (!wharf) throw new Error('wharf-anon is the Wharf of --servers wharf without credentials: add wharf');
        // The same process: only the clients differ.
        if (selected.some((f) => f.anonymous)) registries.push({ ...wharf, name: 'wharf-anon', login: undefined, stop: async () => undefined });
        continue;
      }
      const dir = join(root, name);
      mkdirSync(dir);
      if (name === 'nginx') {
        if (!selected.some((f) => f.nginx)) continue;
        const staticRoot = join(dir, 'static');
        writeStaticRoot(staticRoot, fixtures, needs);
        servers.push(await startNginx(dir, staticRoot));
      } else {
        let db: string | undefined;
        if (name === 'wharf-pg' || name === 'wharf-pg2') {
          const postgres = await startPostgres(REPO_ROOT, dir, name);
          stoppers.push(postgres.stop);
          db = postgres.url;
        }
        const server =
          name === 'distribution'
            ? await startDistribution(dir)
            : name === 'wharf-pg2'
              ? await startWharfCluster(REPO_ROOT, dir, db!, options.wharfNodeArgs)
              : await startWharf(REPO_ROOT, dir, options.wharfNodeArgs, db);
        servers.push(server);
        registries.push(server);
        log(`${name} listening at ${server.url} (pid ${server.pid})${server.login ? `, authentication on (user ${server.login.user})` : ''}; pushing fixtures`);
        await seedRegistry(server.url, fixtures, needs, server.login ? basicAuthorization(server.login) : {});
      }
    }
    const nginx = servers.find((server) => server.name === 'nginx');

    const results: Result[] = [];
    for (const figure of selected) {
      const measured = registries.filter((r) => r.name !== 'wharf-anon' || figure.anonymous);
      const targets: Target[] = [...measured, ...(figure.nginx && nginx ? [nginx] : [])];
      for (const target of targets) await figure.warmup?.(target, context);
      const failed = new Set<ServerName>();
      for (let run = 0; run < settings.runs; run++) {
        // Alternate which registry goes first, so none always runs on a warmer or a dirtier machine; Wharf's clients
        // with and without credentials stay neighbours (wharf, wharf-anon, distribution; then the other way round),
        // so their ratio compares runs taken moments apart.
        const order = run % 2 ? [...measured].reverse() : measured;
        for (const target of [...order, ...(figure.nginx && nginx ? [nginx] : [])]) {
          if (failed.has(target.name)) continue;
          // Write back what earlier runs left dirty in the page cache, so no run pays for another's writes.
          spawnSync('sync');
          let result: Result;
          try {
            result = { figure: figure.id, server: target.name, run, measurement: await figure.measure(target, context, run) };
          } catch (err) {
            result = { figure: figure.id, server: target.name, run, error: (err as Error).message };
            failed.add(target.name);
          }
          results.push(result);
          log(`[${figure.id}] run ${run + 1}/${settings.runs} ${describe(figure, target.name, result)}`);
        }
      }
    }

    const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
    console.log(
      [
        `## Wharf vs CNCF Distribution, nginx as the ceiling`,
        '',
        `\`${command}\` — medians of ${settings.runs} run(s), ${((Date.now() - started) / 1000).toFixed(0)} s in all, load average ${load.toFixed(2)} at the start`,
        '',
        machine(),
        '',
        figuresTable(selected, results),
        '',
        authTable(selected, results),
        '',
        postgresTable(selected, results),
        '',
        clusterTable(selected, results),
        '',
        'CPU in cores (CPU seconds per second of wall time), medians: the load generator (client) competes with the server for the same cores; "other" is every other process, kernel threads such as disk writeback included (interrupt time is not counted anywhere): a high one means a noisy run.',
        '',
        cpuTable(selected, results),
      ].join('\n'),
    );
    if (options.json) writeFileSync(options.json, JSON.stringify({ settings, results }, null, 2));
    const failures = results.filter((r) => r.error);
    for (const failure of failures) log(`FAILED ${failure.figure} on ${failure.server}: ${failure.error}`);
    return failures.length ? 1 : 0;
  } finally {
    await cleanUp();
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    killAll();
    log(`bench: ${err.message}`);
    process.exit(1);
  },
);
