// A real webhook receiver on 127.0.0.1 for the tests: records every request (headers and raw body) and
// answers with the status the test decides per request.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Received {
  headers: IncomingHttpHeaders;
  raw: Buffer;
  body: any;
  status: number;
  /** Date.now() when the request body had arrived */
  at: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** Resolves once `n` requests have arrived (fails after timeoutMs). */
  waitFor(n: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

/** `answer` gets the 1-based request number and returns the status code (or 'hang' to never answer). */
export async function startReceiver(answer: (n: number, r: Omit<Received, 'status' | 'at'>) => number | 'hang' = () => 204): Promise<Receiver> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      let body: unknown;
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        body = undefined;
      }
      const request = { headers: req.headers, raw, body };
      const at = Date.now();
      const status = answer(received.length + 1, request);
      if (status === 'hang') {
        received.push({ ...request, status: 0, at });
        return;
      }
      received.push({ ...request, status, at });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status >= 300 ? `receiver says no (${status})` : 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    async waitFor(n, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < n) {
        if (Date.now() > deadline) throw new Error(`receiver got ${received.length} of ${n} requests within ${timeoutMs} ms`);
        await sleep(10);
      }
      return received.slice(0, n);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Polls `check` until it returns a value other than undefined: at once, then at growing intervals up to 200 ms. Many
 * checks ask a server (its API, its metrics) or run a command (`docker service ps`); polled every 10 ms through a
 * wait of tens of seconds they kept a core busy for nothing, and CI's two cores are its limit.
 */
export async function eventually<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let pause = 10; ; pause = Math.min(200, Math.round(pause * 1.5))) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pause);
  }
}
