// `wharf promote` refuses a promotion of an environment to itself before asking any server: one plain line
// and a non-zero exit (the API refuses it too, test/server/api-bad-input.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runWharf } from '../support/server.js';

test('wharf promote --from X --to X is refused with one line and exit code 2', async () => {
  const r = await runWharf(['promote', 'team/app', '--from', 'staging', '--to', 'staging'], { env: { ...process.env, WHARF_SERVER: 'http://127.0.0.1:9' } });
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim(), 'wharf promote: cannot promote an environment to itself: --from and --to are both staging');
  assert.equal(r.stdout, '');
});
