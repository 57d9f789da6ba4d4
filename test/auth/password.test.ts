// scrypt password hashes: salted, verifiable, never the password, and safe against malformed input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hashPassword, verifyPassword } from '../../src/auth/password.js';
import { hashRobotSecret, newRobotSecret, robotSecretId, robotSecretMatches } from '../../src/auth/robot-secret.js';

const FAST = { N: 1 << 10, r: 8, p: 1 };

test('a hash verifies its password only, and two hashes of one password differ', async () => {
  const a = await hashPassword('correct horse', FAST);
  const b = await hashPassword('correct horse', FAST);
  assert.notEqual(a, b, 'salted');
  assert.ok(!a.includes('correct horse'));
  assert.match(a, /^scrypt\$1024\$8\$1\$/);
  assert.equal(await verifyPassword('correct horse', a), true);
  assert.equal(await verifyPassword('correct horsf', a), false);
  assert.equal(await verifyPassword('', a), false);
});

test('the default cost is memory-hard (N=2^15, r=8: 32 MiB)', async () => {
  assert.match(await hashPassword('x'), /^scrypt\$32768\$8\$1\$/);
});

test('malformed or hostile stored hashes never verify and never throw', async () => {
  for (const stored of ['', 'plain', 'scrypt$1$8$1$AA$AA', 'scrypt$x$8$1$AA$AA', 'scrypt$4294967296$8$1$AA$AA', 'bcrypt$10$8$1$AA$AA']) {
    assert.equal(await verifyPassword('x', stored), false, stored);
  }
});

test('robot secrets carry their id, and only their SHA-256 is kept', () => {
  const { id, secret } = newRobotSecret();
  assert.equal(robotSecretId(secret), id);
  assert.equal(robotSecretId('not-a-token'), undefined);
  const stored = hashRobotSecret(secret);
  assert.ok(!stored.includes(secret.slice(23)));
  assert.ok(robotSecretMatches(secret, stored));
  assert.ok(!robotSecretMatches(secret.slice(0, -1) + (secret.endsWith('A') ? 'B' : 'A'), stored));
});
