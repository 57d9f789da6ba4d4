// SipHash-2-4 (its top 53 bits, as the credential cache uses it) against the reference vectors of the paper (key 00..0f) and against OpenSSL's SIPHASH MAC.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sipHash53, sipKey } from '../../src/auth/siphash.js';

const key = new Uint32Array(Uint8Array.from({ length: 16 }, (_, i) => i).buffer);
/** The top 53 bits of a 64-bit SipHash given in hex, as sipHash53 returns them. */
const top53 = (hex: string) => Number(BigInt(`0x${hex}`) >> 11n);
const bytes = (n: number) => String.fromCharCode(...Array.from({ length: n }, (_, i) => i));

test('the reference vectors of the paper: messages 00..(n-1) for n = 0, 1, 8 and 15', () => {
  assert.equal(sipHash53(key, ''), top53('726fdb47dd0e0e31'));
  assert.equal(sipHash53(key, bytes(1)), top53('74f839c593dc67fd'));
  assert.equal(sipHash53(key, bytes(8)), top53('93f5f5799a932462'));
  assert.equal(sipHash53(key, bytes(15)), top53('a129ca6149be45e5'));
});

test('strings as OpenSSL hashes them (openssl mac -macopt size:8 SIPHASH)', () => {
  assert.equal(sipHash53(key, 'Basic YmVuY2g6YmVuY2hwYXNzd29yZA=='), top53('683c8c84b748d005'));
  assert.equal(sipHash53(key, 'a'), top53('2ba3e8e9a71148ca'));
  assert.equal(sipHash53(key, 'abcdefgh'), top53('c329dda391d44470'));
  assert.equal(sipHash53(key, 'abcdefghi'), top53('b2a9e1c46d9deca4'));
});

test('a char wider than a byte is refused, not folded into another string', () => {
  assert.equal(sipHash53(key, 'Basic é'), sipHash53(key, 'Basic \u00e9'));
  assert.equal(sipHash53(key, 'Basic \u0100'), undefined);
  assert.equal(sipHash53(key, 'Basic abc\u2603'), undefined);
});

test('keys come out of a fresh buffer, not a shared pool', () => {
  const a = sipKey(randomBytes);
  const b = sipKey(randomBytes);
  assert.equal(a.length, 4);
  assert.notDeepEqual(a, b, 'two keys differ');
  const fixed = sipKey(() => Uint8Array.from({ length: 16 }, (_, i) => i));
  assert.deepEqual(fixed, key);
});
