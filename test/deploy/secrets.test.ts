// Secret values come from files or the server's environment; errors name the secret and its source, never a value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redact, serverSecrets } from '../../src/deploy/secrets.js';

test('secrets are read from files (one trailing newline dropped) and from the server environment', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-secrets-'));
  try {
    await writeFile(join(dir, 'db'), 'hunter2\n');
    const resolve = serverSecrets({ API_KEY_SOURCE: 'k-123' });
    assert.deepEqual(await resolve({ DB: { file: join(dir, 'db') }, API: { env: 'API_KEY_SOURCE' } }), { DB: 'hunter2', API: 'k-123' });
    await assert.rejects(resolve({ DB: { file: join(dir, 'nope') } }), { message: `secret DB: cannot read ${join(dir, 'nope')} (ENOENT)` });
    await assert.rejects(resolve({ API: { env: 'MISSING' } }), { message: 'secret API: the server has no environment variable MISSING' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('secret values are blanked out of text headed for records and logs', () => {
  assert.equal(redact('connect failed: password=hunter2 (hunter2)', { DB: 'hunter2', EMPTY: '' }), 'connect failed: password=[secret] ([secret])');
});
