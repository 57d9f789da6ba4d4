// Digest parsing: what Wharf accepts as a verifiable digest, and what merely looks like one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { digestOf, formatDigest, looksLikeDigest, newHasher, parseDigest } from '../../src/oci/digest.js';

const hex256 = createHash('sha256').update('wharf').digest('hex');
const hex512 = createHash('sha512').update('wharf').digest('hex');

test('parses sha256 and sha512 digests', () => {
  assert.deepEqual(parseDigest(`sha256:${hex256}`), { algorithm: 'sha256', hex: hex256 });
  assert.deepEqual(parseDigest(`sha512:${hex512}`), { algorithm: 'sha512', hex: hex512 });
  assert.equal(formatDigest({ algorithm: 'sha512', hex: hex512 }), `sha512:${hex512}`);
});

test('refuses digests it cannot verify', () => {
  const bad = [
    '',
    hex256, // no algorithm
    `sha256:${hex256.toUpperCase()}`, // the OCI grammar wants lower-case hex for sha256
    `sha256:${hex256.slice(1)}`, // too short
    `sha256:${hex256}0`, // too long
    `sha512:${hex256}`, // sha256-length hex under sha512
    `sha256:${hex512}`,
    `md5:${'a'.repeat(32)}`, // unknown algorithm
    `SHA256:${hex256}`,
    `sha256:${'g'.repeat(64)}`,
    `sha256:${hex256} `,
    ` sha256:${hex256}`,
    `sha256::${hex256}`,
    'sha256:',
    ':abc',
  ];
  for (const d of bad) assert.equal(parseDigest(d), null, JSON.stringify(d));
});

test('looksLikeDigest follows the OCI digest grammar, even for algorithms Wharf lacks', () => {
  assert.ok(looksLikeDigest(`sha256:${hex256}`));
  assert.ok(looksLikeDigest('multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8'));
  assert.ok(looksLikeDigest('sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564'));
  assert.ok(!looksLikeDigest('latest'));
  assert.ok(!looksLikeDigest('sha256:'));
  assert.ok(!looksLikeDigest('Sha256:abc'));
  assert.ok(!looksLikeDigest('sha256:ab/cd'));
});

test('digestOf and newHasher agree with node:crypto', () => {
  assert.equal(digestOf('wharf'), `sha256:${hex256}`);
  assert.equal(digestOf(Buffer.from('wharf'), 'sha512'), `sha512:${hex512}`);
  assert.equal(newHasher('sha512').update('wh').update('arf').digest('hex'), hex512);
});
