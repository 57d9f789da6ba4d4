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
