// The management API writes a call's audit row before its answer goes out, so a client that has its answer finds
// its row, and calls made one after the other are rows in that order, however slow the log is (PostgreSQL under
// CI's load met the opposite: a later call's row got the lower id).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { z } from 'zod';
import type { AuditEntry, AuditLog } from '../../src/audit/audit-log.js';
import { RegistryError } from '../../src/oci/errors.js';
import { managementApi, type ApiRoute } from '../../src/server/api.js';
import type { RequestAccess } from '../../src/server/access.js';

/** An audit log that takes its time: the first row slowest, so that a row written after the answer lands last. */
const rows: AuditEntry[] = [];
let delays = [120, 10];
const log = {
  record: async (e: AuditEntry) => {
    await new Promise((r) => setTimeout(r, delays.shift() ?? 0));
    rows.push(e);
  },
} as unknown as AuditLog;

const access = { authorize: async () => ({ name: 'ada', kind: 'user' }) } as unknown as RequestAccess;
const routes: ApiRoute[] = [
  {
    method: 'POST',
    pattern: /^\/api\/v1\/things\/(?<name>[^/]+)$/,
    access: { actions: ['push'] },
    audit: { action: 'thing.make', targetParam: 'name' },
    status: 201,
    handle: async ({ params, body }) => {
      const { fail } = await body(z.object({ fail: z.boolean().optional() }));
      if (fail) throw new RegistryError('DENIED', `no ${params.name}`);
      return { made: params.name };
    },
  },
];

let server: Server;
let url: string;
before(async () => {
  const api = managementApi(routes, access, pino({ level: 'silent' }), { log, actorOf: () => ({ name: 'ada', kind: 'user', address: '127.0.0.1' }) });
  server = createServer((req, res) => void api(req, res, new URL(req.url ?? '/', 'http://127.0.0.1')));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

const make = (name: string, fail = false) =>
  fetch(`${url}/api/v1/things/${name}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ fail }) });

test('a call that succeeds and then one that fails are rows in that order, each there when its answer comes', async () => {
  rows.length = 0;
  delays = [120, 10];
  const first = await make('one');
  assert.equal(first.status, 201);
  assert.deepEqual(await first.json(), { made: 'one' });
  assert.deepEqual(rows.map((r) => [r.action, r.target, r.result]), [['thing.make', 'one', 'ok']], 'the row is written before the answer');
  const second = await make('two', true);
  assert.equal(second.status, 403);
  assert.deepEqual(rows.map((r) => [r.target, r.result]), [['one', 'ok'], ['two', 'denied']]);
});

test('an audit log that fails does not fail the call (the failure is logged)', async () => {
  const failing = { record: async () => Promise.reject(new Error('disk full')) } as unknown as AuditLog;
  const api = managementApi(routes, access, pino({ level: 'silent' }), { log: failing, actorOf: () => ({ name: 'ada', kind: 'user', address: null }) });
  const s = createServer((req, res) => void api(req, res, new URL(req.url ?? '/', 'http://127.0.0.1')));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  try {
    const res = await fetch(`http://127.0.0.1:${(s.address() as AddressInfo).port}/api/v1/things/three`, { method: 'POST', body: '{}' });
    assert.equal(res.status, 201);
  } finally {
    await new Promise<void>((r) => s.close(() => r()));
  }
});
