// Failed logins are throttled per (user, address) and per address with growing delays (429 TOOMANYREQUESTS
// with Retry-After): a delayed attempt answers the same whatever the password, the real user logging in from
// elsewhere is never refused, and verified credentials are cached so pulls skip scrypt. The throttle's clock is
// the test's: no assertion here depends on how fast the machine is.
// scripts/test.js: alone (login delays are measured)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { basic, pushImage, ADMIN_PASSWORD, startAuthHub, type AuthHub } from './auth-harness.js';

let hub: AuthHub;
let now = Date.parse('2026-01-01T00:00:00Z');
before(async () => {
  // Behind a trusted proxy (the test itself), so X-Forwarded-For gives each request the address it stands for.
  hub = await startAuthHub('trustedProxies: ["127.0.0.1"]\nauth:\n  loginFailures: { perUser: 3, perAddress: 8, delay: 10s, maxDelay: 10m, maxAddressDelay: 1m, window: 1h }\n', {
    now: () => now,
  });
  for (const u of ['alice', 'bob', 'carl', 'dave']) await hub.accounts.addUser(u, 'member', `${u}-password`);
  await hub.accounts.grant('bob', 'pull', '*');
  await pushImage(hub, basic('admin', ADMIN_PASSWORD), 'storm/app', 'v1');
});
after(() => hub?.close());

async function answer(res: Response): Promise<{ status: number; body: string; retryAfter: string | null }> {
  return { status: res.status, body: await res.text(), retryAfter: res.headers.get('retry-after') };
}

const from = (address: string, auth: string) => hub.req('/v2/', { auth, headers: { 'x-forwarded-for': address } });

test('3 failures of a name from an address delay it there: right and wrong passwords then get the same 429', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await from('198.51.100.1', basic('alice', `wrong-${i}`))).status, 401);
  const right = await answer(await from('198.51.100.1', basic('alice', 'alice-password')));
  const wrong = await answer(await from('198.51.100.1', basic('alice', 'wrong-again')));
  assert.equal(right.status, 429);
  assert.match(right.body, /"code":"TOOMANYREQUESTS"/);
  assert.equal(right.retryAfter, '10');
  assert.deepEqual(wrong, right, 'nothing tells a right password from a wrong one while delayed');
  const headers = { 'x-forwarded-for': '198.51.100.1' };
  const token = await answer(await hub.req('/token?service=wharf', { auth: basic('alice', 'alice-password'), headers }));
  assert.equal(token.status, 429, 'the token endpoint shares the delay');
  const oauth = await hub.req('/token', {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'alice-password', service: 'wharf' }).toString(),
  });
  assert.equal(oauth.status, 429, 'and so does the OAuth2 password grant');
});

test('the real user logging in from an address that has not failed is never refused', async () => {
  assert.equal((await from('192.0.2.10', basic('alice', 'alice-password'))).status, 200);
});

test('each further failure doubles the delay; once it is over the right password works again', async () => {
  now += 10_000;
  assert.equal((await from('198.51.100.1', basic('alice', 'wrong-4'))).status, 401, 'one more guess after the delay');
  assert.equal((await answer(await from('198.51.100.1', basic('alice', 'alice-password')))).retryAfter, '20');
  now += 20_000;
  assert.equal((await from('198.51.100.1', basic('alice', 'wrong-5'))).status, 401);
  assert.equal((await answer(await from('198.51.100.1', basic('alice', 'alice-password')))).retryAfter, '40');
  now += 40_000;
  assert.equal((await from('198.51.100.1', basic('alice', 'alice-password'))).status, 200);
});

test('user names that do not exist are delayed the same way', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await from('198.51.100.2', basic('ghost', `wrong-${i}`))).status, 401);
  assert.equal((await from('198.51.100.2', basic('ghost', 'anything'))).status, 429);
});

test('an address over its own limit delays every new login from it, briefly; other addresses are not affected', async () => {
  for (let i = 0; i < 8; i++) assert.equal((await from('198.51.100.3', basic(`user${i}`, 'wrong'))).status, 401);
  const res = await answer(await from('198.51.100.3', basic('dave', 'dave-password')));
  assert.equal(res.status, 429, 'a new login from the address waits');
  assert.equal(res.retryAfter, '10');
  assert.equal((await from('198.51.100.4', basic('dave', 'dave-password'))).status, 200, 'from elsewhere it goes through');
  assert.equal((await from('198.51.100.3', basic('dave', 'dave-password'))).status, 429, 'remembered from elsewhere, it still waits here: no oracle for a sprayer');
  for (let i = 0; i < 10; i++) {
    now += 60_000;
    await from('198.51.100.3', basic(`spray${i}`, 'wrong'));
  }
  assert.equal((await answer(await from('198.51.100.3', basic('carl', 'carl-password')))).retryAfter, '60', 'the address delay stops at maxAddressDelay');
});

test('failures are in the audit log, with the address and the delay they started', async () => {
  const rows = await hub.audit.list({ action: 'login.failure' });
  const alice = rows.filter((r) => r.actor === 'alice');
  assert.equal(alice.length, 5, 'delayed attempts are not logged again and again');
  assert.ok(rows.every((r) => r.result === 'denied'));
  assert.ok(alice.every((r) => r.address === '198.51.100.1'));
  assert.deepEqual(
    alice.map((r) => r.detail?.delayedSeconds ?? null).sort(),
    [10, 20, 40, null, null].sort(),
  );
});

test('a Basic pull storm is not bound by the password hash: the verified credential is remembered', async () => {
  const bob = basic('bob', 'bob-password');
  const before = hub.passwordVerifications();
  // 50 at once on a cold credential share one verification, then 400 more in sequence.
  const cold = await Promise.all(Array.from({ length: 50 }, () => hub.req('/v2/storm/app/manifests/v1', { auth: bob })));
  assert.ok(cold.every((r) => r.status === 200));
  for (let i = 0; i < 400; i++) {
    const res = await hub.req('/v2/storm/app/manifests/v1', { auth: bob });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  }
  assert.equal(hub.passwordVerifications() - before, 1, '450 Basic pulls, one scrypt verification');
});

test('a remembered robot token stops at its own expiry, Basic and Bearer alike, between policy reloads', async () => {
  // Remembered credentials are re-checked when the policy changes; a robot token's expiry is a time, not a
  // change, so it must end the remembered entry by itself.
  const slow = await startAuthHub('auth:\n  policyRefresh: 1h\n');
  try {
    await pushImage(slow, basic('admin', ADMIN_PASSWORD), 'team/app', 'v1');
    const created = Date.now();
    const { secret } = await slow.accounts.createToken('brief', ['repository:team/*:pull'], 1500);
    const creds = basic('ci', secret);
    const token = await (await slow.req('/token?service=wharf&scope=repository:team/app:pull', { auth: creds })).json() as { token: string };
    const bearerCreds = `Bearer ${token.token}`;
    for (const auth of [creds, bearerCreds]) assert.equal((await slow.req('/v2/team/app/manifests/v1', { auth })).status, 200);
    await new Promise((resolve) => setTimeout(resolve, created + 1600 - Date.now()));
    for (const auth of [creds, bearerCreds]) assert.equal((await slow.req('/v2/team/app/manifests/v1', { auth })).status, 401);
  } finally {
    await slow.close();
  }
});

test('a remembered password login is renewed before it expires: its clients never wait for scrypt together', async () => {
  let t = Date.now();
  const hub = await startAuthHub('auth:\n  credentialCacheTtl: 2s\n', { now: () => t });
  try {
    await hub.accounts.addUser('erin', 'member', 'erin-password');
    const erin = basic('erin', 'erin-password');
    const get = async () => {
      const res = await hub.req('/v2/', { auth: erin });
      assert.equal(res.status, 200);
    };
    await get(); // verified with scrypt, remembered for 2 s of the server's clock
    assert.equal(hub.passwordVerifications(), 1);
    t += 1_700; // the last quarter: answered from memory, and verified again in the background
    await get();
    while (hub.passwordVerifications() < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setImmediate(resolve));
    t += 600; // past the first verification's expiry
    await get();
    assert.equal(hub.passwordVerifications(), 2, 'the request after the first expiry was answered by the renewed entry');
  } finally {
    await hub.close();
  }
});
