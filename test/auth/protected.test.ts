// A protected environment over the HTTP API with authentication on: releases, promotions, rollbacks and deploys
// only from users and tokens granted release:ENV explicitly — the global admin, an app admin and a plain `release`
// grant are refused —, every attempt audited, and only a global admin may lift the protection. Approval through the
// CLI as well: `wharf approvals`, and `wharf approve` refused to the requester (one plain line, exit 1), done by a second person.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_PASSWORD, auditRows, basic, member, pushImage, startAuthHub, type AuthHub } from './auth-harness.js';
import { runWharf } from '../support/server.js';

const APP = 'shop/web';
let hub: AuthHub;
const creds: Record<string, string> = {};

async function call(method: string, path: string, who: string, body?: unknown): Promise<{ status: number; text: string }> {
  const res = await hub.req(path, { method, auth: creds[who], headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, text: await res.text() };
}

/** Each person's `wharf login` is kept in a config directory of their own. */
let configs: string;
const wharfAs = (who: string, ...args: string[]) => runWharf([...args, '--server', hub.url], { env: { ...process.env, WHARF_CONFIG_DIR: join(configs, who) } });
async function cliLogin(who: string): Promise<void> {
  const r = await runWharf(['login', hub.url, '-u', who, '--password-stdin'], { env: { ...process.env, WHARF_CONFIG_DIR: join(configs, who) }, input: `${who}-password` });
  assert.equal(r.code, 0, r.stderr);
}

const release = (who: string, env: string, ref: string) => call('POST', `/api/v1/apps/${APP}/releases`, who, { environment: env, ref, deploy: false });

before(async () => {
  configs = await mkdtemp(join(tmpdir(), 'wharf-protected-cli-'));
  hub = await startAuthHub('auth:\n  policyRefresh: 0\n  loginFailures: { perUser: 1000, perAddress: 1000 }\n');
  creds.admin = basic('admin', ADMIN_PASSWORD);
  creds.deployer = await member(hub, 'deployer', 'pull,release:production', 'shop/*');
  creds.releaser = await member(hub, 'releaser', 'pull,release', 'shop/*');
  creds.appadmin = await member(hub, 'appadmin', 'admin', 'shop/*');
  creds.robot = basic('ci', (await hub.accounts.createToken('prod-ci', ['repository:shop/web:pull,release:production'])).secret);
  creds.wideRobot = basic('ci', (await hub.accounts.createToken('wide-ci', ['repository:shop/web:pull,release,admin'])).secret);
  // a group member gets the explicit grant through the group
  await hub.accounts.addUser('oncall', 'member', 'oncall-password');
  creds.oncall = basic('oncall', 'oncall-password');
  await hub.accounts.addToGroup('sre', ['oncall']);
  await hub.accounts.grant('@sre', 'pull,release:production', 'shop/web');
  await pushImage(hub, creds.admin, APP, 'v1', 'one');
  await pushImage(hub, creds.admin, APP, 'v2', 'two');
  await pushImage(hub, creds.admin, APP, 'v3', 'three');
  for (const [name, prot] of [['staging', false], ['production', true]] as const) {
    const r = await call('POST', `/api/v1/apps/${APP}/environments`, 'admin', { name, protected: prot });
    assert.equal(r.status, 201, r.text);
  }
});
after(async () => {
  await hub?.close();
  await rm(configs, { recursive: true, force: true });
});

test('the global admin, an app admin and a plain release grant are refused on a protected environment, each attempt audited', async () => {
  const since = Date.now();
  for (const who of ['admin', 'appadmin', 'releaser', 'wideRobot']) {
    const r = await release(who, 'production', 'v1');
    assert.equal(r.status, 403, `${who}: ${r.text}`);
    assert.match(r.text, /shop\/web\/production is protected: only users and tokens granted release:production on it may change it/);
  }
  const env = JSON.parse((await call('GET', `/api/v1/apps/${APP}/environments/production`, 'admin')).text);
  assert.equal(env.current, null, 'nothing was released');
  const rows = await auditRows(hub, { repository: APP, since, action: 'tag.move' }, 4);
  assert.deepEqual(
    rows.map((r) => [r.actor, r.actorKind, r.target, r.result, r.detail?.via, r.detail?.ref, r.detail?.status]),
    [
      ['admin', 'user', 'production', 'denied', 'release', 'v1', 403],
      ['appadmin', 'user', 'production', 'denied', 'release', 'v1', 403],
      ['releaser', 'user', 'production', 'denied', 'release', 'v1', 403],
      ['wide-ci', 'token', 'production', 'denied', 'release', 'v1', 403],
    ],
  );
  // Unprotected environments are as before: the admin and a plain release grant may release.
  assert.equal((await release('admin', 'staging', 'v1')).status, 201);
  assert.equal((await release('releaser', 'staging', 'v2')).status, 201);
});

test('an explicit release:production grant (user or token) may release, promote and roll back', async () => {
  assert.equal((await release('deployer', 'production', 'v1')).status, 201);
  assert.equal((await release('robot', 'production', 'v2')).status, 201);
  assert.equal((await release('oncall', 'production', 'v1')).status, 201, 'through the group');
  const promoted = await call('POST', `/api/v1/apps/${APP}/promote`, 'deployer', { from: 'staging', to: 'production', deploy: false });
  assert.equal(promoted.status, 201, promoted.text);
  const rolled = await call('POST', `/api/v1/apps/${APP}/rollback`, 'robot', { environment: 'production', deploy: false });
  assert.equal(rolled.status, 201, rolled.text);
});

test('promotion, rollback and deploy to a protected environment are refused without the explicit grant, each attempt audited', async () => {
  const since = Date.now();
  const promoted = await call('POST', `/api/v1/apps/${APP}/promote`, 'admin', { from: 'staging', to: 'production', deploy: false });
  assert.equal(promoted.status, 403, promoted.text);
  const rolled = await call('POST', `/api/v1/apps/${APP}/rollback`, 'appadmin', { environment: 'production', deploy: false });
  assert.equal(rolled.status, 403, rolled.text);
  const deployed = await call('POST', `/api/v1/apps/${APP}/deployments`, 'admin', { environment: 'production' });
  assert.equal(deployed.status, 403, deployed.text);
  assert.match(deployed.text, /protected/);
  const rows = await auditRows(hub, { repository: APP, since }, 3, (r) => r.target === 'production');
  assert.deepEqual(
    rows.map((r) => [r.action, r.detail?.via ?? null, r.actor, r.result]),
    [
      ['tag.move', 'promote', 'admin', 'denied'],
      ['tag.move', 'rollback', 'appadmin', 'denied'],
      ['deploy', null, 'admin', 'denied'],
    ],
  );
  // An allowed attempt is a row too.
  assert.equal((await release('deployer', 'production', 'v3')).status, 201);
  const ok = await auditRows(hub, { repository: APP, since }, 4, (r) => r.target === 'production');
  assert.deepEqual([ok.at(-1)!.actor, ok.at(-1)!.result], ['deployer', 'ok']);
});

test('only a global admin may lift the protection through the app file', async () => {
  const file = `app: ${APP}\nenvironments:\n  staging: {}\n  production:\n    protected: false\n`;
  const byAppAdmin = await call('POST', '/api/v1/apply', 'appadmin', { file });
  assert.equal(byAppAdmin.status, 403, byAppAdmin.text);
  assert.equal(JSON.parse((await call('GET', `/api/v1/apps/${APP}/environments/production`, 'admin')).text).protected, true);
  const keeping = await call('POST', '/api/v1/apply', 'appadmin', { file: file.replace('protected: false', 'protected: true') });
  assert.equal(keeping.status, 200, keeping.text);
  const byAdmin = await call('POST', '/api/v1/apply', 'admin', { file });
  assert.equal(byAdmin.status, 200, byAdmin.text);
  assert.equal(JSON.parse((await call('GET', `/api/v1/apps/${APP}/environments/production`, 'admin')).text).protected, false);
});

test('an environment that requires approval: the request waits, a second person with the explicit grant approves it', async () => {
  creds.second = await member(hub, 'second', 'pull,release:vault', 'shop/*');
  await hub.accounts.grant('deployer', 'release:vault', 'shop/*');
  const made = await call('POST', `/api/v1/apps/${APP}/environments`, 'admin', { name: 'vault', protected: true, requiresApproval: true });
  assert.equal(made.status, 201, made.text);
  assert.equal(JSON.parse(made.text).requiresApproval, true);

  const asked = await call('POST', `/api/v1/apps/${APP}/releases`, 'deployer', { environment: 'vault', ref: 'v2', note: 'ship it', deploy: false });
  assert.equal(asked.status, 202, asked.text);
  const request = JSON.parse(asked.text).approval as { id: number; status: string; requestedBy: string };
  assert.deepEqual([request.status, request.requestedBy], ['pending', 'deployer']);
  assert.equal(JSON.parse((await call('GET', `/api/v1/apps/${APP}/environments/vault`, 'admin')).text).current, null, 'nothing released yet');
  // Without the explicit grant one cannot even ask.
  assert.equal((await call('POST', `/api/v1/apps/${APP}/releases`, 'admin', { environment: 'vault', ref: 'v2', deploy: false })).status, 403);

  const since = Date.now();
  // Through the CLI, as each person logged in: the requester's own approval is refused with one plain line.
  for (const who of ['deployer', 'second']) await cliLogin(who);
  const self = await wharfAs('deployer', 'approve', APP, String(request.id));
  assert.equal(self.code, 1, `${self.stdout}${self.stderr}`);
  assert.match(self.stderr, /^wharf approve: [^\n]*a second person must approve it[^\n]*\n$/);
  assert.equal(self.stdout, '');
  const byAdmin = await call('POST', `/api/v1/apps/${APP}/approvals/${request.id}`, 'admin', {});
  assert.equal(byAdmin.status, 403, byAdmin.text);
  assert.match(byAdmin.text, /protected/);
  const byOutsider = await call('POST', `/api/v1/apps/${APP}/approvals/${request.id}`, 'releaser', {});
  assert.equal(byOutsider.status, 403, byOutsider.text);
  const pendingList = await wharfAs('deployer', 'approvals', APP, '--json');
  assert.equal(pendingList.code, 0, pendingList.stderr);
  assert.deepEqual((JSON.parse(pendingList.stdout) as { id: number; requestedBy: string }[]).map((a) => [a.id, a.requestedBy]), [[request.id, 'deployer']]);

  const approved = await wharfAs('second', 'approve', APP, String(request.id), '--json');
  assert.equal(approved.code, 0, `${approved.stdout}${approved.stderr}`);
  const release = JSON.parse(approved.stdout) as { id: number; actor: string; note: string; environment: string };
  assert.deepEqual([release.environment, release.actor], ['vault', 'deployer']);
  assert.equal(release.note, `ship it; approved by second (request #${request.id})`);
  assert.equal(JSON.parse((await call('GET', `/api/v1/apps/${APP}/environments/vault`, 'admin')).text).current.id, release.id);
  const twice = await call('POST', `/api/v1/apps/${APP}/approvals/${request.id}`, 'second', {});
  assert.equal(twice.status, 409, twice.text);
  assert.deepEqual(JSON.parse((await call('GET', `/api/v1/apps/${APP}/approvals`, 'deployer')).text), []);

  const rows = await auditRows(hub, { repository: APP, since, action: 'approval.approve' }, 5);
  assert.deepEqual(
    rows.map((r) => [r.actor, r.result]),
    [
      ['deployer', 'denied'],
      ['admin', 'denied'],
      ['releaser', 'denied'],
      ['second', 'ok'],
      ['second', 'failed'],
    ],
  );
});

test('a pending request is denied by a person with the explicit grant (or withdrawn by its requester), and is never carried out; the list says who may do what', async () => {
  const ask = async () => {
    const r = await call('POST', `/api/v1/apps/${APP}/releases`, 'deployer', { environment: 'vault', ref: 'v3', deploy: false });
    assert.equal(r.status, 202, r.text);
    return (JSON.parse(r.text) as { approval: { id: number } }).approval.id;
  };
  const before = JSON.parse((await call('GET', `/api/v1/apps/${APP}/environments/vault`, 'admin')).text).current.id;
  const since = Date.now();
  const id = await ask();
  type Listed = { id: number; status: string; deniedBy: string | null; caller: { approve: boolean; deny: boolean; reason: string | null } };
  const listed = async (who: string, all = false) => JSON.parse((await call('GET', `/api/v1/apps/${APP}/approvals${all ? '?all=true' : ''}`, who)).text) as Listed[];
  // What each caller may do, as the approve and deny routes decide it.
  const of = async (who: string) => (await listed(who)).find((a) => a.id === id)!.caller;
  assert.deepEqual(await of('second'), { approve: true, deny: true, reason: null });
  const self = await of('deployer');
  assert.deepEqual([self.approve, self.deny], [false, true]);
  assert.match(self.reason!, /deployer asked for it: a second person must approve it/);
  for (const who of ['admin', 'releaser']) {
    const c = await of(who);
    assert.deepEqual([c.approve, c.deny], [false, false], who);
    assert.match(c.reason!, /shop\/web\/vault is protected/, who);
  }
  // Refused without the explicit grant; denied by the second person.
  for (const who of ['admin', 'releaser']) assert.equal((await call('POST', `/api/v1/apps/${APP}/approvals/${id}/deny`, who, {})).status, 403, who);
  const denied = await call('POST', `/api/v1/apps/${APP}/approvals/${id}/deny`, 'second', { reason: 'not today' });
  assert.equal(denied.status, 200, denied.text);
  assert.deepEqual([JSON.parse(denied.text).status, JSON.parse(denied.text).deniedBy, JSON.parse(denied.text).approvedBy], ['denied', 'second', null]);
  const late = await call('POST', `/api/v1/apps/${APP}/approvals/${id}`, 'second', {});
  assert.equal(late.status, 409, late.text);
  assert.match(late.text, /denied by second/);
  assert.equal((await call('POST', `/api/v1/apps/${APP}/approvals/${id}/deny`, 'second', {})).status, 409, 'decided once');
  assert.equal(JSON.parse((await call('GET', `/api/v1/apps/${APP}/environments/vault`, 'admin')).text).current.id, before, 'nothing was released');
  assert.deepEqual(await listed('deployer'), [], 'no longer pending');
  assert.equal((await listed('deployer', true)).find((a) => a.id === id)!.status, 'denied');
  // The requester may withdraw their own.
  const mine = await ask();
  const withdrawn = await call('POST', `/api/v1/apps/${APP}/approvals/${mine}/deny`, 'deployer', {});
  assert.equal(withdrawn.status, 200, withdrawn.text);
  assert.equal(JSON.parse(withdrawn.text).deniedBy, 'deployer');
  const rows = await auditRows(hub, { repository: APP, since, action: 'approval.deny' }, 5);
  assert.deepEqual(
    rows.map((r) => [r.actor, r.result, r.detail?.status]),
    [
      ['admin', 'denied', 403],
      ['releaser', 'denied', 403],
      ['second', 'ok', undefined],
      ['second', 'failed', 409],
      ['deployer', 'ok', undefined],
    ],
  );
});
