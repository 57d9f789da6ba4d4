// scrypt's cost for stored passwords (auth.passwordCost, WHARF_PASSWORD_COST): 2^15 unless configured, range-checked,
// and the one configured is what every way of setting a password uses — the first start's admin, the management
// API, `wharf user` on a data directory — while hashes made at another cost keep verifying.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { decoyHash, hashPassword, scryptParams, verifyPassword } from '../../src/auth/password.js';
import { onDatabase } from '../support/database.js';
import { runWharf, startWharf } from '../support/server.js';
import { basic } from './auth-harness.js';

test('the cost is 15 (N = 32768) unless the file or WHARF_PASSWORD_COST says otherwise; out of range is refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-password-cost-'));
  try {
    assert.equal(loadConfig({ flags: { data: dir }, env: {} }).auth.passwordCost, 15);
    assert.equal(loadConfig({ flags: { data: dir }, env: { WHARF_PASSWORD_COST: '12' } }).auth.passwordCost, 12);
    for (const bad of ['9', '21', '12.5', 'high']) {
      assert.throws(() => loadConfig({ flags: { data: dir }, env: { WHARF_PASSWORD_COST: bad } }), /passwordCost/, bad);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('scryptParams: N = 2^cost with r 8, p 1; an unknown user is checked against a decoy of the same cost', async () => {
  assert.deepEqual(scryptParams(), { N: 32768, r: 8, p: 1 });
  assert.deepEqual(scryptParams(11), { N: 2048, r: 8, p: 1 });
  assert.match(await decoyHash(scryptParams(10)), /^scrypt\$1024\$8\$1\$/);
  assert.match(await decoyHash(scryptParams(11)), /^scrypt\$2048\$8\$1\$/);
  // A hash keeps its own parameters, so it verifies whatever cost new passwords get later.
  assert.equal(await verifyPassword('pw', await hashPassword('pw', scryptParams(10))), true);
});

test('a server at cost 12 makes its admin, and users over the API, at 2^12; wharf user on its data dir uses its own setting; all log in', async () => {
  const server = await startWharf({ env: { WHARF_PASSWORD_COST: '12' } });
  try {
    const created = await fetch(`${server.url}/api/v1/users`, {
      method: 'POST',
      headers: { authorization: server.authorization, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'api-user', password: 'api-user-password' }),
    });
    assert.equal(created.status, 201, await created.text());
    const cli = await runWharf(['user', 'add', 'cli-user', '--password-stdin', '--data', server.dataDir], { input: 'cli-user-password', env: { WHARF_PASSWORD_COST: '11' } });
    assert.equal(cli.code, 0, cli.stderr);

    const hashes = await onDatabase(server.dataDir, (db) => db.selectFrom('users').select(['name', 'password_hash']).orderBy('name').execute());
    const costOf = (name: string) => hashes.find((h) => h.name === name)?.password_hash.split('$')[1];
    assert.equal(costOf('admin'), '4096', 'the first start made the admin at 2^12');
    assert.equal(costOf('api-user'), '4096', 'POST /api/v1/users hashed at the server’s cost');
    assert.equal(costOf('cli-user'), '2048', 'wharf user add hashed at its own configured cost');

    for (const [u, p] of [['admin', server.admin.password], ['api-user', 'api-user-password'], ['cli-user', 'cli-user-password']]) {
      assert.equal((await fetch(`${server.url}/v2/`, { headers: { authorization: basic(u!, p!) } })).status, 200, `${u} logs in`);
    }
    assert.equal((await fetch(`${server.url}/v2/`, { headers: { authorization: basic('nobody', 'x') } })).status, 401);
  } finally {
    await server.stop();
  }
});
