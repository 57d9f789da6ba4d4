// The figures the bench takes, with their sizes (full and --quick) and the targets from issue 2.
import type { BlobSource } from './blobs.js';
import { authorization, type Headers, type Login, type Scheme } from './credentials.js';
import { PULL_REPO, STORM_REPO, STORM_TAG, TAGS_REPO, type Fixtures } from './fixtures.js';
import { runHeadLoad } from './headload.js';
import { MANIFEST_ACCEPT } from './oci.js';
import { cpuSample, pullBlobs, pullStorm, pushBlobs, timed, type Sample } from './load.js';
import { CpuMeter } from './procstat.js';
import type { ServerName } from './registries.js';
import { runWrk, type WrkResult } from './wrk.js';

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
  pid: number | number[];
  /** whom the clients log in as; absent when the server has no authentication */
  login?: Login;
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
  /** How the clients authenticate to a server with authentication on: Bearer tokens from /token, or Basic. */
  scheme: Scheme;
  /** Also measured on Wharf with authentication off, next to each auth-on run: what authentication costs. */
  anonymous: boolean;
  warmup?(target: Target, context: Context): Promise<void>;
  measure(target: Target, context: Context, run: number): Promise<Measurement>;
}

const mib = (bytes: number) => (bytes % (1024 * MiB) === 0 ? `${bytes / 1024 / MiB} GiB` : `${bytes / MiB} MiB`);

/** Runs a load generator that reports its own CPU (wrk, the HEAD load), adding the server's and the rest of the machine's. */
async function withServerCpu<T extends { clientCpu: number; wallSeconds: number }>(
  pid: number | number[],
  run: () => Promise<T>,
): Promise<{ result: T; sample: Sample }> {
  const meter = new CpuMeter(pid);
  const result = await run();
  return { result, sample: { wallSeconds: result.wallSeconds, ...cpuSample(meter, result.clientCpu) } };
}

/** Small requests for `seconds` at a fixed number of connections, with `auth` on every one. */
type RequestLoad = (url: string, seconds: number, context: Context, auth: Headers) => Promise<WrkResult>;

const wrkLoad =
  (headers: Headers): RequestLoad =>
  (url, seconds, { settings, wrkScript }, auth) =>
    runWrk({ ...settings.requests, url, script: wrkScript, seconds, headers: { ...headers, ...auth } });

const headLoad =
  (headers: Headers): RequestLoad =>
  (url, seconds, { settings }, auth) =>
    runHeadLoad({ url, seconds, headers: { ...headers, ...auth }, connections: settings.requests.connections });

/** The pull credentials of a figure's clients for `repo` on `target` (none without auth); a token is fetched untimed. */
const pullAuth = (target: Target, scheme: Scheme, repo: string) => authorization(target.url, target.login, scheme, repo, ['pull']);

function requestFigure(id: string, label: string, repo: string, path: string, needs: Figure['needs'], scheme: Scheme, load: RequestLoad): Figure {
  return {
    id,
    label,
    unit: 'req/s',
    better: 'higher',
    nginx: true,
    goal: { times: 5 },
    needs,
    scheme,
    anonymous: true,
    async warmup(target, context) {
      const seconds = context.settings.requests.warmupSeconds;
      if (seconds > 0) await load(`${target.url}${path}`, seconds, context, await pullAuth(target, scheme, repo));
    },
    async measure(target, context) {
      const seconds = context.settings.requests.seconds;
      const auth = await pullAuth(target, scheme, repo);
      const { result, sample } = await withServerCpu(target.pid, () => load(`${target.url}${path}`, seconds, context, auth));
      if (result.errors > 0) throw new Error(`${result.errors} errors in ${result.requests} requests`);
      return { value: result.requestsPerSecond, p99Ms: result.p99Ms, sample };
    },
  };
}

function pullFigure(id: string, clients: number, gets: number, size: number, anonymous: boolean): Figure {
  return {
    id,
    label: `blob pull, ${clients} client${clients > 1 ? 's' : ''} (${mib(size)} × ${gets})`,
    unit: 'MiB/s',
    better: 'higher',
    nginx: true,
    goal: { times: 1 },
    needs: 'pull',
    scheme: 'bearer',
    anonymous,
    async warmup(target, context) {
      // One untimed download first: Wharf writes uploads around the page cache, so its first read of a freshly
      // pushed blob comes from disk, while the other servers' copies are still cached from their push. The figure
      // is the steady state of a blob being pulled.
      const auth = await pullAuth(target, 'bearer', PULL_REPO);
      await pullBlobs(target.url, PULL_REPO, context.fixtures.pullBlob, 1, 1, auth);
    },
    async measure(target, context) {
      const blob = context.fixtures.pullBlob;
      const auth = await pullAuth(target, 'bearer', PULL_REPO);
      const sample = await timed(target.pid, () => pullBlobs(target.url, PULL_REPO, blob, gets, clients, auth));
      return { value: (blob.size * gets) / MiB / sample.wallSeconds, sample };
    },
  };
}

interface Push {
  size: number;
  count: number;
  clients: number;
  /** PATCH chunks of this many bytes; monolithic without. */
  chunk?: number;
}

/** Pushes `count` new blobs; with `peakRss`, the server's peak RSS is reported under that label. */
function pushFigure(id: string, label: string, push: Push, goal?: Goal, peakRss?: string): Figure {
  return {
    id,
    label,
    unit: 'MiB/s',
    better: 'higher',
    nginx: false,
    goal,
    peakRss: peakRss ? { label: peakRss, goal: { belowMiB: 150 } } : undefined,
    needs: 'none',
    scheme: 'bearer',
    anonymous: false,
    async measure(target, context, run) {
      const blobs = Array.from({ length: push.count }, (_, i) => context.source.blob(push.size, `${id}/${target.name}/${run}/${i}`));
      const repo = `bench/${id}`;
      const auth = await authorization(target.url, target.login, 'bearer', repo, ['pull', 'push']);
      const load = () => pushBlobs(target.url, repo, blobs, push.clients, push.chunk, auth);
      const sample = await timed(target.pid, load, peakRss !== undefined);
      return { value: (push.size * push.count) / MiB / sample.wallSeconds, sample };
    },
  };
}

export function figures(settings: Settings): Figure[] {
  const { monolithic, chunked, pull, storm, requests } = settings;
  const manifestPath = `/v2/${STORM_REPO}/manifests/${STORM_TAG}`;
  const accept = { Accept: MANIFEST_ACCEPT };
  const connections = `${requests.connections} connections`;
  return [
    requestFigure('manifest-get', `manifest GET by tag, ${connections}`, STORM_REPO, manifestPath, 'storm', 'bearer', wrkLoad(accept)),
    // HTTP Basic on every request, as clients without the token flow send it: the credential cache's figure.
    requestFigure('manifest-head', `manifest HEAD by tag, ${connections}`, STORM_REPO, manifestPath, 'storm', 'basic', headLoad(accept)),
    requestFigure(
      'tags-list',
      `tags/list of ${settings.tagCount.toLocaleString('en-US')} tags, ${connections}`,
      TAGS_REPO,
      `/v2/${TAGS_REPO}/tags/list`,
      'tags',
      'bearer',
      wrkLoad({}),
    ),
    pullFigure('pull-c1', 1, pull.oneClientGets, pull.size, false),
    pullFigure('pull-c16', pull.manyClients, pull.manyClientsGets, pull.size, true),
    {
      id: 'pull-storm',
      label: `pull storm: ${storm.clients} clients × (manifest + ${storm.layers.length} layers, ${mib(storm.layers.reduce((a, b) => a + b, 0))})`,
      unit: 's',
      better: 'lower',
      nginx: true,
      goal: { faster: true },
      peakRss: { label: 'peak RSS during the pull storm', goal: { belowMiB: 150 } },
      needs: 'storm',
      scheme: 'bearer',
      anonymous: true,
      async warmup(target) {
        // One untimed client first, for the reason the blob pulls have one.
        await pullStorm(target.url, STORM_REPO, STORM_TAG, 1, target.login);
      },
      async measure(target) {
        const sample = await timed(target.pid, () => pullStorm(target.url, STORM_REPO, STORM_TAG, storm.clients, target.login), true);
        return { value: sample.wallSeconds, sample };
      },
    },
    pushFigure(
      'push-mono',
      `blob push, monolithic ${mib(monolithic.size)} × ${monolithic.count}, ${monolithic.clients} clients`,
      monolithic,
      { times: 2 },
    ),
    pushFigure(
      'push-chunked',
      `blob push, chunked ${mib(chunked.size)} × ${chunked.count} in ${mib(chunked.chunk)} PATCHes, ${chunked.clients} clients`,
      chunked,
      { times: 2 },
    ),
    pushFigure(
      'push-big',
      `blob push, one ${mib(settings.bigPush)} blob, 1 client`,
      { size: settings.bigPush, count: 1, clients: 1 },
      undefined,
      `peak RSS during the ${mib(settings.bigPush)} push`,
    ),
  ];
}
