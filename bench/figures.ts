// The figures the bench takes, with their sizes (full and --quick) and the targets from issue 2.
import type { BlobSource } from './blobs.js';
import { PULL_REPO, STORM_REPO, STORM_TAG, TAGS_REPO, type Fixtures } from './fixtures.js';
import { runHeadLoad } from './headload.js';
import { MANIFEST_ACCEPT } from './oci.js';
import { cpuSample, pullBlobs, pullStorm, pushBlobs, timed, type Sample } from './load.js';
import { CpuMeter } from './procstat.js';
import type { ServerName } from './registries.js';
import { runWrk } from './wrk.js';

export const MiB = 1024 * 1024;

export interface Settings {
  runs: number;
  monolithic: { size: number; count: number; clients: number };
  chunked: { size: number; count: number; chunk: number; clients: number };
  pull: { size: number; oneClientGets: number; manyClients: number; manyClientsGets: number };
  requests: { seconds: number; warmupSeconds: number; connections: number; threads: number };
  tagCount: number;
  storm: { clients: number; layers: number[] };
  bigPush: number;
}

export const FULL: Settings = {
  runs: 3,
  monolithic: { size: 16 * MiB, count: 64, clients: 4 },
  chunked: { size: 64 * MiB, count: 8, chunk: 8 * MiB, clients: 4 },
  pull: { size: 256 * MiB, oneClientGets: 8, manyClients: 16, manyClientsGets: 32 },
  requests: { seconds: 5, warmupSeconds: 2, connections: 64, threads: 2 },
  tagCount: 1000,
  storm: { clients: 32, layers: [20, 10, 5, 3, 2].map((n) => n * MiB) },
  bigPush: 1024 * MiB,
};

export const QUICK: Settings = {
  runs: 1,
  monolithic: { size: 4 * MiB, count: 16, clients: 4 },
  chunked: { size: 16 * MiB, count: 4, chunk: 4 * MiB, clients: 4 },
  pull: { size: 64 * MiB, oneClientGets: 4, manyClients: 16, manyClientsGets: 16 },
  requests: { seconds: 1, warmupSeconds: 0, connections: 64, threads: 2 },
  tagCount: 1000,
  storm: { clients: 32, layers: [4, 2, 1, 1, 1].map((n) => n * MiB) },
  bigPush: 256 * MiB,
};

export interface Target {
  name: ServerName;
  url: string;
  pid: number;
}

export interface Context {
  settings: Settings;
  source: BlobSource;
  fixtures: Fixtures;
  wrkScript: string;
}

export interface Measurement {
  value: number;
  p99Ms?: number;
  sample: Sample;
}

/** What Wharf must reach: a multiple of Distribution's figure, or at most an absolute amount (peak RSS). */
export type Goal = { times: number } | { faster: true } | { belowMiB: number };

export interface Figure {
  id: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  /** nginx serves the same request as a ceiling. */
  nginx: boolean;
  goal?: Goal;
  /** The figure also records the server's peak RSS, reported as its own row. */
  peakRss?: { label: string; goal: Goal };
  needs: 'pull' | 'storm' | 'tags' | 'none';
  warmup?(target: Target, context: Context): Promise<void>;
  measure(target: Target, context: Context, run: number): Promise<Measurement>;
}

const mib = (bytes: number) => (bytes % (1024 * MiB) === 0 ? `${bytes / 1024 / MiB} GiB` : `${bytes / MiB} MiB`);

function throughput(bytes: number, sample: Sample): Measurement {
  return { value: bytes / MiB / sample.wallSeconds, sample };
}

/** Runs a load generator that reports its own CPU (wrk, the HEAD load), adding the server's and the rest of the machine's. */
async function withServerCpu<T extends { clientCpu: number; wallSeconds: number }>(
  pid: number,
  run: () => Promise<T>,
): Promise<{ result: T; sample: Sample }> {
  const meter = new CpuMeter(pid);
  const result = await run();
  return { result, sample: { wallSeconds: result.wallSeconds, ...cpuSample(meter, result.clientCpu) } };
}

function wrkFigure(id: string, label: string, path: string, needs: Figure['needs'], headers: Record<string, string>): Figure {
  const load = (target: Target, context: Context, seconds: number) => {
    const { connections, threads } = context.settings.requests;
    return runWrk({ url: `${target.url}${path}`, script: context.wrkScript, seconds, connections, threads, headers });
  };
  return {
    id,
    label,
    unit: 'req/s',
    better: 'higher',
    nginx: true,
    goal: { times: 5 },
    needs,
    async warmup(target, context) {
      if (context.settings.requests.warmupSeconds > 0) await load(target, context, context.settings.requests.warmupSeconds);
    },
    async measure(target, context) {
      const { result, sample } = await withServerCpu(target.pid, () => load(target, context, context.settings.requests.seconds));
      if (result.errors > 0) throw new Error(`${label} on ${target.name}: ${result.errors} errors in ${result.requests} requests`);
      return { value: result.requestsPerSecond, p99Ms: result.p99Ms, sample };
    },
  };
}

export function figures(settings: Settings): Figure[] {
  const { monolithic, chunked, pull, storm, requests } = settings;
  const manifestPath = `/v2/${STORM_REPO}/manifests/${STORM_TAG}`;
  return [
    wrkFigure(
      'manifest-get',
      `manifest GET by tag, ${requests.connections} connections`,
      manifestPath,
      'storm',
      { Accept: MANIFEST_ACCEPT },
    ),
    {
      id: 'manifest-head',
      label: `manifest HEAD by tag, ${requests.connections} connections`,
      unit: 'req/s',
      better: 'higher',
      nginx: true,
      goal: { times: 5 },
      needs: 'storm',
      async warmup(target, context) {
        const { warmupSeconds: seconds, connections } = context.settings.requests;
        if (seconds > 0) await runHeadLoad({ url: `${target.url}${manifestPath}`, seconds, connections, headers: { Accept: MANIFEST_ACCEPT } });
      },
      async measure(target, context) {
        const { seconds, connections } = context.settings.requests;
        const { result, sample } = await withServerCpu(target.pid, () =>
          runHeadLoad({ url: `${target.url}${manifestPath}`, seconds, connections, headers: { Accept: MANIFEST_ACCEPT } }),
        );
        if (result.errors > 0) throw new Error(`manifest HEAD on ${target.name}: ${result.errors} errors in ${result.requests} requests`);
        return { value: result.requestsPerSecond, p99Ms: result.p99Ms, sample };
      },
    },
    wrkFigure(
      'tags-list',
      `tags/list of ${settings.tagCount.toLocaleString('en-US')} tags, ${requests.connections} connections`,
      `/v2/${TAGS_REPO}/tags/list`,
      'tags',
      {},
    ),
    {
      id: 'pull-c1',
      label: `blob pull, 1 client (${mib(pull.size)} × ${pull.oneClientGets})`,
      unit: 'MiB/s',
      better: 'higher',
      nginx: true,
      goal: { times: 1 },
      needs: 'pull',
      async measure(target, context) {
        const blob = context.fixtures.pullBlob;
        const sample = await timed(target.pid, () => pullBlobs(target.url, PULL_REPO, blob, pull.oneClientGets, 1));
        return throughput(blob.size * pull.oneClientGets, sample);
      },
    },
    {
      id: 'pull-c16',
      label: `blob pull, ${pull.manyClients} clients (${mib(pull.size)} × ${pull.manyClientsGets})`,
      unit: 'MiB/s',
      better: 'higher',
      nginx: true,
      goal: { times: 1 },
      needs: 'pull',
      async measure(target, context) {
        const blob = context.fixtures.pullBlob;
        const sample = await timed(target.pid, () =>
          pullBlobs(target.url, PULL_REPO, blob, pull.manyClientsGets, pull.manyClients),
        );
        return throughput(blob.size * pull.manyClientsGets, sample);
      },
    },
    {
      id: 'pull-storm',
      label: `pull storm: ${storm.clients} clients × (manifest + ${storm.layers.length} layers, ${mib(storm.layers.reduce((a, b) => a + b, 0))})`,
      unit: 's',
      better: 'lower',
      nginx: true,
      goal: { faster: true },
      peakRss: { label: 'peak RSS during the pull storm', goal: { belowMiB: 150 } },
      needs: 'storm',
      async measure(target) {
        const sample = await timed(target.pid, () => pullStorm(target.url, STORM_REPO, STORM_TAG, storm.clients), true);
        return { value: sample.wallSeconds, sample };
      },
    },
    {
      id: 'push-mono',
      label: `blob push, monolithic ${mib(monolithic.size)} × ${monolithic.count}, ${monolithic.clients} clients`,
      unit: 'MiB/s',
      better: 'higher',
      nginx: false,
      goal: { times: 2 },
      needs: 'none',
      async measure(target, context, run) {
        const blobs = Array.from({ length: monolithic.count }, (_, i) =>
          context.source.blob(monolithic.size, `push-mono/${target.name}/${run}/${i}`),
        );
        const sample = await timed(target.pid, () => pushBlobs(target.url, 'bench/push', blobs, monolithic.clients));
        return throughput(monolithic.size * monolithic.count, sample);
      },
    },
    {
      id: 'push-chunked',
      label: `blob push, chunked ${mib(chunked.size)} × ${chunked.count} in ${mib(chunked.chunk)} PATCHes, ${chunked.clients} clients`,
      unit: 'MiB/s',
      better: 'higher',
      nginx: false,
      goal: { times: 2 },
      needs: 'none',
      async measure(target, context, run) {
        const blobs = Array.from({ length: chunked.count }, (_, i) =>
          context.source.blob(chunked.size, `push-chunked/${target.name}/${run}/${i}`),
        );
        const sample = await timed(target.pid, () =>
          pushBlobs(target.url, 'bench/push', blobs, chunked.clients, chunked.chunk),
        );
        return throughput(chunked.size * chunked.count, sample);
      },
    },
    {
      id: 'push-big',
      label: `blob push, one ${mib(settings.bigPush)} blob, 1 client`,
      unit: 'MiB/s',
      better: 'higher',
      nginx: false,
      peakRss: { label: `peak RSS during the ${mib(settings.bigPush)} push`, goal: { belowMiB: 150 } },
      needs: 'none',
      async measure(target, context, run) {
        const blob = context.source.blob(settings.bigPush, `push-big/${target.name}/${run}`);
        const sample = await timed(target.pid, () => pushBlobs(target.url, 'bench/big', [blob], 1), true);
        return throughput(blob.size, sample);
      },
    },
  ];
}
