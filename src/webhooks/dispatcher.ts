// The dispatcher: a loop in the server that sends due deliveries from the outbox, records every attempt,
// and schedules retries. At-least-once: a delivery is done only after a 2xx answer.
import type { Logger } from 'pino';
import { retryDelay } from './backoff.js';
import type { DestinationPolicy } from './destinations.js';
import type { AttemptResult, DueDelivery, WebhookOutbox } from '../metadata/metadata.js';

/** Durations in milliseconds; the `webhooks` section of the configuration. */
export interface DispatchOptions {
  /** deadline of one POST, response included */
  timeout: number;
  /** first retry delay; doubled per failure up to backoffMax */
  backoffBase: number;
  backoffMax: number;
  /** attempts before a delivery is marked failed */
  maxAttempts: number;
  /** how often the outbox is looked at when nothing woke the dispatcher (rows written by another process) */
  pollInterval: number;
  /** deliveries in flight at once */
  concurrency: number;
  /**
   * hosts, addresses and CIDR ranges webhooks may reach although they are loopback, private, link-local …
   * (destinations.ts); none by default
   */
  allowTargets?: readonly string[];
}

/** One delivery attempt as the dispatcher hands it to the outbound HTTP adapter (server/webhook-delivery.ts). */
export interface Outgoing {
  url: string;
  secret: string;
  deliveryId: string;
  event: string;
  body: string;
}

export interface PostOutcome {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

/**
 * The port the dispatcher sends through: POST one delivery within `timeoutMs`, connecting only to addresses
 * `policy` allows (judged on the address the socket really connects to); never throws, the outcome says.
 */
export type PostDelivery = (out: Outgoing, timeoutMs: number, policy: DestinationPolicy, stop?: AbortSignal) => Promise<PostOutcome>;

/** A claimed attempt that outlives its deadline by this much is assumed lost (crash) and tried again. */
const LEASE_MARGIN_MS = 30_000;

export class WebhookDispatcher {
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private again = false;
  private readonly inflight = new Map<string, Promise<void>>();
  private stopping = new AbortController();

  constructor(
    private readonly store: WebhookOutbox,
    private readonly options: DispatchOptions,
    private readonly policy: DestinationPolicy,
    private readonly post: PostDelivery,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopping = new AbortController();
    this.schedule(0);
  }

  /** Something was queued: look at the outbox now rather than at the next poll. */
  wake(): void {
    if (this.running) this.schedule(0);
  }

  /** Stops the loop; attempts in flight are cut off and handed back to the outbox uncounted. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.timer);
    this.stopping.abort();
    await this.ticking;
    await Promise.all(this.inflight.values());
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), delayMs);
  }

  private tick(): Promise<void> {
    if (this.ticking) {
      this.again = true;
      return this.ticking;
    }
    this.ticking = this.claimAndSend().finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async claimAndSend(): Promise<void> {
    const { concurrency, timeout, pollInterval } = this.options;
    try {
      do {
        this.again = false;
        const free = concurrency - this.inflight.size;
        if (free <= 0 || !this.running) break;
        const now = Date.now();
        for (const d of await this.store.claimDue(now, free, now + timeout + LEASE_MARGIN_MS)) this.send(d);
      } while (this.again && this.running);
      if (!this.running) return;
      let delay = pollInterval;
      // When every slot is busy, a finishing attempt schedules the next look.
      if (this.inflight.size < concurrency) {
        const next = await this.store.nextDueAt();
        if (next !== null) delay = Math.min(pollInterval, Math.max(0, next - Date.now()));
      }
      if (this.running) this.schedule(delay);
    } catch (err) {
      this.log.error({ err }, 'webhook dispatch failed');
      if (this.running) this.schedule(pollInterval);
    }
  }

  private send(d: DueDelivery): void {
    const attempt = d.attempts + 1;
    const run = async () => {
      const out = await this.post({ url: d.url, secret: d.secret, deliveryId: d.id, event: d.event, body: d.body }, this.options.timeout, this.policy, this.stopping.signal);
      const at = Date.now();
      if (!out.ok && this.stopping.signal.aborted) {
        await this.store.release(d.id, at);
        return;
      }
      const result = this.resultOf(out.ok, attempt - d.budgetFrom, at);
      await this.store.recordAttempt(d.id, { attempt, at, statusCode: out.statusCode, error: out.error, durationMs: out.durationMs }, result);
      const fields = { delivery: d.id, event: d.event, attempt, status: out.statusCode, ms: out.durationMs };
      if (out.ok) this.log.debug(fields, 'webhook delivered');
      else this.log.warn({ ...fields, error: out.error, outcome: result.status }, 'webhook delivery failed');
    };
    const p = run()
      .catch((err) => this.log.error({ err, delivery: d.id }, 'webhook attempt could not be recorded'))
      .finally(() => {
        this.inflight.delete(d.id);
        if (this.running) this.schedule(0);
      });
    this.inflight.set(d.id, p);
  }

  private resultOf(ok: boolean, failuresSoFar: number, now: number): AttemptResult {
    if (ok) return { status: 'succeeded' };
    if (failuresSoFar >= this.options.maxAttempts) return { status: 'failed' };
    return { status: 'pending', nextAttemptAt: now + retryDelay(failuresSoFar, { baseMs: this.options.backoffBase, maxMs: this.options.backoffMax }) };
  }
}
