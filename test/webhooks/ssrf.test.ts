// Webhooks cannot be aimed at the hub's own network: loopback, private, link-local (cloud metadata),
// unspecified, multicast and their IPv4-mapped/translated forms are refused at creation when written as an
// address, and at connect time on the resolved address (a name resolving there, DNS rebinding included),
// unless the server's webhooks.allowTargets names the host or range. URLs with credentials are refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LookupAddress } from 'node:dns';
import { pino } from 'pino';
import { forgetDatabase, openTestStore } from '../support/database.js';
import { postDelivery } from '../../src/server/webhook-delivery.js';
import { Webhooks, type WebhookOptions } from '../../src/webhooks/service.js';
import { DestinationPolicy, type Resolve } from '../../src/webhooks/destinations.js';
import { startRegistry } from '../server/v2-harness.js';
import { eventually, startReceiver, type Receiver } from './receiver.js';

const log = pino({ level: 'silent' });
const FAST: WebhookOptions = { timeout: 2_000, backoffBase: 20, backoffMax: 50, maxAttempts: 1, pollInterval: 100, concurrency: 2 };

/** A resolver that answers from a table, as a DNS server under an attacker's control would. */
function resolverOf(table: Record<string, string[]>): Resolve {
  return (hostname, _options, callback) => {
    const addresses = table[hostname];
    if (!addresses) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    callback(null, addresses.map((address): LookupAddress => ({ address, family: address.includes(':') ? 6 : 4 })));
  };
}

async function webhooksWith(t: { after(fn: () => Promise<void>): void }, policy: DestinationPolicy): Promise<Webhooks> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-ssrf-'));
  const meta = await openTestStore(join(dir, 'wharf.db'));
  const webhooks = new Webhooks(meta.webhooks, FAST, postDelivery, policy);
  webhooks.startDispatcher(log);
  t.after(async () => {
    await webhooks.stop();
    await meta.close();
    await rm(dir, { recursive: true, force: true });
    await forgetDatabase(dir);
  });
  return webhooks;
}

async function receiver(t: { after(fn: () => Promise<void>): void }): Promise<Receiver> {
  const r = await startReceiver(() => 204);
  t.after(() => r.close());
  return r;
}

/** Sends one event to `url` and returns the finished delivery. */
async function deliverTo(webhooks: Webhooks, url: string) {
  await webhooks.addSubscription({ url, events: ['push'], secret: 'a secret of sorts' });
  const [id] = await webhooks.emit({ type: 'push', repository: 'team/app', digest: 'sha256:' + 'a'.repeat(64), tag: '1' });
  return eventually(async () => {
    const d = await webhooks.delivery(id!);
    return d.status === 'pending' ? undefined : d;
  }, `delivery to ${url}`);
}

test('every forbidden kind of address is refused, in every spelling; public unicast is not', () => {
  const policy = new DestinationPolicy([], undefined, ['93.184.216.34']);
  const refused = [
    '169.254.169.254', // cloud metadata (link-local)
    '::ffff:a9fe:a9fe', // the same, IPv4-mapped
    '::ffff:169.254.169.254',
    '::ffff:0:a9fe:a9fe', // IPv4-translated (SIIT)
    '64:ff9b::a9fe:a9fe', // NAT64
    '2002:a9fe:a9fe::1', // 6to4
    '::a9fe:a9fe', // IPv4-compatible
    'fe80::1',
    '127.0.0.1',
    '127.1.2.3',
    '::1',
    '::ffff:127.0.0.1',
    '10.1.2.3',
    '172.16.0.1',
    '192.168.1.1',
    'fd00::1',
    '100.64.0.1',
    '0.0.0.0',
    '::',
    '224.0.0.1',
    'ff02::1',
    '255.255.255.255',
    '93.184.216.34', // this server's own address
  ];
  for (const a of refused) assert.ok(policy.refusal(a), `${a} must be refused`);
  assert.match(policy.refusal('169.254.169.254')!, /link-local.*webhooks\.allowTargets/);
  assert.match(policy.refusal('::ffff:a9fe:a9fe')!, /link-local.*IPv4-mapped/);
  assert.match(policy.refusal('93.184.216.34')!, /this Wharf server/);
  for (const a of ['8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8']) assert.equal(policy.refusal(a), undefined, `${a} is public`);

  const allowing = new DestinationPolicy(['127.0.0.1', '10.0.0.0/8', 'fd00::/16'], undefined, []);
  for (const a of ['127.0.0.1', '::ffff:127.0.0.1', '10.200.0.1', 'fd00::5']) assert.equal(allowing.refusal(a), undefined, `${a} is allowed`);
  for (const a of ['127.0.0.2', '169.254.169.254', '192.168.0.1']) assert.ok(allowing.refusal(a), `${a} is still refused`);
  assert.throws(() => new DestinationPolicy(['not a host!']), /invalid webhook target/);
});

test('the API refuses metadata, mapped, private and the hub\'s own addresses, and credentials, with a 400 naming why', async (t) => {
  const hub = await startRegistry();
  t.after(() => hub.close());
  const add = async (url: string) => {
    const res = await hub.req('/api/v1/webhooks', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ url, events: ['push'] }) });
    return { status: res.status, body: (await res.json()) as { errors?: { message: string }[] } };
  };
  const cases: [string, RegExp][] = [
    ['http://169.254.169.254/latest/meta-data/', /link-local/],
    ['http://[::ffff:a9fe:a9fe]/', /link-local.*IPv4-mapped/],
    ['http://[::ffff:169.254.169.254]/', /link-local/],
    ['http://[64:ff9b::a9fe:a9fe]/', /NAT64/],
    [`${hub.url}/api/v1/gc`, /loopback/], // the hub itself
    ['http://[::1]:5000/', /loopback/],
    ['http://0.0.0.0:5000/', /unspecified/],
    ['http://[::]/', /unspecified/],
    ['http://10.0.0.1/', /private/],
    ['http://[fd12::1]/', /private/],
    ['http://224.0.0.1/', /multicast/],
    ['http://2130706433/', /loopback/], // 127.0.0.1 as one number: URL parsing makes it 127.0.0.1
    ['http://user:pass@hooks.example.com/', /credentials/],
    ['https://token@hooks.example.com/', /credentials/],
  ];
  for (const [url, why] of cases) {
    const r = await add(url);
    assert.equal(r.status, 400, `${url}: ${JSON.stringify(r.body)}`);
    assert.match(r.body.errors![0]!.message, why, url);
  }
  const listed = await (await hub.req('/api/v1/webhooks')).json();
  assert.deepEqual(listed, [], 'nothing refused was stored');
  // A name is judged when a delivery connects (below), so it is accepted here.
  assert.equal((await add('https://hooks.example.com/wharf')).status, 201);
});

test('a name resolving to loopback is refused at connect time and the receiver gets nothing', async (t) => {
  const r = await receiver(t);
  const webhooks = await webhooksWith(t, new DestinationPolicy([]));
  const d = await deliverTo(webhooks, r.url.replace('127.0.0.1', 'localhost'));
  assert.equal(d.status, 'failed');
  assert.match(d.log[0]!.error!, /refused: localhost resolves to .*loopback/);
  assert.equal(d.log[0]!.statusCode, null);
  assert.equal(r.received.length, 0);
});

test('DNS rebinding: a name that resolves to the metadata service or loopback at delivery is refused', async (t) => {
  const r = await receiver(t);
  const port = new URL(r.url).port;
  const webhooks = await webhooksWith(t, new DestinationPolicy([], resolverOf({ 'rebind.example.test': ['169.254.169.254', '::ffff:7f00:1', '127.0.0.1'] }), []));
  const d = await deliverTo(webhooks, `http://rebind.example.test:${port}/hook`);
  assert.equal(d.status, 'failed');
  assert.match(d.log[0]!.error!, /refused: rebind\.example\.test resolves to 169\.254\.169\.254 is a link-local/);
  assert.equal(r.received.length, 0);
});

test('a literal address written in a stored URL is refused at delivery too (policy tightened after creation)', async (t) => {
  const r = await receiver(t);
  const open = await webhooksWith(t, new DestinationPolicy(['127.0.0.1'], undefined, []));
  await open.addSubscription({ url: r.url, events: ['push'] });
  const strict = new Webhooks(open.store, FAST, postDelivery, new DestinationPolicy([], undefined, []));
  strict.startDispatcher(log);
  t.after(() => strict.stop());
  await open.stop();
  const [id] = await strict.emit({ type: 'push', repository: 'team/app', digest: 'sha256:' + 'b'.repeat(64), tag: '1' });
  const d = await eventually(async () => {
    const x = await strict.delivery(id!);
    return x.status === 'pending' ? undefined : x;
  }, 'the delivery');
  assert.equal(d.status, 'failed');
  assert.match(d.log[0]!.error!, /refused: 127\.0\.0\.1 is a loopback/);
  assert.equal(r.received.length, 0);
});

test('a redirect to the metadata service is logged, not followed', async (t) => {
  const metadata = await receiver(t);
  const { createServer } = await import('node:http');
  const redirector = createServer((req, res) => {
    req.resume();
    res.writeHead(302, { location: metadata.url }).end();
  });
  await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => redirector.close(() => resolve())));
  const port = (redirector.address() as { port: number }).port;
  const webhooks = await webhooksWith(t, new DestinationPolicy([`127.0.0.1/32`], undefined, []));
  const d = await deliverTo(webhooks, `http://127.0.0.1:${port}/hook`);
  assert.equal(d.status, 'failed');
  assert.equal(d.log[0]!.statusCode, 302);
  assert.equal(metadata.received.length, 0);
});

test('allowed targets are delivered to: an allowed address, an allowed range, an allowed name', async (t) => {
  const r = await receiver(t);
  const port = new URL(r.url).port;
  // localhost resolves to ::1 and 127.0.0.1: only the allowed address is connected to.
  const byAddress = await webhooksWith(t, new DestinationPolicy(['127.0.0.1'], undefined, []));
  assert.equal((await deliverTo(byAddress, r.url.replace('127.0.0.1', 'localhost'))).status, 'succeeded');
  const byRange = await webhooksWith(t, new DestinationPolicy(['127.0.0.0/8'], undefined, []));
  assert.equal((await deliverTo(byRange, r.url)).status, 'succeeded');
  const byName = await webhooksWith(t, new DestinationPolicy(['hooks.internal'], resolverOf({ 'hooks.internal': ['127.0.0.1'] }), []));
  assert.equal((await deliverTo(byName, `http://hooks.internal:${port}/hook`)).status, 'succeeded');
  assert.equal(r.received.length, 3);
});

test('webhooks.allowTargets comes from the file or WHARF_WEBHOOK_ALLOW_TARGETS, and a bad entry stops the server', async () => {
  const { loadConfig } = await import('../../src/config.js');
  assert.deepEqual(loadConfig({ env: {} }).webhooks.allowTargets, []);
  assert.deepEqual(loadConfig({ env: { WHARF_WEBHOOK_ALLOW_TARGETS: '127.0.0.1, 10.0.0.0/8 hooks.internal' } }).webhooks.allowTargets, ['127.0.0.1', '10.0.0.0/8', 'hooks.internal']);
  assert.throws(() => loadConfig({ env: { WHARF_WEBHOOK_ALLOW_TARGETS: '10.0.0.0/99' } }), /webhooks\.allowTargets\.0: expected a hostname, an IP address or a CIDR range/);
});
