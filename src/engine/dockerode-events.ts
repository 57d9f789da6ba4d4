// EngineEvents over the Docker Engine API (GET /events through dockerode): one long-lived request per watch, read
// line by line; when it ends or fails it is opened again from the last event seen, after a growing pause.
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { EngineConnection, type ConnectionSpec } from './connection.js';
import type { EngineEvent, EngineEvents, EventFilters, EventListener, EventWatch } from './engine-events.js';

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;

export class DockerodeEvents implements EngineEvents {
  private readonly conn: EngineConnection;

  constructor(spec: ConnectionSpec, clientVersion?: string) {
    this.conn = new EngineConnection(spec, clientVersion);
  }

  get endpoint(): string {
    return this.conn.endpoint;
  }

  watch(filters: EventFilters, listener: EventListener): EventWatch {
    let closed = false;
    let abort: AbortController | undefined;
    let timer: NodeJS.Timeout | undefined;
    let retryMs = FIRST_RETRY_MS;
    let opened = false;
    /** the engine's time of the last event, in ns: the next stream starts just after it */
    let lastNano: bigint | undefined;
    const safely = (call: () => void) => {
      try {
        call();
      } catch {
        // a listener's failure is its own: the stream goes on
      }
    };

    const open = async () => {
      abort = new AbortController();
      let stream: Readable;
      try {
        const docker = await this.conn.client();
        const query: Record<string, unknown> = { filters, abortSignal: abort.signal };
        if (lastNano !== undefined) query.since = nanoToSince(lastNano + 1n);
        stream = (await docker.getEvents(query)) as unknown as Readable;
      } catch (e) {
        return dropped(e as Error);
      }
      if (closed) return void stream.destroy();
      retryMs = FIRST_RETRY_MS;
      const again = opened;
      opened = true;
      safely(() => listener.connected(again));
      const lines = createInterface({ input: stream, crlfDelay: Infinity });
      let failure: Error | undefined;
      // readline hands the input's errors on as its own: both are heard, the stream's close says what follows.
      stream.on('error', (e) => (failure = e));
      lines.on('error', (e) => (failure = e));
      lines.on('line', (line) => {
        const e = parseEvent(line);
        if (e === undefined) return;
        lastNano = e.nano;
        safely(() => listener.event(e.event));
      });
      // 'close' comes whether the engine ended the answer or the connection broke (readline's own close does not).
      stream.once('close', () => dropped(failure ?? new Error(`${this.endpoint}: the event stream ended`)));
    };

    const dropped = (e: Error) => {
      if (closed) return;
      safely(() => listener.lost(e));
      timer = setTimeout(() => void open(), retryMs);
      timer.unref();
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
    };

    void open();
    return {
      close: () => {
        closed = true;
        clearTimeout(timer);
        abort?.abort();
      },
    };
  }
}

/** One line of the engine's answer, or undefined for anything that is not a container or service event. */
export function parseEvent(line: string): { event: EngineEvent; nano: bigint } | undefined {
  let m: { Type?: string; Action?: string; Actor?: { ID?: string; Attributes?: Record<string, string> }; time?: number; timeNano?: number | string };
  try {
    m = JSON.parse(line);
  } catch {
    return undefined;
  }
  if ((m.Type !== 'container' && m.Type !== 'service') || typeof m.Action !== 'string') return undefined;
  // timeNano is past 2^53: read it from the text, where JSON.parse would round it.
  const rawNano = /"timeNano":\s*(\d+)/.exec(line)?.[1];
  const nano = rawNano !== undefined ? BigInt(rawNano) : BigInt(m.time ?? 0) * 1_000_000_000n;
  return {
    event: { type: m.Type, action: m.Action, id: m.Actor?.ID ?? '', attributes: m.Actor?.Attributes ?? {}, time: Number(nano / 1_000_000n) },
    nano,
  };
}

/** ns → the `since` the engine takes: seconds with a nine-digit fraction. */
function nanoToSince(nano: bigint): string {
  return `${nano / 1_000_000_000n}.${String(nano % 1_000_000_000n).padStart(9, '0')}`;
}
