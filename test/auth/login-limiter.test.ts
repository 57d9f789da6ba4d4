// Failed logins lock a user name and a client address for the rest of their window, then let go.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoginLimiter } from '../../src/auth/login-limiter.js';

function limiter() {
  let now = 1_000_000;
  const l = new LoginLimiter({ perUser: 3, perAddress: 5, windowMs: 60_000 }, () => now);
  return { l, advance: (ms: number) => (now += ms) };
}

test('a user is locked after perUser failures, for the rest of the window', () => {
  const { l, advance } = limiter();
  assert.equal(l.failed('alice', '10.0.0.1'), false);
  assert.equal(l.failed('alice', '10.0.0.2'), false);
  assert.equal(l.blocked('alice', '10.0.0.3'), undefined);
  assert.equal(l.failed('Alice', '10.0.0.3'), true, 'the third failure locks, whatever the case of the name');
  assert.equal(l.blocked('alice', '10.0.0.9'), 60, 'locked from any address');
  assert.equal(l.blocked('bob', '10.0.0.9'), undefined, 'others are not');
  advance(30_000);
  assert.equal(l.blocked('alice', '10.0.0.9'), 30);
  advance(30_000);
  assert.equal(l.blocked('alice', '10.0.0.9'), undefined, 'the window is over');
});

test('an address is locked after perAddress failures across user names', () => {
  const { l } = limiter();
  for (const u of ['a', 'b', 'c', 'd']) l.failed(u, '10.0.0.1');
  assert.equal(l.blocked('e', '10.0.0.1'), undefined);
  assert.equal(l.failed('e', '10.0.0.1'), true);
  assert.ok(l.blocked('f', '10.0.0.1')! > 0, 'any name from that address');
  assert.equal(l.blocked('f', '10.0.0.2'), undefined, 'other addresses are not');
});

test('a successful login clears the user’s failures, not the address’s', () => {
  const { l } = limiter();
  l.failed('alice', '10.0.0.1');
  l.failed('alice', '10.0.0.1');
  l.succeeded('alice');
  l.failed('alice', '10.0.0.1');
  l.failed('alice', '10.0.0.1');
  assert.equal(l.blocked('alice', '10.0.0.2'), undefined, 'the count restarted at the success');
  assert.equal(l.failed('zed', '10.0.0.1'), true, 'the address count kept counting: 5 failures');
});
