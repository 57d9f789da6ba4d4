import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { signBody, verifySignature } from '../../src/webhooks/signature.js';

test('the signature is sha256=<hex HMAC-SHA256 of the raw body>', () => {
  const body = '{"event":"push"}';
  const expected = 'sha256=' + createHmac('sha256', 'It’s a Secret to Everybody').update(body).digest('hex');
  assert.equal(signBody('It’s a Secret to Everybody', body), expected);
  // GitHub's published example for the same scheme
  assert.equal(
    signBody("It's a Secret to Everybody", 'Hello, World!'),
    'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17',
  );
});

test('verifySignature accepts the right signature only', () => {
  const header = signBody('s3cret', 'body');
  assert.ok(verifySignature('s3cret', 'body', header));
  assert.ok(!verifySignature('s3cret', 'body ', header));
  assert.ok(!verifySignature('other', 'body', header));
  assert.ok(!verifySignature('s3cret', 'body', undefined));
  assert.ok(!verifySignature('s3cret', 'body', 'sha256=00'));
});
