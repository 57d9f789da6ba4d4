// The dispatcher against real HTTP receivers on 127.0.0.1, over a real SQLite outbox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { forgetDatabase, openTestStore } from '../support/database.js';
import type { MetadataStore } from '../../src/metadata/store.js';
import { postDelivery } from '../../src/server/webhook-delivery.js';
import { Webhooks, type WebhookOptions } from '../../src/webhooks/service.js';
import { eventually, startReceiver, type Receiver } from './receiver.js';

const log = pino({ level: 'silent' });
const FAST: WebhookOptions = { timeout: 2_000, backoffBase: 20, backoffMax: 100, maxAttempts: 10, pollInterval: 200, concurrency: 4, allowTargets: ['127.0.0.1'] };

interface Opened {
  meta: MetadataStore;
  webhooks: Webhooks;
  close(): Promise<void>;
}

async function open(dir: string, options: Partial<WebhookOptions> = {}): Promise<Opened> {
  const meta = await openTestStore(join(dir, 'wharf.db'));
  const webhooks = new Webhooks(meta.webhooks, { ...FAST, ...options }, postDelivery);
  return {
    meta,
    webhooks,
    close: async () => {
      await webhooks.stop();
      await meta.close();
    },
  };
}

/** A temp dir, the receivers and services a test opens, all closed at the end. */
function fixture(t: { after(fn: () => Promise<void>): void }) {
  const closers: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of closers.reverse()) await c();
  });
  return {
    async dir() {
      const d = await mkdtemp(join(tmpdir(), 'wharf-webhooks-'));
      closers.push(async () => {
        await rm(d, { recursive: true, force: true });
        await forgetDatabase(d);
      });
      return d;
    },
    async receiver(...args: Parameters<typeof startReceiver>): Promise<Receiver> {
      const r = await startReceiver(...args);
      closers.push(() => r.close());
      return r;
    },
    async open(dir: string, options?: Partial<WebhookOptions>): Promise<Opened> {
      const o = await open(dir, options);
      closers.push(() => o.close());
      return o;
    },
  };
}

const settled = (w: Webhooks, id: string) => async () => {
  const d = await w.delivery(id);
  return d.status === 'pending' ? undefined : d;
};

test('a delivery is a signed JSON POST with the event, the delivery id and the payload', async (t) => {
  const f = fixture(t);
  const receiver = await f.receiver(() => 204);
  const { webhooks } = await f.open(await f.dir());
  await webhooks.addSubscription({ url: receiver.url, events: ['push'], secret: 'It is a secret' });
  webhooks.startDispatcher(log);

  const [id] = await webhooks.emit({ type: 'push', repository: 'team/app', digest: 'sha256:' + 'a'.repeat(64), tag: '1.0.0' });
  assert.ok(id);
  const [got] = await receiver.waitFor(1);
  assert.equal(got!.headers['content-type'], 'application/json');
  assert.equal(got!.headers['x-wharf-event'], 'push');
  assert.equal(got!.headers['x-wharf-delivery'], id);
  const expected = 'sha256=' + createHmac('sha256', 'It is a secret').update(got!.raw).digest('hex');
  assert.equal(got!.headers['x-wharf-signature-256'], expected);
  assert.notEqual(got!.headers['x-wharf-signature-256'], 'sha256=' + createHmac('sha256', 'another secret').update(got!.raw).digest('hex'));
  assert.equal(got!.body.event, 'push');
  assert.equal(got!.body.repository, 'team/app');
  assert.equal(got!.body.digest, 'sha256:' + 'a'.repeat(64));
  assert.equal(got!.body.tag, '1.0.0');
  assert.ok(Math.abs(Date.parse(got!.body.occurredAt) - Date.now()) < 10_000, got!.body.occurredAt);

  const d = await eventually(settled(webhooks, id), 'delivery to settle');
  assert.equal(d.status, 'succeeded');
  assert.equal(d.attempts, 1);
  assert.equal(d.lastStatusCode, 204);
  assert.deepEqual(d.payload, got!.body);
  assert.deepEqual(d.log.map((a) => [a.attempt, a.statusCode, a.error]), [[1, 204, null]]);
});

test('a receiver failing three times then recovering gets the delivery exactly once as 2xx, same id every time', async (t) => {
  const f = fixture(t);
  const receiver = await f.receiver((n) => (n <= 3 ? 500 : 200));
  const { webhooks } = await f.open(await f.dir(), { backoffBase: 40, backoffMax: 1_000 });
  const { subscription, secret } = await webhooks.addSubscription({ url: receiver.url, events: ['release.created'] });
  assert.ok(secret && secret.length >= 32, 'a secret is generated when none is given');
  webhooks.startDispatcher(log);

  const [id] = await webhooks.emit({ type: 'release.created', repository: 'team/app', kind: 'promote', environment: 'production', digest: 'sha256:' + 'b'.repeat(64) });
  const d = await eventually(settled(webhooks, id!), 'delivery to settle');
  // Nothing more arrives after the success.
  await sleep(200);
  assert.deepEqual(receiver.received.map((r) => r.status), [500, 500, 500, 200]);
  assert.deepEqual(new Set(receiver.received.map((r) => r.headers['x-wharf-delivery'])), new Set([id]));
  assert.equal(new Set(receiver.received.map((r) => r.raw.toString())).size, 1, 'every attempt sends the same bytes');
  for (const r of receiver.received) assert.equal(r.headers['x-wharf-signature-256'], 'sha256=' + createHmac('sha256', secret!).update(r.raw).digest('hex'));
  assert.equal(receiver.received[0]!.body.kind, 'promote');

  // Backoff: the waits grow (base 40 ms, minus at most a quarter of jitter: ≥ 30, ≥ 60, ≥ 120 ms).
  const gaps = receiver.received.slice(1).map((r, i) => r.at - receiver.received[i]!.at);
  gaps.forEach((gap, i) => assert.ok(gap >= 30 * 2 ** i, `gap ${i + 1} was ${gap} ms (${gaps.join(', ')})`));

  assert.equal(d.status, 'succeeded');
  assert.equal(d.subscriptionId, subscription.id);
  assert.equal(d.attempts, 4);
  assert.equal(d.lastStatusCode, 200);
  assert.equal(d.lastError, null);
  assert.deepEqual(d.log.map((a) => [a.attempt, a.statusCode]), [[1, 500], [2, 500], [3, 500], [4, 200]]);
  assert.match(d.log[0]!.error ?? '', /^HTTP 500: receiver says no/);
});

test('a delivery is given up after maxAttempts, and a redelivery sends it again with the same id', async (t) => {
  const f = fixture(t);
  let healthy = false;
  const receiver = await f.receiver(() => (healthy ? 202 : 503));
  const { webhooks } = await f.open(await f.dir(), { maxAttempts: 3 });
  await webhooks.addSubscription({ url: receiver.url, events: ['*'], secret: 'redelivery' });
  webhooks.startDispatcher(log);

  const [id] = await webhooks.emit({ type: 'delete', repository: 'team/app', tag: 'old' });
  const failed = await eventually(settled(webhooks, id!), 'delivery to fail');
  await sleep(150);
  assert.equal(failed.status, 'failed');
  assert.equal(failed.attempts, 3);
  assert.equal(receiver.received.length, 3, 'no attempt beyond maxAttempts');
  assert.match(failed.lastError ?? '', /HTTP 503/);
  await assert.rejects(webhooks.redeliver('00000000-0000-0000-0000-000000000000'), /not found/);

  healthy = true;
  const requeued = await webhooks.redeliver(id!);
  assert.equal(requeued.status, 'pending');
  const done = await eventually(settled(webhooks, id!), 'redelivery');
  assert.equal(done.status, 'succeeded');
  assert.equal(receiver.received.length, 4);
  assert.equal(receiver.received[3]!.headers['x-wharf-delivery'], id);
  assert.deepEqual(done.log.map((a) => a.statusCode), [503, 503, 503, 202]);
});

test('pending deliveries survive a restart: retries keep their count, an attempt cut by the stop is retried', async (t) => {
  const f = fixture(t);
  const dir = await f.dir();
  // 1st request fails, the 2nd never gets an answer (the server stops meanwhile), later ones succeed.
  const receiver = await f.receiver((n) => (n === 1 ? 500 : n === 2 ? 'hang' : 200));
  const first = await open(dir);
  let firstClosed = false;
  t.after(async () => {
    if (!firstClosed) await first.close();
  });
  await first.webhooks.addSubscription({ url: receiver.url, events: ['push', 'tag.moved'], secret: 'restart' });
  first.webhooks.startDispatcher(log);
  const [cut] = await first.webhooks.emit({ type: 'push', repository: 'a/b', digest: 'sha256:' + 'c'.repeat(64) });
  await receiver.waitFor(2);
  await first.webhooks.stop();
  // Queued while no dispatcher runs (a server that is shutting down or not yet started).
  const [queued] = await first.webhooks.emit({ type: 'tag.moved', repository: 'a/b', tag: 'latest', from: 'sha256:' + 'c'.repeat(64), to: 'sha256:' + 'd'.repeat(64) });
  await first.meta.close();
  firstClosed = true;
  assert.equal(receiver.received.length, 2);

  const second = await f.open(dir);
  second.webhooks.startDispatcher(log);
  const a = await eventually(settled(second.webhooks, cut!), 'the cut delivery after the restart');
  const b = await eventually(settled(second.webhooks, queued!), 'the queued delivery after the restart');
  assert.equal(a.status, 'succeeded');
  assert.equal(b.status, 'succeeded');
  // The attempt cut by the stop is not counted: the log shows the failure and the success.
  assert.deepEqual(a.log.map((x) => [x.attempt, x.statusCode]), [[1, 500], [2, 200]]);
  assert.deepEqual(b.log.map((x) => [x.attempt, x.statusCode]), [[1, 200]]);
  const ids = receiver.received.map((r) => r.headers['x-wharf-delivery']);
  assert.deepEqual(ids.filter((x) => x === cut), [cut, cut, cut]);
  assert.deepEqual(ids.filter((x) => x === queued), [queued]);
  assert.equal(receiver.received.find((r) => r.headers['x-wharf-delivery'] === queued)!.headers['x-wharf-event'], 'tag.moved');
});

test('an attempt that gets no answer times out and counts as a failure', async (t) => {
  const f = fixture(t);
  const receiver = await f.receiver(() => 'hang');
  const { webhooks } = await f.open(await f.dir(), { timeout: 150, maxAttempts: 1 });
  await webhooks.addSubscription({ url: receiver.url, events: ['push'], secret: 'timeout!' });
  webhooks.startDispatcher(log);
  const started = Date.now();
  const [id] = await webhooks.emit({ type: 'push', repository: 'x', digest: 'sha256:' + 'e'.repeat(64) });
  const d = await eventually(settled(webhooks, id!), 'the timeout');
  assert.ok(Date.now() - started >= 150);
  assert.equal(d.status, 'failed');
  assert.equal(d.lastStatusCode, null);
  assert.equal(d.lastError, 'timed out after 150 ms');
});

test('an unreachable receiver is logged with the connection error', async (t) => {
  const f = fixture(t);
  const gone = await startReceiver();
  await gone.close();
  const { webhooks } = await f.open(await f.dir(), { maxAttempts: 2 });
  await webhooks.addSubscription({ url: gone.url, events: ['push'], secret: 'unreachable' });
  webhooks.startDispatcher(log);
  const [id] = await webhooks.emit({ type: 'push', repository: 'x', digest: 'sha256:' + 'f'.repeat(64) });
  const d = await eventually(settled(webhooks, id!), 'the failure');
  assert.equal(d.status, 'failed');
  assert.deepEqual(d.log.map((a) => a.statusCode), [null, null]);
  assert.match(d.lastError ?? '', /ECONNREFUSED/);
});

test('many events through a few slots: each delivered once', async (t) => {
  const f = fixture(t);
  const receiver = await f.receiver(() => 200);
  const { webhooks } = await f.open(await f.dir(), { concurrency: 3 });
  await webhooks.addSubscription({ url: receiver.url, events: ['push'], secret: 'many-events' });
  await webhooks.addSubscription({ url: receiver.url, events: ['push'], secret: 'many-events-2' });
  webhooks.startDispatcher(log);
  const ids: string[] = [];
  for (let i = 0; i < 25; i++) ids.push(...(await webhooks.emit({ type: 'push', repository: 'load/app', digest: `sha256:${String(i).padStart(64, '0')}` })));
  assert.equal(ids.length, 50);
  await receiver.waitFor(50);
  await sleep(100);
  const delivered = receiver.received.map((r) => r.headers['x-wharf-delivery'] as string);
  assert.equal(delivered.length, 50);
  assert.deepEqual(new Set(delivered), new Set(ids));
});

test('event filters and repository patterns decide which subscriptions get a delivery', async (t) => {
  const f = fixture(t);
  const { webhooks } = await f.open(await f.dir());
  const url = 'http://127.0.0.1:9/never-sent';
  const { subscription: deploys } = await webhooks.addSubscription({ url, events: ['deploy.*'], secret: 'filters1' });
  const { subscription: teamPushes } = await webhooks.addSubscription({ url, events: ['push'], repository: 'team/*', secret: 'filters2' });
  const { subscription: otherAll } = await webhooks.addSubscription({ url, events: ['*'], repository: 'other/*', secret: 'filters3' });
  const { subscription: releases } = await webhooks.addSubscription({ url, events: ['release.created', 'tag.moved'], secret: 'filters4' });

  const receivers = async (ids: string[]) => {
    const all = await webhooks.listDeliveries({ limit: 1000 });
    return ids.map((id) => all.find((d) => d.id === id)!.subscriptionId).sort();
  };
  assert.deepEqual(await receivers(await webhooks.emit({ type: 'push', repository: 'team/app', digest: 'sha256:1' })), [teamPushes.id]);
  assert.deepEqual(await receivers(await webhooks.emit({ type: 'push', repository: 'team/sub/app', digest: 'sha256:2' })), [teamPushes.id]);
  assert.deepEqual(await receivers(await webhooks.emit({ type: 'push', repository: 'teams/app', digest: 'sha256:3' })), []);
  assert.deepEqual(await receivers(await webhooks.emit({ type: 'deploy.failed', repository: 'team/app', environment: 'prod' })), [deploys.id]);
  assert.deepEqual(await receivers(await webhooks.emit({ type: 'deploy.rolled_back', repository: 'other/x/y' })), [deploys.id, otherAll.id].sort());
  assert.deepEqual(
    await receivers(await webhooks.emit({ type: 'release.created', repository: 'other/x', kind: 'rollback' })),
    [otherAll.id, releases.id].sort(),
  );
  assert.deepEqual(await receivers(await webhooks.emit({ type: 'delete', repository: 'team/app', tag: 'x' })), []);

  const byEvent = await webhooks.listDeliveries({ event: 'release.created' });
  assert.equal(byEvent.length, 2);
  assert.equal(((await webhooks.delivery(byEvent[0]!.id)).payload as { kind: string }).kind, 'rollback');
  assert.equal((await webhooks.listDeliveries({ subscriptionId: deploys.id })).length, 2);
  assert.equal((await webhooks.listDeliveries({ status: 'succeeded' })).length, 0);

  // Removing a subscription drops its queued deliveries: they must never be sent.
  await webhooks.removeSubscription(deploys.id);
  assert.equal((await webhooks.listDeliveries({ subscriptionId: deploys.id })).length, 0);
  await assert.rejects(webhooks.removeSubscription(deploys.id), /not found/);
  assert.deepEqual((await webhooks.listSubscriptions()).map((s) => s.id), [teamPushes.id, otherAll.id, releases.id]);
  for (const s of await webhooks.listSubscriptions()) assert.ok(!('secret' in s), 'listings never carry the secret');
});
