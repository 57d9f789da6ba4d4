// Failed logins delay further attempts of the same name from the same address, and of the address as a whole,
// longer with every failure; nothing is ever counted against a name from everywhere. The clock is the test's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoginLimiter } from '../../src/auth/login-limiter.js';

function limiter() {
  let now = 1_000_000;
  const l = new LoginLimiter({ perUser: 3, perAddress: 6, delayMs: 1_000, maxDelayMs: 60_000, maxAddressDelayMs: 10_000, windowMs: 3_600_000 }, () => now);
  return { l, advance: (ms: number) => (now += ms) };
}

test('a name from one address is delayed after perUser failures, and each further failure doubles the delay', () => {
  const { l, advance } = limiter();
  assert.equal(l.failed('alice', '10.0.0.1'), undefined);
  assert.equal(l.failed('alice', '10.0.0.1'), undefined);
  assert.equal(l.blocked('alice', '10.0.0.1'), undefined);
  assert.equal(l.failed('Alice', '10.0.0.1'), 1, 'the third failure starts a delay, whatever the case of the name');
  assert.equal(l.blocked('alice', '10.0.0.1'), 1);
  advance(1_000);
  assert.equal(l.blocked('alice', '10.0.0.1'), undefined, 'the delay is over');
  assert.equal(l.failed('alice', '10.0.0.1'), 2);
  advance(2_000);
  assert.equal(l.failed('alice', '10.0.0.1'), 4);
  advance(4_000);
  for (let i = 0; i < 10; i++) {
    l.failed('alice', '10.0.0.1');
    advance(60_000);
  }
  assert.equal(l.failed('alice', '10.0.0.1'), 60, 'up to maxDelay, never a lockout');
});

test('the name is never delayed from an address that has not failed', () => {
  const { l } = limiter();
  // A guesser spread over many addresses: each of them is delayed, the real user's address is not.
  for (let a = 0; a < 50; a++) for (let i = 0; i < 5; i++) l.failed('admin', `10.1.0.${a}`);
  assert.ok(l.blocked('admin', '10.1.0.7')! > 0);
  assert.equal(l.blocked('admin', '192.0.2.1'), undefined);
});

test('an address is delayed after perAddress failures across names, for at most maxAddressDelay', () => {
  const { l, advance } = limiter();
  for (const u of ['a', 'b', 'c', 'd', 'e']) l.failed(u, '10.0.0.1');
  assert.equal(l.blocked('f', '10.0.0.1'), undefined);
  assert.equal(l.failed('f', '10.0.0.1'), 1);
  assert.equal(l.blocked('g', '10.0.0.1'), 1, 'any name from that address');
  assert.equal(l.blocked('g', '10.0.0.2'), undefined, 'other addresses are not');
  for (let i = 0; i < 20; i++) {
    advance(10_000);
    l.failed(`x${i}`, '10.0.0.1');
  }
  assert.equal(l.blocked('g', '10.0.0.1'), 10, 'everyone behind one proxy waits, but never long');
});

test('a correct login clears the name’s failures from that address, not the address’s', () => {
  const { l } = limiter();
  l.failed('alice', '10.0.0.1');
  l.failed('alice', '10.0.0.1');
  l.succeeded('alice', '10.0.0.1');
  l.failed('alice', '10.0.0.1');
  l.failed('alice', '10.0.0.1');
  assert.equal(l.blocked('alice', '10.0.0.1'), undefined, 'the count restarted at the success');
  l.failed('zed', '10.0.0.1');
  assert.equal(l.failed('zed', '10.0.0.1'), 1, 'the address kept counting: 6 failures');
});

test('failures are forgotten after the window without one, not while a delay runs', () => {
  const { l, advance } = limiter();
  for (let i = 0; i < 3; i++) l.failed('alice', '10.0.0.1');
  advance(3_600_000);
  assert.equal(l.blocked('alice', '10.0.0.1'), undefined);
  assert.equal(l.failed('alice', '10.0.0.1'), undefined, 'counting starts over');
});

test('two limiters over one database (two instances) add up their failures and share the delays', async () => {
  const { mkdtemp, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { forgetDatabase, openTestStore } = await import('../support/database.js');
  const dir = await mkdtemp(join(tmpdir(), 'wharf-limiter-'));
  const stores = [await openTestStore(join(dir, 'wharf.db')), await openTestStore(join(dir, 'wharf.db'))];
  try {
    let now = 1_000_000;
    const limits = { perUser: 3, perAddress: 100, delayMs: 1_000, maxDelayMs: 60_000, maxAddressDelayMs: 10_000, windowMs: 3_600_000 };
    const [a, b] = stores.map((s) => new LoginLimiter(limits, () => now, s.loginFailures)) as [LoginLimiter, LoginLimiter];
    // Failures at once on both: an increment each, none lost.
    assert.deepEqual(await Promise.all([a.fail('alice', '10.0.0.1'), b.fail('alice', '10.0.0.1')]), [undefined, undefined]);
    assert.equal(await b.check('alice', '10.0.0.1'), undefined);
    assert.equal(await a.fail('alice', '10.0.0.1'), 1, 'the third failure, wherever it was counted, starts the delay');
    assert.equal(await b.check('alice', '10.0.0.1'), 1, 'B refuses the next login: the counter is the database’s');
    // B's remembered credentials are checked against its copy, which reads the running delays in the background.
    const fresh = new LoginLimiter(limits, () => now, stores[1]!.loginFailures);
    assert.equal(fresh.delaying(), false, 'the first look starts the read');
    for (let i = 0; i < 100 && !fresh.delaying(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(fresh.delaying(), true);
    assert.equal(fresh.blocked('alice', '10.0.0.1'), 1);
    assert.equal(fresh.blocked('bob', '10.0.0.1'), undefined);
    // A correct login on B after the delay clears the name's failures for A too.
    now += 1_000;
    assert.equal(await a.check('alice', '10.0.0.1'), undefined);
    await b.succeed('alice', '10.0.0.1');
    assert.equal(await a.fail('alice', '10.0.0.1'), undefined, 'counting starts again from one');
    // Forgotten after the window.
    now += limits.windowMs;
    await a.fail('carol', '10.0.0.2');
    await a.fail('carol', '10.0.0.2');
    now += limits.windowMs + 1;
    assert.equal(await b.fail('carol', '10.0.0.2'), undefined, 'failures older than the window do not count');
  } finally {
    for (const s of stores) await s.close();
    await forgetDatabase(dir);
    await rm(dir, { recursive: true, force: true });
  }
});
