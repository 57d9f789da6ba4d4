// A user's tokens end with a password change, with ended sessions and with the user's removal: access tokens
// (remembered or not), refresh tokens (docker's stored login) and remembered Basic credentials alike.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_PASSWORD, basic, bearer, pushImage, startAuthHub, type AuthHub } from './auth-harness.js';

const APP = 'team/app';
const MANIFEST = `/v2/${APP}/manifests/v1`;
let hub: AuthHub;

before(async () => {
  // policyRefresh 0: the change made through Accounts (as `wharf user passwd` makes it, beside the server)
  // is seen by the next request.
  hub = await startAuthHub('auth:\n  policyRefresh: 0\n');
  await pushImage(hub, basic('admin', ADMIN_PASSWORD), APP, 'v1');
});
after(() => hub?.close());

async function refreshToken(auth: string): Promise<string> {
  const res = await hub.req(`/token?service=wharf&offline_token=true&scope=repository:${APP}:pull`, { auth });
  assert.equal(res.status, 200);
  return ((await res.json()) as { refresh_token: string }).refresh_token;
}

async function refresh(token: string): Promise<number> {
  const res = await hub.req('/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, service: 'wharf', scope: `repository:${APP}:pull` }).toString(),
  });
  await res.arrayBuffer();
  return res.status;
}

async function status(auth: string): Promise<number> {
  const res = await hub.req(MANIFEST, { auth });
  await res.arrayBuffer();
  return res.status;
}

async function expectRevoked(auth: string, why: string) {
  const res = await hub.req(MANIFEST, { auth });
  assert.equal(res.status, 401, why);
  assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/, why);
}

test('a password change ends the access tokens, refresh tokens and remembered logins issued before it', async () => {
  await hub.accounts.addUser('dana', 'member', 'dana-password-1');
  await hub.accounts.grant('dana', 'pull', 'team/*');
  const oldBasic = basic('dana', 'dana-password-1');
  const issued = await bearer(hub, oldBasic, `repository:${APP}:pull`);
  const minted = `Bearer ${(await (await hub.tokens()).issueAccess('dana', [{ type: 'repository', name: APP, actions: ['pull'] }])).token}`;
  const stored = await refreshToken(oldBasic);
  // In use (so remembered) before the change.
  assert.equal(await status(oldBasic), 200);
  assert.equal(await status(issued), 200);
  assert.equal(await refresh(stored), 200);

  await hub.accounts.setPassword('dana', 'dana-password-2');

  await expectRevoked(issued, 'a token issued (and remembered) before the change');
  await expectRevoked(minted, 'a token without the current generation, never seen by this server');
  assert.equal(await status(oldBasic), 401, 'the old password');
  assert.equal(await refresh(stored), 401, 'the stored refresh token');
  const fresh = await bearer(hub, basic('dana', 'dana-password-2'), `repository:${APP}:pull`);
  assert.equal(await status(fresh), 200, 'a token issued after the change works');
  assert.equal(await status(basic('dana', 'dana-password-2')), 200);
});

test('ending a user’s sessions ends its tokens and keeps its password', async () => {
  await hub.accounts.addUser('eve', 'member', 'eve-password-1');
  await hub.accounts.grant('eve', 'pull', 'team/*');
  const creds = basic('eve', 'eve-password-1');
  const token = await bearer(hub, creds, `repository:${APP}:pull`);
  const stored = await refreshToken(creds);
  assert.equal(await status(token), 200);
  await hub.accounts.endSessions('eve');
  await expectRevoked(token, 'after endSessions');
  assert.equal(await refresh(stored), 401);
  assert.equal(await status(creds), 200, 'the password still works');
  assert.equal(await status(await bearer(hub, creds, `repository:${APP}:pull`)), 200);
  const rows = await hub.audit.list({ action: 'user.sessions.end' });
  assert.equal(rows.length, 1);
});

test('a user removed and made again under the same name does not inherit the old user’s tokens', async () => {
  await hub.accounts.addUser('fred', 'member', 'fred-password-1');
  await hub.accounts.grant('fred', 'pull', 'team/*');
  const token = await bearer(hub, basic('fred', 'fred-password-1'), `repository:${APP}:pull`);
  assert.equal(await status(token), 200);
  await hub.accounts.removeUser('fred');
  await expectRevoked(token, 'the user is gone');
  await hub.accounts.addUser('fred', 'member', 'fred-password-1');
  await hub.accounts.grant('fred', 'pull', 'team/*');
  await expectRevoked(token, 'a new user of the same name, even with the same password');
});
