import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retryDelay } from '../../src/webhooks/backoff.js';

const policy = { baseMs: 1000, maxMs: 30_000 };

test('retry delays double from the base and stop at the cap', () => {
  const noJitter = () => 1;
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 20].map((n) => retryDelay(n, policy, noJitter)),
    [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000],
  );
});

test('jitter takes off at most a quarter and never exceeds the cap', () => {
  assert.equal(retryDelay(1, policy, () => 0), 750);
  assert.equal(retryDelay(10, policy, () => 0), 22_500);
  for (let i = 0; i < 200; i++) {
    const d = retryDelay(3, policy);
    assert.ok(d >= 3000 && d <= 4000, String(d));
  }
});
