// The account verbs on a data dir beside a running server: user, group, grant, revoke, token and audit,
// their output for people and for scripts, their refusals, and the server seeing their changes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { runWharf, startWharf, withLogsOnFailure, type WharfServer } from '../support/server.js';
import type { RunResult } from '../support/command.js';

let server: WharfServer;
before(async () => {
  server = await startWharf();
});
after(() => server?.stop());

const wharf = (...args: string[]) => runWharf([...args, '--data', server.dataDir]);
const wharfIn = (input: string, ...args: string[]) => runWharf([...args, '--data', server.dataDir], { input });

function ok(r: RunResult): RunResult {
  assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const get = (path: string, auth?: string) => fetch(`${server.url}${path}`, { headers: auth ? { authorization: auth } : {} });

/** The server rereads grants every second; poll until `path` answers `status`. */
async function eventually(path: string, auth: string, status: number): Promise<void> {
  let last = 0;
  for (let i = 0; i < 40; i++) {
    last = (await get(path, auth)).status;
    if (last === status) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${path} answered ${last}, not ${status}`);
}

test('users: add (stdin or generated password), list, passwd, remove — the running server follows', async () => {
  await withLogsOnFailure(server, async () => {
    ok(await wharfIn('alice-password\n', 'user', 'add', 'alice', '--password-stdin'));
    assert.equal((await get('/v2/', basic('alice', 'alice-password'))).status, 200, 'a new user logs in at once');

    const generated = ok(await wharf('user', 'add', 'bob', '--role', 'admin'));
    const password = generated.stdout.match(/password for bob \(shown once\): (\S+)/)?.[1];
    assert.ok(password && password.length >= 20, generated.stdout);
    assert.equal((await get('/v2/', basic('bob', password))).status, 200);

    const list = ok(await wharf('user', 'list'));
    assert.match(list.stdout, /^NAME\s+ROLE\s+GROUPS\s+CREATED$/m);
    assert.match(list.stdout, /^alice\s+member\s+-\s+\d{4}-/m);
    assert.match(list.stdout, /^bob\s+admin\s+/m);
    assert.ok(!list.stdout.includes('scrypt'), 'hashes are not shown');
    const json = JSON.parse(ok(await wharf('user', 'list', '--json')).stdout) as { name: string; role: string }[];
    assert.deepEqual(json.map((u) => [u.name, u.role]), [['admin', 'admin'], ['alice', 'member'], ['bob', 'admin']]);

    ok(await wharfIn('alice-password-2', 'user', 'passwd', 'alice', '--password-stdin'));
    assert.equal((await get('/v2/', basic('alice', 'alice-password-2'))).status, 200);
    assert.equal((await get('/v2/', basic('alice', 'alice-password'))).status, 401);

    const dup = await wharfIn('whatever-password', 'user', 'add', 'alice', '--password-stdin');
    assert.equal(dup.code, 1);
    assert.equal(dup.stderr.trim(), 'wharf user: user alice already exists');
    const short = await wharfIn('short', 'user', 'add', 'carol', '--password-stdin');
    assert.match(short.stderr, /at least 8 characters/);
    const bad = await wharf('user', 'add', 'Not Valid');
    assert.match(bad.stderr, /invalid user name/);
    assert.equal((await wharf('user', 'add', 'x', '--role', 'root')).code, 2);

    ok(await wharf('user', 'remove', 'bob'));
    assert.equal((await get('/v2/', basic('bob', password))).status, 401);
    assert.equal((await wharf('user', 'remove', 'bob')).code, 1);
  });
});

test('groups and grants: @group grants reach members; revoke takes them back; the list shows them', async () => {
  await withLogsOnFailure(server, async () => {
    ok(await wharfIn('dave-password', 'user', 'add', 'dave', '--password-stdin'));
    const dave = basic('dave', 'dave-password');
    assert.equal((await get('/v2/team/app/tags/list', dave)).status, 403);
    ok(await wharf('group', 'add', 'team', 'dave'));
    ok(await wharf('grant', '@team', 'pull,push', 'team/*'));
    await eventually('/v2/team/app/tags/list', dave, 404); // allowed; the repository does not exist
    ok(await wharf('grant', 'dave', 'release:staging', 'shop'));

    const list = ok(await wharf('grant', '--list'));
    assert.match(list.stdout, /^@team\s+pull,push\s+team\/\*$/m);
    assert.match(list.stdout, /^dave\s+release:staging\s+shop$/m);
    assert.match(ok(await wharf('group', 'list')).stdout, /^@team\s+dave$/m);

    assert.match((await wharf('grant', 'dave', 'pull,write', 'x')).stderr, /unknown action "write"/);
    assert.match((await wharf('grant', 'nobody', 'pull', 'x')).stderr, /no user nobody/);
    assert.match((await wharf('grant', 'dave', 'pull', 'Bad Pattern')).stderr, /invalid repository pattern/);
    assert.equal((await wharf('grant', 'dave', 'pull')).code, 2);

    ok(await wharf('revoke', '@team', 'push', 'team/*'));
    ok(await wharf('revoke', '@team', 'team/*'));
    await eventually('/v2/team/app/tags/list', dave, 403);
    assert.match((await wharf('revoke', '@team', 'team/*')).stderr, /has no .*grant on team\/\*/);
    ok(await wharf('group', 'remove', 'team'));
    assert.equal(ok(await wharf('group', 'list')).stdout.trim(), 'GROUP  MEMBERS');
  });
});

test('tokens: the secret is printed alone on stdout, once; list shows state, never secrets', async () => {
  await withLogsOnFailure(server, async () => {
    const created = ok(await wharf('token', 'create', '--name', 'deploy', '--scope', 'repository:shop:pull', '--scope', 'repository:shop:release:staging'));
    const secret = created.stdout.trim();
    assert.match(secret, /^wharf_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/, 'stdout is the secret alone, for $(…)');
    assert.match(created.stderr, /token deploy created: repository:shop:pull repository:shop:release:staging, expires never/);
    assert.equal((await get('/v2/', basic('deploy', secret))).status, 200);

    const again = await wharf('token', 'create', '--name', 'deploy', '--scope', 'repository:shop:pull');
    assert.match(again.stderr, /an active token named deploy exists/);
    assert.match((await wharf('token', 'create', '--name', 't', '--scope', 'registry:catalog:*')).stderr, /invalid scope/);
    assert.match((await wharf('token', 'create', '--name', 't', '--scope', 'repository:x:pull', '--expires', 'soon')).stderr, /--expires/);
    assert.match((await wharf('token', 'create', '--name', 't')).stderr, /at least one --scope/);

    ok(await wharf('token', 'revoke', 'deploy'));
    const list = ok(await wharf('token', 'list')).stdout;
    assert.match(list, /^deploy\s+revoked\s+repository:shop:pull repository:shop:release:staging\s+-\s+/m);
    assert.ok(!list.includes(secret.slice(-43)));
    assert.equal((await wharf('token', 'revoke', 'deploy')).code, 1, 'nothing left to revoke');
  });
});

test('audit: the changes above are there, filterable, as a table and as JSON', async () => {
  const table = ok(await wharf('audit', '--action', 'token.revoke')).stdout;
  assert.match(table, /^TIME\s+WHO\s+FROM\s+ACTION\s+REPOSITORY\s+TARGET\s+RESULT\s+DETAIL$/m);
  assert.match(table, /\(local\)\s+-\s+token\.revoke\s+-\s+deploy\s+ok/);
  const rows = JSON.parse(ok(await wharf('audit', '--json', '--since', '1h')).stdout) as { action: string; target: string }[];
  for (const [action, target] of [['user.add', 'alice'], ['user.passwd', 'alice'], ['user.remove', 'bob'], ['group.add', '@team'], ['grant.add', '@team'], ['grant.remove', '@team'], ['token.create', 'deploy'], ['login.failure', 'alice']]) {
    assert.ok(rows.some((r) => r.action === action && (r.target === target || action === 'login.failure')), `no ${action} ${target}`);
  }
  assert.equal(JSON.parse(ok(await wharf('audit', '--json', '--since', '2000-01-01T00:00:00Z', '--limit', '2')).stdout).length, 2);
  assert.equal(JSON.parse(ok(await wharf('audit', '--json', '--repo', 'no/such')).stdout).length, 0);
  assert.equal((await wharf('audit', '--since', 'yesterday-ish')).code, 2);
  assert.equal((await runWharf(['user', 'list', '--data', '/nonexistent/wharf-data'])).code, 2, 'no silent new data dir');
});

test('user logout: the user’s Bearer tokens and stored logins end, the password stays', async () => {
  await withLogsOnFailure(server, async () => {
    ok(await wharfIn('carla-password\n', 'user', 'add', 'carla', '--password-stdin'));
    const creds = basic('carla', 'carla-password');
    const issued = await get('/token?service=wharf&offline_token=true', creds);
    assert.equal(issued.status, 200);
    const { token } = (await issued.json()) as { token: string };
    assert.equal((await get('/v2/', `Bearer ${token}`)).status, 200);
    const out = ok(await wharf('user', 'logout', 'carla'));
    assert.match(out.stderr, /every token and stored login .* of carla stops working/);
    await eventually('/v2/', `Bearer ${token}`, 401);
    assert.equal((await get('/v2/', creds)).status, 200, 'the password still works');
    assert.equal((await wharf('user', 'logout', 'nobody')).code, 1);
  });
});
