// Concurrent workloads (blob pushes, blob pulls, the pull storm), timed together with the CPU the client and the server spent on them.
import { performance } from 'node:perf_hooks';
import type { BlobBody } from './blobs.js';
import { Client } from './client.js';
import { bearerOver, type Headers, type Login } from './credentials.js';
import { getManifest, layersOf, pullBlob, pushChunked, pushMonolithic } from './oci.js';
import { CpuMeter, PeakRss } from './procstat.js';
import { RawConnection } from './rawhttp.js';

export interface Sample {
  wallSeconds: number;
  /** CPU seconds of the load generator (this process, or wrk). */
  clientCpu: number;
  /** CPU seconds of the server's process tree. */
  serverCpu: number;
  /** CPU seconds of every other process, kernel threads included: noise when it is high. */
  otherCpu: number;
  peakRssMiB?: number;
}

/**
 * Runs `work` over `items` with at most `concurrency` in flight, like that many clients each taking the next item;
 * `worker` tells which of them runs it, so each can keep its own connection.
 */
export async function pool<T>(
  concurrency: number,
  items: readonly T[],
  work: (item: T, worker: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (_: unknown, index: number) => {
    while (next < items.length) await work(items[next++], index);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** Runs `work` with `count` connections to `url`, closing them after. */
async function withConnections(url: string, count: number, work: (connections: RawConnection[]) => Promise<void>): Promise<void> {
  const connections = Array.from({ length: count }, () => new RawConnection(new URL(url)));
  try {
    await work(connections);
  } finally {
    for (const connection of connections) connection.close();
  }
}

/** Times `run`, with this process's CPU as the client's and the server's CPU and, if asked, its peak RSS. */
export async function timed(serverPid: number | number[], run: () => Promise<void>, peakRss = false): Promise<Sample> {
  const rss = peakRss ? new PeakRss(serverPid) : undefined;
  const meter = new CpuMeter(serverPid);
  const clientBefore = process.cpuUsage();
  const start = performance.now();
  let peakRssMiB: number | undefined;
  try {
    await run();
  } finally {
    peakRssMiB = rss?.stop();
  }
  const wallSeconds = (performance.now() - start) / 1000;
  const client = process.cpuUsage(clientBefore);
  return { wallSeconds, ...cpuSample(meter, (client.user + client.system) / 1e6), peakRssMiB };
}

/** The CPU split of a measurement, given the client's own CPU seconds. */
export function cpuSample(meter: CpuMeter, clientCpu: number): { clientCpu: number; serverCpu: number; otherCpu: number } {
  const { serverCpu, machineCpu } = meter.read();
  return { clientCpu, serverCpu, otherCpu: Math.max(0, machineCpu - serverCpu - clientCpu) };
}

/** Pushes `blobs` from `concurrency` clients; monolithic, or in PATCH chunks of `chunkSize` bytes. */
export async function pushBlobs(
  url: string,
  repo: string,
  blobs: BlobBody[],
  concurrency: number,
  chunkSize?: number,
  auth: Headers = {},
): Promise<void> {
  const client = new Client(url, concurrency, auth);
  try {
    await pool(concurrency, blobs, (blob) =>
      chunkSize ? pushChunked(client, repo, blob, chunkSize) : pushMonolithic(client, repo, blob),
    );
  } finally {
    client.close();
  }
}

/** GETs one blob `count` times from `concurrency` clients. */
export async function pullBlobs(url: string, repo: string, blob: BlobBody, count: number, concurrency: number, auth: Headers = {}): Promise<void> {
  await withConnections(url, concurrency, (connections) =>
    pool(concurrency, Array.from({ length: count }), (_, worker) => pullBlob(connections[worker], repo, blob.digest, blob.size, auth)),
  );
}

/**
 * `clients` clients, each with its own connections, each GET the image manifest by tag and then every layer it names,
 * `layersAtOnce` at a time (docker's default for concurrent downloads is 3). With a `login`, each client first fetches
 * its own pull token from /token with it, as `docker pull` does, and that is timed too.
 */
export async function pullStorm(url: string, repo: string, tag: string, clients: number, login?: Login, layersAtOnce = 3): Promise<void> {
  await Promise.all(
    Array.from({ length: clients }, () =>
      withConnections(url, layersAtOnce, async (connections) => {
        const auth = login ? await bearerOver(connections[0], login, repo, ['pull']) : {};
        const layers = layersOf(await getManifest(connections[0], repo, tag, auth));
        await pool(layersAtOnce, layers, (layer, worker) => pullBlob(connections[worker], repo, layer.digest, layer.size, auth));
      }),
    ),
  );
}
