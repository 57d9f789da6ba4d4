// Repository names and tags per the OCI distribution spec grammar: invalid input is refused as it is.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isValidRepositoryName, isValidTag } from '../../src/oci/reference.js';

test('accepts repository names the spec grammar allows', () => {
  const good = [
    'a',
    'app',
    'myapp',
    'a/b',
    'library/busybox',
    'team/sub/app',
    'a.b',
    'a_b',
    'a__b',
    'a-b',
    'a--b',
    'a---b',
    '0',
    '123/456',
    'a.b-c_d__e/f',
    `${'a'.repeat(255)}`,
  ];
  for (const n of good) assert.ok(isValidRepositoryName(n), n);
});

test('refuses repository names outside the grammar, never normalising them', () => {
  const bad = [
    '',
    'A',
    'MyApp',
    'app/Web',
    '-app',
    'app-',
    '.app',
    'app.',
    '_app',
    'app_',
    'a___b', // three underscores is not a separator
    'a..b',
    'a.-b',
    'a-.b',
    'a/',
    '/a',
    'a//b',
    'a/../b',
    'a/./b',
    '..',
    'a b',
    'a:b',
    'a@b',
    'a%2fb',
    'ä',
    'a\nb',
    `${'a'.repeat(256)}`, // the whole name is capped at 255 characters, as in Distribution
  ];
  for (const n of bad) assert.ok(!isValidRepositoryName(n), JSON.stringify(n));
});

test('accepts tags the spec grammar allows', () => {
  for (const t of ['latest', '1.4.2', 'v1', '_x', 'A', 'a-b_c.d', '0', 'x'.repeat(128)]) assert.ok(isValidTag(t), t);
});

test('refuses tags outside the grammar', () => {
  const bad = ['', '.x', '-x', 'a:b', 'a/b', 'a b', 'a+b', 'é', 'x'.repeat(129), `sha256:${'a'.repeat(64)}`];
  for (const t of bad) assert.ok(!isValidTag(t), JSON.stringify(t));
});
