// Loopback networking for tests: a free port for a container to listen on, and waiting for it to answer.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A port that was free on 127.0.0.1 a moment ago, for a container or a server started later. It is drawn at random
 * from below the kernel's ephemeral range: a port from inside it (what `listen(0)` gives) can be taken before it is
 * used by any outgoing connection (a database pool, the Docker client) or any `listen(0)` of the other suite running
 * beside this one, which is how an app container once failed to bind its port. Below the range, only another draw
 * can take it.
 */
export async function freePort(): Promise<number> {
  const [low] = ephemeralRange();
  const from = 10_000;
  if (low - from < 1_000) return ephemeralFreePort();
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = from + Math.floor(Math.random() * (low - from));
    if (await bindable(port)) return port;
  }
  return ephemeralFreePort();
}

/** The kernel's ephemeral port range (Linux), or the usual default where it cannot be read. */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return [low!, high!];
  } catch {
    // not Linux
  }
  return [32768, 60999];
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

function ephemeralFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * A port that, with the `count - 1` after it, was free on 127.0.0.1 a moment ago: for replicas that listen on
 * port + i. Each is bound while the next is tried, since a port's neighbour may be taken.
 */
export async function freePorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort();
    const held: ReturnType<typeof createServer>[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const srv = createServer();
        await new Promise<void>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen(base + i, '127.0.0.1', () => resolve());
        });
        held.push(srv);
      }
      return base;
    } catch {
      // a neighbour was taken: another base
    } finally {
      await Promise.all(held.map((srv) => new Promise((resolve) => srv.close(resolve))));
    }
  }
  throw new Error(`no ${count} consecutive free ports on 127.0.0.1`);
}

/** GETs the URL until it answers 200 (a container may still be starting); returns the body. */
export async function fetchWhenUp(url: string, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    // A connection a proxy accepted (docker-proxy before the container listens) can hang without keeping the event
    // loop alive; this timer does, and gives up on the attempt.
    const attempt = new AbortController();
    const timer = setTimeout(() => attempt.abort(), 5_000);
    try {
      const res = await fetch(url, { signal: attempt.signal });
      const body = await res.text();
      if (res.status === 200) return body;
      last = `${res.status} ${body.slice(0, 200)}`;
    } catch (e) {
      last = String(e);
    } finally {
      clearTimeout(timer);
    }
    await sleep(200);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}
