// A load generator for HEAD requests over keep-alive connections, as wrk would run them: wrk 4.1 cannot do HEAD, since
// after a HEAD response's Content-Length it waits for a body that never comes.
import { performance } from 'node:perf_hooks';
import { RawConnection } from './rawhttp.js';
import type { WrkResult } from './wrk.js';

export interface HeadLoadOptions {
  url: string;
  seconds: number;
  connections: number;
  headers?: Record<string, string>;
}


/** Reports as wrk does; `errors` counts responses other than 200 and failed connections. */
export async function runHeadLoad(options: HeadLoadOptions): Promise<WrkResult> {
  const url = new URL(options.url);
  const path = `${url.pathname}${url.search}`;
  let latencies = new Float64Array(1 << 16);
  let requests = 0;
  let errors = 0;
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const deadline = start + options.seconds * 1000;

  const drive = async () => {
    const connection = new RawConnection(url);
    try {
      while (performance.now() < deadline) {
        const sent = performance.now();
        const res = await connection.request('HEAD', path, options.headers);
        if (res.status !== 200) {
          errors++;
          continue;
        }
        if (requests === latencies.length) {
          const grown = new Float64Array(latencies.length * 2);
          grown.set(latencies);
          latencies = grown;
        }
        latencies[requests++] = performance.now() - sent;
      }
    } catch {
      errors++;
    } finally {
      connection.close();
    }
  };

  await Promise.all(Array.from({ length: options.connections }, drive));
  const wallSeconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const sorted = latencies.subarray(0, requests).sort();
  return {
    requestsPerSecond: requests / wallSeconds,
    p99Ms: requests ? sorted[Math.min(requests - 1, Math.floor(requests * 0.99))] : 0,
    requests,
    errors,
    clientCpu: (cpu.user + cpu.system) / 1e6,
    wallSeconds,
  };
}
