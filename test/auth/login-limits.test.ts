// Failed logins are rate limited per user and per client address (429 TOOMANYREQUESTS), a locked account
// answers the same whatever the password, and verified credentials are cached so pulls skip scrypt.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { basic, pushImage, ADMIN_PASSWORD, startAuthHub, type AuthHub } from './auth-harness.js';

let hub: AuthHub;
before(async () => {
  hub = await startAuthHub('auth:\n  loginFailures: { perUser: 3, perAddress: 8, window: 10m }\n');
  for (const u of ['alice', 'bob', 'carl', 'dave']) await hub.accounts.addUser(u, 'member', `${u}-password`);
  await hub.accounts.grant('bob', 'pull', '*');
  await pushImage(hub, basic('admin', ADMIN_PASSWORD), 'storm/app', 'v1');
});
after(() => hub?.close());

async function answer(res: Response): Promise<{ status: number; body: string; retryAfter: string | null }> {
  return { status: res.status, body: await res.text(), retryAfter: res.headers.get('retry-after') };
}

test('a user is locked after 3 failures: right and wrong passwords then get the same 429', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await hub.req('/v2/', { auth: basic('alice', `wrong-${i}`) })).status, 401);
  const right = await answer(await hub.req('/v2/', { auth: basic('alice', 'alice-password') }));
  const wrong = await answer(await hub.req('/v2/', { auth: basic('alice', 'wrong-again') }));
  assert.equal(right.status, 429);
  assert.match(right.body, /"code":"TOOMANYREQUESTS"/);
  assert.ok(Number(right.retryAfter) > 0 && Number(right.retryAfter) <= 600, `Retry-After ${right.retryAfter}`);
  assert.deepEqual(wrong, right, 'nothing tells a right password from a wrong one while locked');
  const token = await answer(await hub.req('/token?service=wharf', { auth: basic('alice', 'alice-password') }));
  assert.equal(token.status, 429, 'the token endpoint shares the lock');
  const oauth = await hub.req('/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'password', username: 'alice', password: 'alice-password', service: 'wharf' }).toString(),
  });
  assert.equal(oauth.status, 429, 'and so does the OAuth2 password grant');
});

test('user names that do not exist are locked the same way', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await hub.req('/v2/', { auth: basic('ghost', `wrong-${i}`) })).status, 401);
  assert.equal((await hub.req('/v2/', { auth: basic('ghost', 'anything') })).status, 429);
});

test('other users still log in until the address itself is over its limit', async () => {
  assert.equal((await hub.req('/v2/', { auth: basic('bob', 'bob-password') })).status, 200);
  // 6 failures so far from 127.0.0.1 (alice, ghost); two more reach the address limit of 8.
  assert.equal((await hub.req('/v2/', { auth: basic('carl', 'wrong') })).status, 401);
  assert.equal((await hub.req('/v2/', { auth: basic('carl', 'wrong') })).status, 401);
  assert.equal((await hub.req('/v2/', { auth: basic('dave', 'dave-password') })).status, 429, 'a new login from the address is refused');
  assert.equal((await hub.req('/v2/', { auth: basic('bob', 'bob-password') })).status, 200, 'an already verified credential keeps working');
});

test('failures are in the audit log, with the address and the lock', async () => {
  const rows = await hub.audit.list({ action: 'login.failure' });
  assert.equal(rows.filter((r) => r.actor === 'alice').length, 3, 'locked attempts are not logged again and again');
  assert.ok(rows.every((r) => r.address === '127.0.0.1' && r.result === 'denied'));
  assert.equal(rows.filter((r) => r.actor === 'alice' && r.detail?.locked === true).length, 1);
});

test('a Basic pull storm is not bound by the password hash: the verified credential is remembered', async () => {
  const bob = basic('bob', 'bob-password');
  const started = performance.now();
  // 50 at once on a cold credential share one verification, then 400 more in sequence.
  const cold = await Promise.all(Array.from({ length: 50 }, () => hub.req('/v2/storm/app/manifests/v1', { auth: bob })));
  assert.ok(cold.every((r) => r.status === 200));
  for (let i = 0; i < 400; i++) {
    const res = await hub.req('/v2/storm/app/manifests/v1', { auth: bob });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  }
  const ms = performance.now() - started;
  // One scrypt verification takes ~100 ms: 450 of them would take 45 s.
  assert.ok(ms < 10_000, `450 Basic pulls took ${Math.round(ms)} ms`);
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
  const hub = await startAuthHub('auth:\n  credentialCacheTtl: 2s\n');
  try {
    await hub.accounts.addUser('erin', 'member', 'erin-password');
    const erin = basic('erin', 'erin-password');
    const timed = async () => {
      const started = performance.now();
      const res = await hub.req('/v2/', { auth: erin });
      assert.equal(res.status, 200);
      return performance.now() - started;
    };
    const sleepUntil = (t: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, t - performance.now())));
    const cold = await timed(); // scrypt
    // The entry lives 2 s from when the cold verification finished (now, give or take): times count from here, so a
    // slow scrypt on a busy machine cannot push the renewal request out of the last quarter.
    const t0 = performance.now();
    await sleepUntil(t0 + 1_700); // the last quarter of the 2 s: answered, and renewed in the background
    await timed();
    await sleepUntil(t0 + 2_300); // past the first verification's expiry
    const after = await timed();
    assert.ok(after < cold / 2, `the request after the first expiry took ${after.toFixed(0)} ms, the cold one ${cold.toFixed(0)} ms`);
  } finally {
    await hub.close();
  }
});
