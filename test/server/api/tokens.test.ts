// Self-service tokens over /api/v1/tokens and `wharf login`: a user's token acts as that user and no more, is
// listed to its maker (an admin sees all), is revoked by DELETE or `wharf logout`; robot scopes are for admins;
// a token cannot make tokens; the CLI keeps a token, never the password.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWharf, startWharf, type WharfServer } from '../../support/server.js';
import type { RunResult } from '../../support/command.js';

let server: WharfServer;
let config: string;
before(async () => {
  server = await startWharf();
  config = await mkdtemp(join(tmpdir(), 'wharf-token-config-'));
  const r = await runWharf(['user', 'add', 'bob', '--password-stdin', '--data', server.dataDir], { input: 'bob-password-1\n' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await runWharf(['grant', 'bob', 'pull,push', 'bobs/*', '--data', server.dataDir])).code, 0);
});
after(async () => {
  await server?.stop();
  await rm(config, { recursive: true, force: true });
});

const basic = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;
const call = (method: string, path: string, auth: string | undefined, body?: unknown) =>
  fetch(`${server.url}${path}`, { method, headers: { ...(auth ? { authorization: auth } : {}), 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
const ok = (r: RunResult) => assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
async function eventually(check: () => Promise<boolean>, what: string) {
  for (let i = 0; i < 40; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(what);
}

test('POST, GET, DELETE /api/v1/tokens: personal tokens act as their maker, robot scopes are for admins', async () => {
  const bob = basic('bob', 'bob-password-1');
  assert.equal((await call('POST', '/api/v1/tokens', undefined, { name: 'x' })).status, 401);
  const made = await call('POST', '/api/v1/tokens', bob, { name: 'bobs-laptop', expires: '30d' });
  assert.equal(made.status, 201);
  const t = (await made.json()) as { id: string; name: string; secret: string; scope: string[]; createdAt: string; expiresAt: string };
  assert.deepEqual([t.name, t.scope], ['bobs-laptop', []]);
  assert.match(t.createdAt, /^\d{4}-\d\d-\d\dT/);
  assert.ok(Math.abs(Date.parse(t.expiresAt) - Date.now() - 30 * 86_400_000) < 60_000);
  assert.equal((await call('POST', '/api/v1/tokens', bob, { name: 'bobs-laptop' })).status, 409, 'names are unique among active tokens');

  // The token is bob: his repositories, not others', and no admin routes.
  const asToken = basic('anyone', t.secret);
  assert.equal((await call('GET', '/v2/bobs/app/tags/list', asToken)).status, 404, 'may look (nothing pushed yet)');
  assert.equal((await call('GET', '/v2/other/app/tags/list', asToken)).status, 403);
  assert.equal((await call('POST', '/api/v1/tokens', asToken, { name: 'minted' })).status, 403, 'a token cannot make tokens');
  assert.equal((await call('POST', '/api/v1/tokens', bob, { name: 'robot', scope: ['repository:*:pull,push'] })).status, 403, 'robot scopes are for admins');

  // Lists: bob sees his own (with the token too), the admin sees everyone's.
  const admin = server.authorization;
  const adminMade = await call('POST', '/api/v1/tokens', admin, { name: 'ci', scope: ['repository:bobs/*:pull'] });
  assert.equal(adminMade.status, 201);
  assert.deepEqual(((await adminMade.json()) as { scope: string[] }).scope, ['repository:bobs/*:pull']);
  const names = async (auth: string) => ((await (await call('GET', '/api/v1/tokens', auth)).json()) as { items: { name: string }[] }).items.map((i) => i.name).sort();
  assert.deepEqual(await names(bob), ['bobs-laptop']);
  assert.deepEqual(await names(asToken), ['bobs-laptop']);
  assert.deepEqual(await names(admin), ['bobs-laptop', 'ci']);

  // Bob cannot revoke the admin's token (nor learn it exists); his own goes, and is refused at once.
  assert.equal((await call('DELETE', '/api/v1/tokens/ci', bob)).status, 404);
  assert.equal((await call('DELETE', '/api/v1/tokens/bobs-laptop', bob)).status, 204);
  await eventually(async () => (await call('GET', '/v2/bobs/app/tags/list', asToken)).status === 401, 'the revoked token still works');
  assert.equal((await call('DELETE', '/api/v1/tokens/ci', admin)).status, 204);
});

test('wharf login keeps a token, never the password; token list/revoke --server; logout revokes it', async () => {
  const env = { WHARF_CONFIG_DIR: config };
  const login = await runWharf(['login', server.url, '-u', 'bob', '--password-stdin'], { env, input: 'bob-password-1' });
  ok(login);
  assert.match(login.stdout, /Logged in to .* as bob \(token login-[a-z0-9.-]+; the password is not stored\)/);
  const saved = await readFile(join(config, 'credentials.json'), 'utf8');
  assert.ok(!saved.includes('bob-password-1'), 'the password is not on disk');
  const tokenName = (JSON.parse(saved) as { servers: Record<string, { tokenName: string }> }).servers[server.url]!.tokenName;

  const list = await runWharf(['token', 'list', '--server', server.url], { env });
  ok(list);
  assert.match(list.stdout, new RegExp(`${tokenName}\\s+active\\s+as bob`));
  ok(await runWharf(['env', 'list', 'bobs/app'], { env: { ...env, WHARF_SERVER: server.url } }).then((r) => ({ ...r, code: r.code === 1 && /no app named/.test(r.stderr) ? 0 : r.code })));
  const refused = await runWharf(['token', 'create', '--server', server.url, '--name', 'more'], { env });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /a token cannot make tokens/);
  const made = await runWharf(['token', 'create', '--server', server.url, '--name', 'more', '-u', 'bob', '--password-stdin'], { env, input: 'bob-password-1' });
  ok(made);
  ok(await runWharf(['token', 'revoke', 'more', '--server', server.url], { env }));

  ok(await runWharf(['logout', server.url], { env }));
  const after = (await (await call('GET', '/api/v1/tokens', server.authorization)).json()) as { items: { name: string; state: string }[] };
  assert.equal(after.items.find((i) => i.name === tokenName)?.state, 'revoked', 'logout revoked the token');
});

test('an access token from /token (claims for one pull) manages no tokens, whatever its user may do', async () => {
  const bob = basic('bob', 'bob-password-1');
  const res = await fetch(`${server.url}/token?service=wharf&scope=${encodeURIComponent('repository:bobs/app:pull')}`, { headers: { authorization: bob } });
  assert.equal(res.status, 200);
  const { token } = (await res.json()) as { token: string };
  for (const [method, path, body] of [
    ['POST', '/api/v1/tokens', { name: 'from-a-pull-token' }],
    ['GET', '/api/v1/tokens', undefined],
    ['DELETE', '/api/v1/tokens/anything', undefined],
  ] as const) {
    const r = await call(method, path, `Bearer ${token}`, body);
    assert.equal(r.status, 403, `${method} ${path}: ${r.status} ${await r.text()}`);
  }
  const listed = (await (await call('GET', '/api/v1/tokens', bob)).json()) as { items: { name: string }[] };
  assert.ok(!listed.items.some((t) => t.name === 'from-a-pull-token'));
});

test('GET /api/v1/tokens pages past tokens that share a name (a revoked one keeps it): each once', async () => {
  const admin = server.authorization;
  const made: string[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await call('POST', '/api/v1/tokens', admin, { name: 'pager' });
    assert.equal(res.status, 201, await res.clone().text());
    made.push(((await res.json()) as { id: string }).id);
    if (i < 2) assert.equal((await call('DELETE', '/api/v1/tokens/pager', admin)).status, 204);
  }
  type Page = { items: { id: string; name: string; state: string }[]; next: string | null };
  const whole = (await (await call('GET', '/api/v1/tokens?limit=500', admin)).json()) as Page;
  assert.equal(whole.next, null);
  const paged: Page['items'] = [];
  for (let cursor: string | null = null, n = 0; n === 0 || cursor !== null; n++) {
    assert.ok(n < 50, 'the pages end');
    const res = await call('GET', `/api/v1/tokens?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, admin);
    assert.equal(res.status, 200);
    const p = (await res.json()) as Page;
    assert.ok(p.items.length <= 1);
    paged.push(...p.items);
    cursor = p.next;
  }
  assert.deepEqual(paged.map((t) => t.id), whole.items.map((t) => t.id), 'one by one, the same tokens as one page');
  const pagers = paged.filter((t) => t.name === 'pager');
  assert.deepEqual(pagers.map((t) => t.id).sort(), [...made].sort(), 'all three tokens named pager');
  assert.deepEqual(pagers.map((t) => t.state).sort(), ['active', 'revoked', 'revoked']);
});
