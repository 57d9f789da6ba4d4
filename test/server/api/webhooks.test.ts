// The webhook management API over a real in-process server, with registry pushes producing the events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHmac } from 'node:crypto';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../../src/config.js';
import { RegistryError } from '../../../src/oci/errors.js';
import type { Action } from '../../../src/auth/access.js';
import type { RequestAccess } from '../../../src/server/access.js';
import { createHttpServer, listen } from '../../../src/server/server.js';
import { webhookRoutes } from '../../../src/server/api/webhooks.js';
import { openWharf, type Wharf } from '../../../src/wharf.js';
import { databaseEnv, forgetDatabase } from '../../support/database.js';
import { digestOf, imageManifest, putManifest, type Init, type Registry } from '../v2-harness.js';
import { eventually, startReceiver, type Receiver } from '../../webhooks/receiver.js';

/** Admin actions need `Authorization: Bearer admin`; everything else is open. Records what routes asked for. */
function adminOnly(asked: Action[][]): RequestAccess {
  return {
    async authorize(req, _repository, actions) {
      asked.push(actions);
      if (actions.includes('admin') && req.headers.authorization !== 'Bearer admin') throw new RegistryError('DENIED', 'admin only');
      return { name: actions.includes('admin') ? 'root' : null, kind: actions.includes('admin') ? 'user' : 'anonymous' };
    },
    async authorizeCatalog() {
      return { name: null, kind: 'anonymous' };
    },
    canPull: () => true,
  };
}

interface Hub extends Registry {
  wharf: Wharf;
  asked: Action[][];
  api(method: string, path: string, body?: unknown, admin?: boolean): Promise<{ status: number; body: any; raw: string }>;
}

async function startHub(t: { after(fn: () => Promise<void>): void }, webhooks: Partial<Config['webhooks']> = {}): Promise<Hub> {
  const dataDir = await mkdtemp(join(tmpdir(), 'wharf-webhook-api-'));
  const config = loadConfig({ flags: { data: dataDir }, env: await databaseEnv(dataDir) });
  config.webhooks = { timeout: 2_000, backoffBase: 20, backoffMax: 100, maxAttempts: 5, pollInterval: 200, concurrency: 4, allowTargets: ['127.0.0.1'], ...webhooks };
  const wharf = await openWharf(config);
  const log = pino({ level: 'silent' });
  const asked: Action[][] = [];
  const running = await listen(createHttpServer({ wharf, log, access: adminOnly(asked), apiRoutes: webhookRoutes(wharf.webhooks) }), '127.0.0.1', 0);
  wharf.webhooks.startDispatcher(log);
  t.after(async () => {
    await running.close();
    await wharf.close();
    await rm(dataDir, { recursive: true, force: true });
    await forgetDatabase(dataDir);
  });
  const req = (path: string, init?: Init) => fetch(running.url + path, init as RequestInit);
  return {
    url: running.url,
    dataDir,
    wharf,
    asked,
    req,
    stop: async () => {},
    close: async () => {},
    async api(method, path, body, admin = true) {
      const headers: Record<string, string> = admin ? { authorization: 'Bearer admin' } : {};
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await req(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const raw = await res.text();
      return { status: res.status, raw, body: raw ? JSON.parse(raw) : undefined };
    },
  };
}

async function receiverFor(t: { after(fn: () => Promise<void>): void }, answer?: Parameters<typeof startReceiver>[0]): Promise<Receiver> {
  const r = await startReceiver(answer);
  t.after(() => r.close());
  return r;
}

test('subscriptions: create, list, show and delete; the secret never comes back', async (t) => {
  const hub = await startHub(t);
  const created = await hub.api('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/a', events: ['push', 'deploy.*'], secret: 'given-secret-1', repository: 'team/*' });
  assert.equal(created.status, 201, created.raw);
  assert.deepEqual(
    { url: created.body.url, events: created.body.events, repository: created.body.repository, createdBy: created.body.createdBy },
    { url: 'http://127.0.0.1:9/a', events: ['push', 'deploy.*'], repository: 'team/*', createdBy: 'root' },
  );
  assert.ok(!('secret' in created.body), 'a secret the caller chose is not echoed');

  const generated = await hub.api('POST', '/api/v1/webhooks', { url: 'https://hooks.example/b', events: ['*'] });
  assert.equal(generated.status, 201, generated.raw);
  assert.match(generated.body.secret, /^[0-9a-f]{64}$/, 'a generated secret is shown once, at creation');
  assert.equal(generated.body.repository, null);

  const list = await hub.api('GET', '/api/v1/webhooks');
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.map((s: { id: number }) => s.id), [created.body.id, generated.body.id]);
  const one = await hub.api('GET', `/api/v1/webhooks/${generated.body.id}`);
  assert.equal(one.status, 200);
  for (const raw of [list.raw, one.raw]) {
    assert.ok(!raw.includes('given-secret-1') && !raw.includes(generated.body.secret), `secret leaked: ${raw}`);
    assert.ok(!raw.includes('"secret"'), raw);
  }

  assert.equal((await hub.api('DELETE', `/api/v1/webhooks/${created.body.id}`)).status, 204);
  assert.equal((await hub.api('GET', `/api/v1/webhooks/${created.body.id}`)).status, 404);
  assert.equal((await hub.api('DELETE', `/api/v1/webhooks/${created.body.id}`)).status, 404);
  assert.deepEqual((await hub.api('GET', '/api/v1/webhooks')).body.map((s: { id: number }) => s.id), [generated.body.id]);
});

test('subscriptions are validated: URL scheme, event names, repository pattern, unknown fields', async (t) => {
  const hub = await startHub(t);
  const cases: [unknown, RegExp][] = [
    [{ url: 'ftp://127.0.0.1/x', events: ['push'] }, /^url: must be an http/],
    [{ url: 'not a url', events: ['push'] }, /^url:/],
    [{ url: 'http://127.0.0.1/x', events: ['pushed'] }, /events\.0: unknown event "pushed"/],
    [{ url: 'http://127.0.0.1/x', events: ['nothing.*'] }, /unknown event "nothing\.\*"/],
    [{ url: 'http://127.0.0.1/x', events: [] }, /^events:/],
    [{ url: 'http://127.0.0.1/x', events: ['push'], repository: 'Team/(x)' }, /^repository:/],
    [{ url: 'http://127.0.0.1/x', events: ['push'], secret: 'short' }, /^secret:/],
    [{ url: 'http://127.0.0.1/x', events: ['push'], colour: 'blue' }, /colour/],
  ];
  for (const [body, message] of cases) {
    const r = await hub.api('POST', '/api/v1/webhooks', body);
    assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.raw}`);
    assert.match(r.body.errors[0].message, message, r.raw);
  }
  assert.deepEqual((await hub.api('GET', '/api/v1/webhooks')).body, []);
  const badQuery = await hub.api('GET', '/api/v1/webhooks/deliveries?status=lost');
  assert.equal(badQuery.status, 400, badQuery.raw);
});

test('every webhook route is admin only', async (t) => {
  const hub = await startHub(t);
  const id = (await hub.api('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/a', events: ['push'], secret: 'admin-only' })).body.id;
  const routes: [string, string, unknown?][] = [
    ['POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/b', events: ['push'] }],
    ['GET', '/api/v1/webhooks'],
    ['GET', `/api/v1/webhooks/${id}`],
    ['DELETE', `/api/v1/webhooks/${id}`],
    ['GET', '/api/v1/webhooks/deliveries'],
    ['GET', '/api/v1/webhooks/deliveries/00000000-0000-0000-0000-000000000000'],
    ['POST', '/api/v1/webhooks/deliveries/00000000-0000-0000-0000-000000000000/redeliver'],
  ];
  for (const [method, path, body] of routes) {
    hub.asked.length = 0;
    const r = await hub.api(method, path, body, false);
    assert.equal(r.status, 403, `${method} ${path} without admin → ${r.status} ${r.raw}`);
    assert.deepEqual(hub.asked, [['admin']]);
  }
  assert.equal((await hub.api('GET', '/api/v1/webhooks')).body.length, 1, 'nothing changed');
});

test('registry pushes and deletes reach a subscriber; the delivery log lists, filters and redelivers them', async (t) => {
  const hub = await startHub(t);
  const receiver = await receiverFor(t, () => 200);
  const sub = (await hub.api('POST', '/api/v1/webhooks', { url: receiver.url, events: ['push', 'tag.moved', 'delete'], secret: 'registry-events', repository: 'team/*' })).body;

  const v1 = await imageManifest(hub, 'team/app', { seed: 'one' });
  assert.equal((await putManifest(hub, 'team/app', 'latest', v1)).status, 201);
  const v2 = await imageManifest(hub, 'team/app', { seed: 'two' });
  assert.equal((await putManifest(hub, 'team/app', 'latest', v2)).status, 201);
  // Not matching the repository pattern: no delivery.
  assert.equal((await putManifest(hub, 'elsewhere/app', 'latest', await imageManifest(hub, 'elsewhere/app'))).status, 201);
  assert.equal((await hub.req('/v2/team/app/manifests/latest', { method: 'DELETE' })).status, 202);

  const got = await receiver.waitFor(4);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(receiver.received.length, 4);
  // Deliveries run in parallel, so their order of arrival is not part of the contract.
  const events = got.map((r) => [r.headers['x-wharf-event'], r.body.repository, r.body.tag]).sort();
  assert.deepEqual(events, [
    ['delete', 'team/app', 'latest'],
    ['push', 'team/app', 'latest'],
    ['push', 'team/app', 'latest'],
    ['tag.moved', 'team/app', 'latest'],
  ]);
  const movedRequest = got.find((r) => r.headers['x-wharf-event'] === 'tag.moved')!;
  const moved = movedRequest.body;
  assert.deepEqual([moved.from, moved.to], [digestOf(v1), digestOf(v2)]);
  assert.deepEqual(got.filter((r) => r.headers['x-wharf-event'] === 'push').map((r) => r.body.digest).sort(), [digestOf(v1), digestOf(v2)].sort());
  for (const r of got) assert.equal(r.headers['x-wharf-signature-256'], 'sha256=' + createHmac('sha256', 'registry-events').update(r.raw).digest('hex'));

  const all = await eventually(async () => {
    const r = await hub.api('GET', `/api/v1/webhooks/deliveries?subscription=${sub.id}`);
    return r.body.every((d: { status: string }) => d.status === 'succeeded') ? r.body : undefined;
  }, 'all deliveries to succeed');
  assert.equal(all.length, 4);
  const movedOnly = await hub.api('GET', '/api/v1/webhooks/deliveries?event=tag.moved');
  assert.equal(movedOnly.body.length, 1);
  assert.equal(movedOnly.body[0].id, movedRequest.headers['x-wharf-delivery']);
  assert.equal((await hub.api('GET', '/api/v1/webhooks/deliveries?status=failed')).body.length, 0);
  assert.equal((await hub.api('GET', '/api/v1/webhooks/deliveries?limit=2')).body.length, 2);

  const detail = await hub.api('GET', `/api/v1/webhooks/deliveries/${movedOnly.body[0].id}`);
  assert.equal(detail.status, 200);
  assert.deepEqual(detail.body.payload, moved);
  assert.deepEqual(detail.body.log.map((a: { attempt: number; statusCode: number }) => [a.attempt, a.statusCode]), [[1, 200]]);
  assert.ok(!detail.raw.includes('registry-events'), 'the secret is not in the delivery log');

  const again = await hub.api('POST', `/api/v1/webhooks/deliveries/${movedOnly.body[0].id}/redeliver`);
  assert.equal(again.status, 202, again.raw);
  const fifth = (await receiver.waitFor(5))[4]!;
  assert.equal(fifth.headers['x-wharf-delivery'], movedOnly.body[0].id);
  assert.equal(fifth.raw.toString(), movedRequest.raw.toString(), 'a redelivery sends the same body');
  assert.equal((await hub.api('POST', '/api/v1/webhooks/deliveries/00000000-0000-0000-0000-000000000000/redeliver')).status, 404);
});

test('redelivering a delivery that is still queued is a conflict', async (t) => {
  const hub = await startHub(t, { backoffBase: 60_000 });
  const gone = await startReceiver();
  await gone.close();
  await hub.api('POST', '/api/v1/webhooks', { url: gone.url, events: ['push'], secret: 'conflicts' });
  const [id] = await hub.wharf.webhooks.emit({ type: 'push', repository: 'a', digest: 'sha256:0' });
  await eventually(async () => ((await hub.wharf.webhooks.delivery(id!)).attempts === 1 ? true : undefined), 'the first attempt');
  const r = await hub.api('POST', `/api/v1/webhooks/deliveries/${id}/redeliver`);
  assert.equal(r.status, 409, r.raw);
  assert.match(r.body.errors[0].message, /already queued/);
});
