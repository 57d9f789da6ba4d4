// `wharf user|group|grant|revoke|audit|gc|keys --server`: administering a running hub over its API, as admin, and
// refused for a member; the local --data mode is untouched (test/cli/access.test.ts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWharf, startWharf, withLogsOnFailure, type WharfServer } from '../support/server.js';
import type { RunResult } from '../support/command.js';

let server: WharfServer;
let work: string;
before(async () => {
  server = await startWharf();
  work = await mkdtemp(join(tmpdir(), 'wharf-admin-cli-'));
});
after(async () => {
  await server?.stop();
  await rm(work, { recursive: true, force: true });
});

const envFor = (who: string) => ({ ...process.env, WHARF_CONFIG_DIR: join(work, who) }) as Record<string, string>;
const as = (who: string, ...args: string[]) => runWharf([...args, '--server', server.url], { env: envFor(who) });
const asIn = (who: string, input: string, ...args: string[]) => runWharf([...args, '--server', server.url], { env: envFor(who), input });

function ok(r: RunResult): RunResult {
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

test('an admin manages users, groups and grants of a remote hub; reads its audit; runs its GC', async () => {
  await withLogsOnFailure(server, async () => {
    ok(await runWharf(['login', server.url, '-u', 'admin', '--password-stdin'], { env: envFor('admin'), input: server.admin.password }));
    ok(await asIn('admin', 'erin-password\n', 'user', 'add', 'erin', '--password-stdin'));
    assert.equal((await fetch(`${server.url}/v2/`, { headers: { authorization: basic('erin', 'erin-password') } })).status, 200);
    const users = JSON.parse(ok(await as('admin', 'user', 'list', '--json')).stdout) as { name: string; role: string }[];
    assert.deepEqual(users.map((u) => u.name), ['admin', 'erin']);

    ok(await as('admin', 'group', 'add', '@ops', 'erin'));
    assert.match(ok(await as('admin', 'group', 'list')).stdout, /^@ops\s+erin$/m);
    ok(await as('admin', 'grant', '@ops', 'pull,push', 'ops/*'));
    assert.match(ok(await as('admin', 'grant', '--list')).stdout, /^@ops\s+pull,push\s+ops\/\*$/m);
    const dup = await asIn('admin', 'x-password-long', 'user', 'add', 'erin', '--password-stdin');
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /user erin already exists/);
    assert.equal(dup.stderr.trim().split('\n').length, 1);

    ok(await as('admin', 'revoke', '@ops', 'push', 'ops/*'));
    assert.match(ok(await as('admin', 'grant', '--list')).stdout, /^@ops\s+pull\s+ops\/\*$/m);

    const audit = ok(await as('admin', 'audit', '--action', 'grant.'));
    assert.match(audit.stdout, /grant\.add/);
    assert.match(audit.stdout, /grant\.remove/);
    const gc = ok(await as('admin', 'gc', '--dry-run'));
    assert.match(gc.stdout, /would reclaim: 0 tags/);
    const rotated = ok(await as('admin', 'keys', 'rotate')).stdout;
    const kid = /signing with key (\S+) from now on; earlier keys verify their tokens until those expire/.exec(rotated)?.[1];
    assert.ok(kid, rotated);
    assert.match(ok(await as('admin', 'keys', 'list')).stdout, new RegExp(`^\\S+\\s+verifying\\s.*\\n${kid}\\s+signing\\s`, 'm'));

    // A member's credentials are refused by the server, with one plain line.
    ok(await runWharf(['login', server.url, '-u', 'erin', '--password-stdin'], { env: envFor('erin'), input: 'erin-password' }));
    const denied = await asIn('erin', 'mallory-password', 'user', 'add', 'mallory', '--password-stdin');
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /denied/);
    assert.equal((await as('erin', 'gc')).code, 1);
    assert.equal((await as('erin', 'audit')).code, 1);
    for (const keys of [['keys', 'list'], ['keys', 'rotate', '--retire']]) {
      const refused = await as('erin', ...keys);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^wharf keys: .*denied/i);
    }

    ok(await as('admin', 'user', 'remove', 'erin'));
    assert.equal((await fetch(`${server.url}/v2/`, { headers: { authorization: basic('erin', 'erin-password') } })).status, 401);
  });
});
