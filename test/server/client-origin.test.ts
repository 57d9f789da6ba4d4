// X-Forwarded-For and X-Forwarded-Proto are believed from trusted proxies only: the rightmost hop that is
// not a trusted proxy is the client; from anyone else the headers are the client's own say and ignored.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { parseAddressOrCidr } from '../../src/config.js';
import { ClientOrigin } from '../../src/server/client-origin.js';

function req(peer: string, headers: Record<string, string | string[]> = {}, encrypted = false): IncomingMessage {
  return { socket: { remoteAddress: peer, encrypted }, headers } as unknown as IncomingMessage;
}

test('without trusted proxies the peer is the client, whatever the headers say', () => {
  const origin = new ClientOrigin();
  assert.equal(origin.address(req('127.0.0.1', { 'x-forwarded-for': '203.0.113.7' })), '127.0.0.1');
  assert.equal(origin.address(req('::ffff:192.0.2.1')), '192.0.2.1', 'an IPv4 peer on a dual-stack socket');
  assert.equal(origin.scheme(req('127.0.0.1', { 'x-forwarded-proto': 'https' })), 'http');
  assert.equal(origin.scheme(req('127.0.0.1', {}, true)), 'https');
});

test('from an untrusted peer, forwarded headers are a spoofing attempt and ignored', () => {
  const origin = new ClientOrigin(['10.0.0.0/8']);
  assert.equal(origin.address(req('192.0.2.50', { 'x-forwarded-for': '10.0.0.1, 203.0.113.7' })), '192.0.2.50');
  assert.equal(origin.scheme(req('192.0.2.50', { 'x-forwarded-proto': 'https' })), 'http');
});

test('from a trusted proxy: the rightmost untrusted hop, not what the client prepended', () => {
  const origin = new ClientOrigin(['10.0.0.0/8', '2001:db8::/32']);
  // The client sent "X-Forwarded-For: 198.51.100.1" to look like someone else; the proxy appended its peer.
  assert.equal(origin.address(req('10.0.0.2', { 'x-forwarded-for': '198.51.100.1, 203.0.113.7' })), '203.0.113.7');
  assert.equal(origin.address(req('10.0.0.2', { 'x-forwarded-for': '198.51.100.1, 203.0.113.7, 10.1.2.3' })), '203.0.113.7', 'a chain of trusted proxies is skipped');
  assert.equal(origin.address(req('10.0.0.2', { 'x-forwarded-for': '10.9.9.9, 10.1.2.3' })), '10.9.9.9', 'all trusted: the leftmost');
  assert.equal(origin.address(req('10.0.0.2')), '10.0.0.2', 'no header: the proxy itself');
  assert.equal(origin.address(req('10.0.0.2', { 'x-forwarded-for': ['198.51.100.1', '203.0.113.7'] })), '203.0.113.7', 'repeated headers in order');
  assert.equal(origin.address(req('::ffff:10.0.0.2', { 'x-forwarded-for': '2001:db8::5, 2001:db9::1' })), '2001:db9::1', 'IPv6 hops, an IPv4-mapped peer');
  assert.equal(origin.address(req('10.0.0.2', { 'x-forwarded-for': '203.0.113.7:51234' })), '203.0.113.7', 'a hop with a port');
  assert.equal(origin.address(req('10.0.0.2', { 'x-forwarded-for': '[2001:db9::1]:443' })), '2001:db9::1');
  assert.equal(origin.address(req('10.0.0.2', { 'x-forwarded-for': 'evil<script>, 10.1.2.3' })), '10.1.2.3', 'a hop that is no address is not believed');
  assert.equal(origin.scheme(req('10.0.0.2', { 'x-forwarded-proto': 'https' })), 'https');
  assert.equal(origin.scheme(req('10.0.0.2', { 'x-forwarded-proto': 'HTTPS, http' })), 'https', 'the first of a chain');
  assert.equal(origin.scheme(req('10.0.0.2', { 'x-forwarded-proto': 'gopher' })), 'http');
});

test('a trusted address is exact; CIDR ranges cover their prefix only', () => {
  const origin = new ClientOrigin(['127.0.0.1', '192.168.0.0/16']);
  assert.equal(origin.address(req('127.0.0.1', { 'x-forwarded-for': '203.0.113.7' })), '203.0.113.7');
  assert.equal(origin.address(req('127.0.0.2', { 'x-forwarded-for': '203.0.113.7' })), '127.0.0.2');
  assert.equal(origin.address(req('192.168.44.1', { 'x-forwarded-for': '203.0.113.7' })), '203.0.113.7');
  assert.equal(origin.address(req('192.169.0.1', { 'x-forwarded-for': '203.0.113.7' })), '192.169.0.1');
});

test('addresses and ranges parse; anything else is refused', () => {
  assert.deepEqual(parseAddressOrCidr('10.0.0.0/8'), { address: '10.0.0.0', family: 'ipv4', prefix: 8 });
  assert.deepEqual(parseAddressOrCidr('::1'), { address: '::1', family: 'ipv6', prefix: 128 });
  for (const bad of ['10.0.0.0/33', '::/129', 'localhost', '10.0.0.1/8/1', '10.0.0.1/', '10.0.0.256', '']) {
    assert.equal(parseAddressOrCidr(bad), undefined, bad);
  }
  assert.throws(() => new ClientOrigin(['nope']), /invalid trusted proxy "nope"/);
});
