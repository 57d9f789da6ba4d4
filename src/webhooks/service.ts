// The Webhooks service: subscriptions, `emit` (queues one delivery per matching subscription — a database
// insert, no network), the delivery log, and the dispatcher's lifecycle.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { RegistryError } from '../oci/errors.js';
import type { Tx } from '../metadata/transaction.js';
import { WebhookDispatcher, type DispatchOptions, type PostDelivery } from './dispatcher.js';
import { eventMatches, type WebhookEvent } from './events.js';
import { matchesGlob } from '../oci/pattern.js';
import { DestinationPolicy } from './destinations.js';
import type { WebhookOutbox, WebhookDelivery, DeliveryAttempt, DeliveryFilter, Subscription } from '../metadata/metadata.js';

export type WebhookOptions = DispatchOptions;

export interface SubscriptionInput {
  url: string;
  events: string[];
  /** generated when absent, and then returned once by addSubscription */
  secret?: string;
  repository?: string | null;
  createdBy?: string | null;
}

export class Webhooks {
  readonly store: WebhookOutbox;
  private dispatcher: WebhookDispatcher | undefined;
  private log: Logger | undefined;
  private readonly emitting = new Set<Promise<unknown>>();

  /** where deliveries may go (webhooks.allowTargets); built from the options unless a test hands one in */
  readonly targets: DestinationPolicy;

  constructor(
    store: WebhookOutbox,
    readonly options: WebhookOptions,
    /** the outbound HTTP that delivers (server/webhook-delivery.ts, handed in by wharf.ts) */
    private readonly post: PostDelivery,
    targets?: DestinationPolicy,
  ) {
    this.store = store;
    this.targets = targets ?? new DestinationPolicy(options.allowTargets);
  }

  // --- subscriptions ---------------------------------------------------------------------------

  /**
   * Event filters, the repository pattern and the URL's form are trusted: the API validates them (routes.ts).
   * A URL naming a refused address outright is refused here; names are judged at each delivery's connect.
   */
  async addSubscription(input: SubscriptionInput): Promise<{ subscription: Subscription; secret?: string }> {
    const refused = this.targets.literalRefusal(new URL(input.url));
    if (refused) throw new RegistryError('INVALID', `url: ${refused}`);
    const generated = input.secret === undefined ? randomBytes(32).toString('hex') : undefined;
    const subscription = await this.store.createSubscription({
      url: input.url,
      secret: input.secret ?? generated!,
      events: [...new Set(input.events)],
      repository: input.repository ?? null,
      createdBy: input.createdBy ?? null,
    });
    return generated === undefined ? { subscription } : { subscription, secret: generated };
  }

  listSubscriptions(): Promise<Subscription[]> {
    return this.store.listSubscriptions();
  }

  async subscription(id: number): Promise<Subscription> {
    const s = (await this.store.listSubscriptions()).find((x) => x.id === id);
    if (!s) throw new RegistryError('NOT_FOUND', `webhook ${id} not found`);
    return s;
  }

  async removeSubscription(id: number): Promise<void> {
    if (!(await this.store.deleteSubscription(id))) throw new RegistryError('NOT_FOUND', `webhook ${id} not found`);
  }

  // --- events ----------------------------------------------------------------------------------

  /**
   * Queues the event for every matching subscription and returns the delivery ids. Pass the caller's
   * transaction to queue atomically with the change itself; the dispatcher then sees the rows after the
   * commit (at its next poll, or at once after `wake()`).
   */
  async emit(event: WebhookEvent, tx?: Tx): Promise<string[]> {
    const { type, repository, ...payload } = event;
    const subscriptions = (await this.store.listSubscriptions(tx)).filter(
      (s) => eventMatches(s.events, type) && (s.repository === null || matchesGlob(s.repository, repository)),
    );
    if (subscriptions.length === 0) return [];
    const body = JSON.stringify({ ...payload, event: type, repository, occurredAt: new Date().toISOString() });
    const deliveries = subscriptions.map((s) => ({ id: randomUUID(), subscriptionId: s.id, event: type, repository, body }));
    await this.store.enqueue(deliveries, tx);
    if (tx === undefined) this.wake();
    return deliveries.map((d) => d.id);
  }

  /** `emit` for synchronous observers (registry events): never throws; `stop()` waits for it. */
  notify(event: WebhookEvent): void {
    const p = this.emit(event)
      .catch((err) => this.log?.error({ err, event: event.type, repository: event.repository }, 'webhook event not queued'))
      .finally(() => this.emitting.delete(p));
    this.emitting.add(p);
  }

  wake(): void {
    this.dispatcher?.wake();
  }

  // --- the delivery log ------------------------------------------------------------------------

  listDeliveries(filter: DeliveryFilter = {}): Promise<WebhookDelivery[]> {
    return this.store.listDeliveries(filter);
  }

  async delivery(id: string): Promise<WebhookDelivery & { payload: unknown; log: DeliveryAttempt[] }> {
    const d = await this.store.delivery(id);
    if (!d) throw new RegistryError('NOT_FOUND', `delivery ${id} not found`);
    const { body, ...rest } = d;
    return { ...rest, payload: JSON.parse(body) as unknown };
  }

  /** Sends a finished (delivered or failed) delivery again, with the same id and body and a fresh retry budget. */
  async redeliver(id: string): Promise<WebhookDelivery> {
    if (!(await this.store.requeue(id, Date.now()))) {
      if (!(await this.store.delivery(id))) throw new RegistryError('NOT_FOUND', `delivery ${id} not found`);
      throw new RegistryError('CONFLICT', `delivery ${id} is already queued`);
    }
    this.wake();
    const { body: _body, log: _log, ...delivery } = (await this.store.delivery(id))!;
    return delivery;
  }

  // --- dispatcher lifecycle --------------------------------------------------------------------

  /** Starts sending; deliveries left pending by an earlier run are picked up at once. */
  startDispatcher(log: Logger): WebhookDispatcher {
    this.log = log;
    this.dispatcher ??= new WebhookDispatcher(this.store, this.options, this.targets, this.post, log);
    this.dispatcher.start();
    return this.dispatcher;
  }

  /** Waits for events being queued, then stops the dispatcher; pending deliveries stay in the outbox. */
  async stop(): Promise<void> {
    await Promise.all(this.emitting);
    await this.dispatcher?.stop();
  }
}
