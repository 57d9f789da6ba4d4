// Behind a TLS-terminating proxy, the audit log's "from where" and the per-address login limit use the
// client's address from X-Forwarded-For — but only when the proxy is trusted (trustedProxies). From anyone
// else the header is a spoofing attempt: it changes neither the recorded address nor whose limit is spent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_PASSWORD, auditRows, basic, pushImage, startAuthHub, type AuthHub } from './auth-harness.js';

const LIMITS = 'auth:\n  loginFailures: { perUser: 100, perAddress: 3, window: 10m }\n';
let direct: AuthHub;
let proxied: AuthHub;
before(async () => {
  direct = await startAuthHub(LIMITS);
  proxied = await startAuthHub(`${LIMITS}trustedProxies: ["127.0.0.1"]\n`);
  // Users who have not logged in yet: a remembered credential is not a login, and no limit applies to it.
  for (const hub of [direct, proxied]) for (const name of ['carol', 'dave']) await hub.accounts.addUser(name, 'member', `${name}-password`);
});
after(async () => {
  await direct?.close();
  await proxied?.close();
});

/** Pushes as admin with the given forwarding headers on every request. */
async function pushVia(hub: AuthHub, forwarded: Record<string, string>, repo: string): Promise<void> {
  const req = hub.req;
  hub.req = (path, init = {}) => req(path, { ...init, headers: { ...Object.fromEntries(new Headers(init.headers)), ...forwarded } });
  try {
    await pushImage(hub, basic('admin', ADMIN_PASSWORD), repo, 'v1');
  } finally {
    hub.req = req;
  }
}

const loginAs = (hub: AuthHub, user: string, password: string, from: string) =>
  hub.req('/v2/', { auth: basic(user, password), headers: { 'x-forwarded-for': from } });

test('from an untrusted peer, X-Forwarded-For is ignored: the audit records the peer', async () => {
  await pushVia(direct, { 'x-forwarded-for': '203.0.113.7' }, 'spoof/app');
  const [row] = await auditRows(direct, { repository: 'spoof/app', action: 'manifest.push' }, 1);
  assert.equal(row!.address, '127.0.0.1');
});

test('from an untrusted peer, a new X-Forwarded-For per attempt does not escape the per-address limit', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await loginAs(direct, `nobody${i}`, 'wrong', `198.51.100.${i}`)).status, 401);
  const res = await loginAs(direct, 'carol', 'carol-password', '198.51.100.99');
  assert.equal(res.status, 429, 'the address (the peer) is locked, whatever the header claims');
});

test('from an untrusted peer, X-Forwarded-Proto does not change the token realm', async () => {
  const res = await direct.req('/v2/', { headers: { 'x-forwarded-proto': 'https' } });
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /realm="http:\/\/127\.0\.0\.1:\d+\/token"/);
});

test('from a trusted proxy: the audit records the client the proxy saw, not what the client claimed', async () => {
  await pushVia(proxied, { 'x-forwarded-for': '198.51.100.1, 203.0.113.7' }, 'behind/app');
  const [row] = await auditRows(proxied, { repository: 'behind/app', action: 'manifest.push' }, 1);
  assert.equal(row!.address, '203.0.113.7');
});

test('from a trusted proxy: each client behind it has its own login limit, and its failures its own address', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await loginAs(proxied, `nobody${i}`, 'wrong', '203.0.113.50')).status, 401);
  assert.equal((await loginAs(proxied, 'carol', 'carol-password', '203.0.113.50')).status, 429, 'that client is locked');
  assert.equal((await loginAs(proxied, 'dave', 'dave-password', '203.0.113.51')).status, 200, 'its neighbour behind the same proxy is not');
  const failures = await auditRows(proxied, { action: 'login.failure' }, 3);
  assert.deepEqual([...new Set(failures.map((r) => r.address))], ['203.0.113.50']);
});

test('from a trusted proxy: X-Forwarded-Proto https makes the token realm https', async () => {
  const res = await proxied.req('/v2/', { headers: { 'x-forwarded-proto': 'https' } });
  assert.match(res.headers.get('www-authenticate') ?? '', /realm="https:\/\/127\.0\.0\.1:\d+\/token"/);
});
