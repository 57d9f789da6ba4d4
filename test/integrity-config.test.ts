// The integrity and health settings: sizes as written by people, defaults, and bad values named by their key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, parseSize } from '../src/config.js';

test('sizes read as bytes in binary and decimal units', () => {
  assert.equal(parseSize('64MiB'), 64 << 20);
  assert.equal(parseSize('1.5 GiB'), 1.5 * 2 ** 30);
  assert.equal(parseSize('500MB'), 500e6);
  assert.equal(parseSize(4096), 4096);
  assert.throws(() => parseSize('fast'), /invalid size "fast"/);
});

test('integrity and health default to hashing unverified blobs, a daily 32 MiB/s scrub and 256 MiB free', () => {
  const c = loadConfig({ env: {} });
  assert.deepEqual(c.integrity, { hashOnServe: 'unverified', scrubInterval: 24 * 3_600_000, scrubRate: 32 << 20 });
  assert.equal(c.health.minFreeBytes, 256 << 20);
});

test('the environment sets them, and a bad value names its key', () => {
  const c = loadConfig({ env: { WHARF_HASH_ON_SERVE: 'always', WHARF_SCRUB_INTERVAL: '0', WHARF_SCRUB_RATE: '8MiB', WHARF_MIN_FREE_BYTES: '1GiB' } });
  assert.equal(c.integrity.hashOnServe, 'always');
  assert.equal(c.integrity.scrubInterval, 0);
  assert.equal(c.integrity.scrubRate, 8 << 20);
  assert.equal(c.health.minFreeBytes, 1 << 30);
  assert.throws(() => loadConfig({ env: { WHARF_HASH_ON_SERVE: 'sometimes' } }), /integrity\.hashOnServe/);
  assert.throws(() => loadConfig({ env: { WHARF_SCRUB_RATE: '0' } }), /integrity\.scrubRate: must be more than 0/);
  assert.throws(() => loadConfig({ env: { WHARF_MIN_FREE_BYTES: 'lots' } }), /health\.minFreeBytes: invalid size/);
});
