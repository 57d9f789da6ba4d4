// The change stamp of a PostgreSQL metadata store: what keeps the read caches of several instances coherent.
//
// Every transaction that changes repositories, manifests, tags, blobs or blob links sends NOTIFY wharf_changes when it
// commits (migrations 0017 and 0020). Each instance LISTENs on one connection of its own and moves its stamp on every
// notification; its own writes move the stamp as soon as they complete (its notification may arrive after the client
// saw the answer).
//
// Staleness, documented in docs/configuration.md: another instance's commit is seen when its notification arrives
// (milliseconds on a LAN). The listening connection answers a heartbeat every HEARTBEAT_MS; when it drops or
// misses a heartbeat, caching stops at once (every read goes to the database) and a reconnect starts a new
// generation, so notifications missed meanwhile cannot leave an entry stale. Bound: HEARTBEAT_MS * 2 (2 s) in the
// worst case, a connection that hangs silently right after a heartbeat.
import pg from 'pg';

export const HEARTBEAT_MS = 1_000;
const RECONNECT_MS = 1_000;

export class ChangeFeed {
  private client: pg.Client | undefined;
  private live = false;
  private generation = 0;
  private remote = 0;
  private local = 0;
  private off = 0;
  private stopped = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private reconnect: NodeJS.Timeout | undefined;

  constructor(
    private readonly connect: () => pg.Client,
    private readonly onError: (e: Error) => void = () => {},
  ) {}

  /** Listens once before returning (so a store opens with its cache on), then keeps listening until stop(). */
  async start(): Promise<void> {
    await this.listen();
    this.heartbeat = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** The stamp the read caches compare: unchanged only while nothing they hold can have changed. */
  stamp(): string {
    // Not listening: a stamp that never repeats, so nothing cached is ever served.
    if (!this.live) return `off:${++this.off}`;
    return `${this.generation}:${this.remote}:${this.local}`;
  }

  /** A write through this instance completed (or committed). */
  wrote(): void {
    this.local++;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.live = false;
    clearInterval(this.heartbeat);
    clearTimeout(this.reconnect);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private async listen(): Promise<void> {
    const client = this.connect();
    client.on('notification', (n) => {
      if (n.channel === 'wharf_changes') this.remote++;
    });
    client.on('error', (e) => this.lost(client, e));
    client.on('end', () => this.lost(client));
    await client.connect();
    try {
      await client.query('LISTEN wharf_changes');
    } catch (e) {
      await client.end().catch(() => {});
      throw e;
    }
    if (this.stopped) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    this.generation++;
    this.live = true;
  }

  private async beat(): Promise<void> {
    const client = this.client;
    if (!client || !this.live) return;
    let timer: NodeJS.Timeout | undefined;
    const answered = await Promise.race([
      client.query('select 1').then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), HEARTBEAT_MS))),
    ]);
    clearTimeout(timer);
    if (!answered && this.client === client) this.lost(client, new Error(`the listening connection missed a heartbeat (${HEARTBEAT_MS} ms)`));
  }

  private lost(client: pg.Client, e?: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.live = false;
    if (e) this.onError(e);
    client.end().catch(() => {});
    if (!this.stopped) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    clearTimeout(this.reconnect);
    this.reconnect = setTimeout(() => {
      this.listen().catch((e: Error) => {
        this.onError(e);
        if (!this.stopped) this.scheduleReconnect();
      });
    }, RECONNECT_MS);
    this.reconnect.unref();
  }
}
