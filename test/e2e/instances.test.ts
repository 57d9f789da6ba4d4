// Two Wharf instances over one metadata database and one data directory (PostgreSQL with WHARF_TEST_DB=postgres, else
// two processes sharing the SQLite file): what they must agree on besides the registry data, which the cluster test
// covers. Token signing keys rotated and retired (`wharf keys`), one garbage collection at a time, login throttling,
// and a password change, a robot token revocation and a user removal on one refused by the other within the bound
// docs/configuration.md states.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeProtectedHeader } from 'jose';
import { forgetDatabase, onDatabase, onPostgres } from '../support/database.js';
import { runWharf, startWharf, withLogsOnFailure, type WharfServer } from '../support/server.js';

/**
 * auth.policyRefresh (users, tokens, grants, signing keys) and login-limiter.ts's SHARED_PULL_MS are 1 s each: a change
 * made through one instance holds on the other within that, plus a request's time. Polled up to this, in steps.
 */
const BOUND_MS = 1_000;
const POLL_LIMIT_MS = BOUND_MS + 1_500;

let work: string;
let data: string;
let config: string;
let a: WharfServer;
let b: WharfServer;
const env = () => ({ WHARF_CONFIG: config });

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-test-instances-'));
  data = join(work, 'data');
  config = join(work, 'wharf.yaml');
  // Three failures of one name from one address start a delay longer than the test.
  await writeFile(config, 'auth:\n  loginFailures:\n    perUser: 3\n    delay: 120s\n');
  a = await startWharf({ dataDir: data, env: env() });
  b = await startWharf({ dataDir: data, env: env() });
});

after(async () => {
  await a?.stop().catch(() => undefined);
  await b?.stop().catch(() => undefined);
  await forgetDatabase(data);
  await rm(work, { recursive: true, force: true });
});

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

async function status(s: WharfServer, path: string, authorization: string, init: RequestInit = {}): Promise<number> {
  const res = await fetch(s.url + path, { ...init, headers: { authorization, ...(init.headers as Record<string, string>) } });
  await res.arrayBuffer();
  return res.status;
}

async function api<T = unknown>(s: WharfServer, method: string, path: string, body?: unknown, authorization = s.authorization): Promise<{ status: number; body: T }> {
  const res = await fetch(s.url + path, {
    method,
    headers: { authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
}

/** An access token for a pull of team/app from `s`'s /token endpoint. */
async function accessToken(s: WharfServer, authorization: string): Promise<string> {
  const res = await fetch(`${s.url}/token?service=wharf&scope=repository:team/app:pull`, { headers: { authorization } });
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { token: string }).token;
}

/** Polls `probe` until it returns `want`, for at most POLL_LIMIT_MS; the time it took. */
async function within(what: string, want: number, probe: () => Promise<number>): Promise<number> {
  const started = Date.now();
  let got = await probe();
  while (got !== want && Date.now() - started < POLL_LIMIT_MS) {
    await sleep(50);
    got = await probe();
  }
  assert.equal(got, want, `${what}: still ${got} after ${Date.now() - started} ms`);
  return Date.now() - started;
}

test('wharf keys rotate: old tokens stay valid on both, new ones carry the new kid, an instance started before verifies them; --retire refuses the old', { timeout: 60_000 }, () =>
  withLogsOnFailure(b, async () => {
    const old = await accessToken(a, a.authorization);
    const oldKid = decodeProtectedHeader(old).kid!;
    assert.equal(await status(b, '/v2/', `Bearer ${old}`), 200);

    const rotated = await runWharf(['keys', 'rotate', '--data', data], { env: env() });
    assert.equal(rotated.code, 0, rotated.stderr);
    const newKid = /signing with key (\S+) from now on/.exec(rotated.stdout)?.[1];
    assert.ok(newKid && newKid !== oldKid, rotated.stdout);

    // A signs with the new key within the bound; B, started before the rotation, verifies its tokens at once.
    let fresh = '';
    await within('A signs with the new key', 1, async () => {
      fresh = await accessToken(a, a.authorization);
      return decodeProtectedHeader(fresh).kid === newKid ? 1 : 0;
    });
    assert.equal(await status(b, '/v2/', `Bearer ${fresh}`), 200);
    const fromB = await accessToken(b, b.authorization);
    assert.equal(await status(a, '/v2/', `Bearer ${fromB}`), 200);
    for (const s of [a, b]) assert.equal(await status(s, '/v2/', `Bearer ${old}`), 200, 'a token of the previous key stays valid until it expires');

    // (`wharf keys list` prints the same answer: test/cli/admin-server.test.ts)
    const listed = await api<{ kid: string; state: string }[]>(b, 'GET', '/api/v1/keys');
    assert.deepEqual(
      listed.body.map((k) => [k.kid, k.state]),
      [
        [oldKid, 'verifying'],
        [newKid, 'signing'],
      ],
    );
    assert.doesNotMatch(JSON.stringify(listed.body), /"d"|private/i, 'no private key is ever listed');

    // Over the API: admins only.
    const member = await api(a, 'POST', '/api/v1/users', { name: 'keys-member', role: 'member', password: 'keys-member-pw' });
    assert.equal(member.status, 201, JSON.stringify(member.body));
    const memberAuth = basic('keys-member', 'keys-member-pw');
    await within('the member is known to B', 200, () => status(b, '/v2/', memberAuth));
    assert.equal((await api(b, 'POST', '/api/v1/keys/rotate', { retire: true }, memberAuth)).status, 403);
    assert.equal((await api(b, 'GET', '/api/v1/keys', undefined, memberAuth)).status, 403);
    assert.equal((await api(b, 'POST', '/api/v1/keys/rotate', { retire: true }, 'Basic ' + Buffer.from('admin:wrong').toString('base64'))).status, 401);
    assert.equal((await api(b, 'POST', '/api/v1/keys/rotate', { retire: 'yes' })).status, 400);

    // Retired through B: every earlier token is refused by both within the bound, remembered ones included.
    const retired = await api<{ kid: string; state: string }>(b, 'POST', '/api/v1/keys/rotate', { retire: true });
    assert.equal(retired.status, 201, JSON.stringify(retired.body));
    assert.equal(retired.body.state, 'signing');
    for (const s of [a, b]) {
      for (const t of [old, fresh, fromB]) await within('a token of a retired key is refused', 401, () => status(s, '/v2/', `Bearer ${t}`));
    }
    const after = await accessToken(a, a.authorization);
    await within('a token of the newest key is accepted', 200, () => status(b, '/v2/', `Bearer ${after}`));
    assert.equal(decodeProtectedHeader(after).kid, retired.body.kid);
    const keys = await api<{ state: string }[]>(a, 'GET', '/api/v1/keys');
    assert.deepEqual(
      keys.body.map((k) => k.state),
      ['retired', 'retired', 'signing'],
    );
  }),
);

test('one garbage collection at a time across the instances: the other gets 409; a dead holder blocks only until its lease runs out', { timeout: 60_000 }, async () => {
  const outcomes: number[] = [];
  for (let round = 0; round < 6; round++) {
    const both = await Promise.all([a, b].map((s) => api<{ message?: string; errors?: { message: string }[] }>(s, 'POST', '/api/v1/gc', {})));
    for (const r of both) {
      assert.ok(r.status === 200 || r.status === 409, JSON.stringify(r));
      if (r.status === 409) assert.match(JSON.stringify(r.body), /a garbage collection is already running \(.* pid \d+/);
      outcomes.push(r.status);
    }
  }
  // The recorded runs never overlap in time.
  const runs = (await api<{ startedAt: string; finishedAt: string }[]>(a, 'GET', '/api/v1/gc/runs?limit=100')).body
    .map((r) => [Date.parse(r.startedAt), Date.parse(r.finishedAt)] as const)
    .sort((x, y) => x[0] - y[0]);
  assert.equal(runs.length, outcomes.filter((s) => s === 200).length);
  for (let i = 1; i < runs.length; i++) assert.ok(runs[i]![0] >= runs[i - 1]![1], `runs ${i - 1} and ${i} overlap: ${JSON.stringify(runs)}`);

  // An instance killed mid-collection leaves its lease behind: refused until it runs out, then taken over.
  const expires = Date.now() + 1_500;
  await onDatabase(data, (db) => db.insertInto('leases').values({ name: 'gc', holder: 'killed-host pid 99', acquired_at: Date.now() - 20_000, expires_at: expires }).execute());
  const refused = await api(b, 'POST', '/api/v1/gc', {});
  assert.equal(refused.status, 409);
  assert.match(JSON.stringify(refused.body), /killed-host pid 99.*lease runs out at/);
  await sleep(Math.max(0, expires - Date.now()) + 50);
  assert.equal((await api(b, 'POST', '/api/v1/gc', {})).status, 200);
  console.log(`gc across instances: ${outcomes.filter((s) => s === 200).length} runs, ${outcomes.filter((s) => s === 409).length} refused with 409 over 6 simultaneous pairs`);
});

test('failed logins on A delay the same name from the same address on B, remembered credentials included', { timeout: 60_000 }, async () => {
  assert.equal((await api(a, 'POST', '/api/v1/users', { name: 'carol', role: 'member', password: 'carol-password' })).status, 201);
  const good = basic('carol', 'carol-password');
  await within('carol logs in on B', 200, () => status(b, '/v2/', good)); // remembered by B from now on
  for (let i = 0; i < 3; i++) assert.equal(await status(a, '/v2/', basic('carol', `wrong-${i}`)), 401);
  assert.equal(await status(a, '/v2/', good), 429, 'A delays the next attempt, right or wrong');
  const took = await within('B delays carol too', 429, () => status(b, '/v2/', good));
  const res = await fetch(`${b.url}/token?service=wharf`, { headers: { authorization: good } });
  await res.arrayBuffer();
  assert.equal(res.status, 429);
  assert.ok(Number(res.headers.get('retry-after')) > 60, `Retry-After ${res.headers.get('retry-after')}`);
  // Not an account lockout: the same name from elsewhere and other users are unaffected.
  assert.equal(await status(b, '/v2/', b.authorization), 200);
  console.log(`login delay seen by the other instance after ${took} ms`);
});

test('a password change, a robot token revocation and a user removal on A are refused by B within the bound', { timeout: 60_000 }, async () => {
  assert.equal((await api(a, 'POST', '/api/v1/users', { name: 'dave', role: 'member', password: 'dave-password-1' })).status, 201);
  assert.equal((await api(a, 'POST', '/api/v1/users', { name: 'erin', role: 'member', password: 'erin-password' })).status, 201);
  const dave = basic('dave', 'dave-password-1');
  const erin = basic('erin', 'erin-password');
  await within('dave known to B', 200, () => status(b, '/v2/', dave));
  await within('erin known to B', 200, () => status(b, '/v2/', erin));
  const daveBearer = `Bearer ${await accessToken(a, dave)}`;
  const erinBearer = `Bearer ${await accessToken(b, erin)}`;
  assert.equal(await status(b, '/v2/', daveBearer), 200);
  assert.equal(await status(b, '/v2/', erinBearer), 200);
  const robot = await api<{ secret: string; name: string }>(a, 'POST', '/api/v1/tokens', { name: 'ci-robot' });
  assert.equal(robot.status, 201, JSON.stringify(robot.body));
  const robotAuth = basic('ci-robot', robot.body.secret);
  await within('the robot token known to B', 200, () => status(b, '/v2/', robotAuth));

  const changed = await api(a, 'PATCH', '/api/v1/users/dave', { password: 'dave-password-2' });
  assert.equal(changed.status, 204, JSON.stringify(changed.body));
  const timings: Record<string, number> = {};
  timings.password = await within('B refuses the old password', 401, () => status(b, '/v2/', dave));
  timings.passwordToken = await within('B refuses a token issued before the change', 401, () => status(b, '/v2/', daveBearer));
  assert.equal(await status(b, '/v2/', basic('dave', 'dave-password-2')), 200);

  assert.equal((await api(a, 'DELETE', '/api/v1/tokens/ci-robot')).status, 204);
  timings.robot = await within('B refuses the revoked robot token', 401, () => status(b, '/v2/', robotAuth));

  assert.equal((await api(a, 'DELETE', '/api/v1/users/erin')).status, 204);
  timings.removed = await within('B refuses the removed user', 401, () => status(b, '/v2/', erin));
  timings.removedToken = await within('B refuses the removed user’s token', 401, () => status(b, '/v2/', erinBearer));
  console.log(`refused by the other instance after (ms): ${JSON.stringify(timings)}${onPostgres ? ' (PostgreSQL)' : ' (SQLite)'}`);
});
