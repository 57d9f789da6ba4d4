// Two Wharf instances over one metadata database, each with its own webhook dispatcher: every delivery reaches the
// receiver exactly once, and one an instance claimed before it died is delivered by the other after the lease. On
// PostgreSQL (the database several instances share) the claim skips rows another instance holds (FOR UPDATE SKIP
// LOCKED); SQLite's conditional claim is run too, since two processes can share one wharf.db file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { pino } from 'pino';
import { createMigratedTestDatabase, dropTestDatabase, postgresMissing } from '../support/database.js';
import { openPostgres } from '../../src/metadata/postgres.js';
import { openSqlite } from '../../src/metadata/sqlite.js';
import type { MetadataStore } from '../../src/metadata/store.js';
import { postDelivery } from '../../src/server/webhook-delivery.js';
import { Webhooks, type WebhookOptions } from '../../src/webhooks/service.js';
import { eventually, startReceiver } from './receiver.js';

const log = pino({ level: 'silent' });
const FAST: WebhookOptions = { timeout: 2_000, backoffBase: 20, backoffMax: 100, maxAttempts: 10, pollInterval: 50, concurrency: 4, allowTargets: ['127.0.0.1'] };
const pgMissing = postgresMissing();

/** One shared database and a way to open an instance's store over it; `drop` removes it at the end. */
interface Shared {
  open(): Promise<MetadataStore>;
  /** the PostgreSQL URL, when the database is one */
  url?: string;
  drop(): Promise<void>;
}

async function sharedDatabase(backend: 'sqlite' | 'postgres'): Promise<Shared> {
  if (backend === 'postgres') {
    // Already migrated (a copy of the template): what is tested here is the claim, not the migrations.
    const url = await createMigratedTestDatabase();
    return { url, open: () => openPostgres(url, { poolSize: 5, migrate: true }), drop: () => dropTestDatabase(url) };
  }
  const dir = await mkdtemp(join(tmpdir(), 'wharf-outbox-'));
  return { open: () => openSqlite(join(dir, 'wharf.db')), drop: () => rm(dir, { recursive: true, force: true }) };
}

/** Every store, dispatcher and receiver a test opens, closed at its end (also when it fails). */
function fixture(t: { after(fn: () => Promise<void>): void }) {
  const closers: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
  });
  return {
    defer(c: () => Promise<unknown>) {
      closers.push(c);
    },
    async instance(shared: Shared, options: Partial<WebhookOptions> = {}) {
      const meta = await shared.open();
      const webhooks = new Webhooks(meta.webhooks, { ...FAST, ...options }, postDelivery);
      let closed = false;
      const close = async () => {
        if (closed) return;
        closed = true;
        await webhooks.stop();
        await meta.close();
      };
      closers.push(close);
      return { meta, webhooks, close };
    },
  };
}

for (const backend of ['postgres', 'sqlite'] as const) {
  const skip = backend === 'postgres' ? pgMissing : false;

  test(`${backend}: two dispatchers over one database deliver each of 60 deliveries exactly once`, { skip }, async (t) => {
    const f = fixture(t);
    const shared = await sharedDatabase(backend);
    f.defer(() => shared.drop());
    const receiver = await startReceiver(() => 200);
    f.defer(() => receiver.close());
    const a = await f.instance(shared);
    const b = await f.instance(shared);
    await a.webhooks.addSubscription({ url: receiver.url, events: ['push'], secret: 'two-instances-1' });
    await a.webhooks.addSubscription({ url: receiver.url, events: ['push'], secret: 'two-instances-2' });
    a.webhooks.startDispatcher(log);
    b.webhooks.startDispatcher(log);
    // Events emitted through both instances, as a load balancer spreads pushes.
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const through = i % 2 === 0 ? a : b;
      ids.push(...(await through.webhooks.emit({ type: 'push', repository: 'load/app', digest: `sha256:${String(i).padStart(64, '0')}` })));
    }
    assert.equal(ids.length, 60);
    await receiver.waitFor(60, 20_000);
    // Time for a duplicate to arrive, were one sent.
    await sleep(300);
    const delivered = receiver.received.map((r) => r.headers['x-wharf-delivery'] as string);
    assert.equal(delivered.length, 60, 'no delivery sent twice');
    assert.deepEqual(new Set(delivered), new Set(ids));
    for (const id of ids) {
      const d = await eventually(async () => {
        const x = await b.webhooks.delivery(id);
        return x.status === 'pending' ? undefined : x;
      }, `delivery ${id} recorded`);
      assert.equal(d.status, 'succeeded');
      assert.deepEqual(
        d.log.map((x) => [x.attempt, x.statusCode]),
        [[1, 200]],
      );
    }
  });

  test(`${backend}: a delivery claimed by an instance that died mid-delivery is delivered by the other after the lease, once`, { skip }, async (t) => {
    const f = fixture(t);
    const shared = await sharedDatabase(backend);
    f.defer(() => shared.drop());
    const receiver = await startReceiver(() => 200);
    f.defer(() => receiver.close());
    const dying = await f.instance(shared);
    await dying.webhooks.addSubscription({ url: receiver.url, events: ['push'], secret: 'dies-mid-delivery' });
    const [id] = await dying.webhooks.emit({ type: 'push', repository: 'a/b', digest: 'sha256:' + 'a'.repeat(64) });
    // What a dispatcher does first: claim the row with a lease. Then the process is gone (kill -9): no attempt is
    // recorded and the claim is never handed back; its connections just close.
    const leaseMs = 700;
    const claimedAt = Date.now();
    const claimed = await dying.meta.webhooks.claimDue(claimedAt, 10, claimedAt + leaseMs);
    assert.deepEqual(
      claimed.map((c) => c.id),
      [id],
    );
    await dying.meta.close();

    const survivor = await f.instance(shared);
    survivor.webhooks.startDispatcher(log);
    const [got] = await receiver.waitFor(1, 10_000);
    assert.equal(got!.headers['x-wharf-delivery'], id);
    assert.ok(got!.at >= claimedAt + leaseMs, `delivered ${got!.at - claimedAt} ms after the claim, inside its ${leaseMs} ms lease`);
    // The receiver has the request before the dispatcher records its answer: wait for the record (a loaded
    // machine may take longer than a moment), then for any second delivery a while longer.
    const d = await eventually(async () => {
      const now = await survivor.webhooks.delivery(id!);
      return now.status === 'pending' ? undefined : now;
    }, 'the survivor recording the delivery', 10_000);
    await sleep(300);
    assert.equal(receiver.received.length, 1, 'delivered once');
    assert.equal(d.status, 'succeeded');
    assert.deepEqual(
      d.log.map((x) => [x.attempt, x.statusCode]),
      [[1, 200]],
    );
  });
}

test('postgres: a claim skips the rows another instance holds locked, and neither waits for it nor comes back empty', { skip: pgMissing }, async (t) => {
  const f = fixture(t);
  const shared = await sharedDatabase('postgres');
  f.defer(() => shared.drop());
  const a = await f.instance(shared);
  await a.webhooks.addSubscription({ url: 'http://127.0.0.1:9/hook', events: ['push'], secret: 'skip-locked' });
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push(...(await a.webhooks.emit({ type: 'push', repository: 'x/y', digest: `sha256:${String(i).padStart(64, '0')}` })));
  // Another instance in the middle of its claim: the three oldest rows locked by its open transaction.
  const other = new pg.Client({ connectionString: shared.url });
  await other.connect();
  f.defer(() => other.end());
  await other.query('begin');
  const held = (await other.query<{ id: string }>(`select id from webhook_deliveries order by next_attempt_at, created_at limit 3 for update`)).rows.map((r) => r.id);
  assert.equal(held.length, 3);
  // A plain conditional claim would pick the held rows too and wait on their locks until the other commits.
  const claim = a.meta.webhooks.claimDue(Date.now() + 1, 10, Date.now() + 60_000);
  // The 3 s timer is unref'd: once the claim has won the race it must not hold the file's process open for 3 s more.
  const outcome = await Promise.race([claim.then((c) => c.map((x) => x.id)), sleep(3_000, undefined, { ref: false }).then(() => 'waited for the locked rows' as const)]);
  await other.query('rollback');
  assert.notEqual(outcome, 'waited for the locked rows');
  assert.deepEqual(new Set(outcome), new Set(ids.filter((id) => !held.includes(id))));
  // The held rows, once let go, are claimed by the next round.
  const next = await a.meta.webhooks.claimDue(Date.now() + 1, 10, Date.now() + 60_000);
  assert.deepEqual(new Set(next.map((x) => x.id)), new Set(held));
});
