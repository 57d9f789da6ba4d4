// GET and POST /token as Docker, podman and OAuth2 clients use them: Basic or anonymous GET with scopes,
// the password and refresh_token grants, refresh tokens that die with a password change, wrong service.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { TokenService } from '../../src/auth/token-service.js';
import { ADMIN_PASSWORD, basic, bearer, startAuthHub, type AuthHub } from '../auth/auth-harness.js';

let hub: AuthHub;
before(async () => {
  hub = await startAuthHub('auth:\n  policyRefresh: 0\n  anonymousPull: ["public/*"]\n');
  await hub.accounts.addUser('alice', 'member', 'alice-password');
  await hub.accounts.grant('alice', 'pull', 'team/*');
  await hub.accounts.grant('alice', 'release:staging', 'shop');
});
after(() => hub?.close());

interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
}

async function getToken(query: string, auth?: string): Promise<{ status: number; body: TokenResponse & { errors?: { code: string }[] }; res: Response }> {
  const res = await hub.req(`/token?${query}`, { auth });
  return { status: res.status, body: (await res.json()) as TokenResponse, res };
}

function form(fields: Record<string, string>): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() };
}

test('GET /token with Basic grants the intersection of what was asked and what the user may do', async () => {
  const { status, body, res } = await getToken(
    'service=wharf&scope=repository:team/app:pull,push&scope=repository:other/app:pull&scope=repository:shop:release:staging,release:production',
    basic('alice', 'alice-password'),
  );
  assert.equal(status, 200);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.equal(body.token, body.access_token);
  assert.equal(body.expires_in, 300);
  assert.ok(Math.abs(Date.parse(body.issued_at) - Date.now()) < 10_000);
  assert.equal(body.refresh_token, undefined, 'no refresh token unless offline_token=true');
  const claims = decodeJwt(body.token);
  assert.equal(claims.sub, 'alice');
  assert.equal(claims.aud, 'wharf');
  assert.equal(claims.iss, 'wharf');
  assert.deepEqual(claims.access, [
    { type: 'repository', name: 'team/app', actions: ['pull'] },
    { type: 'repository', name: 'shop', actions: ['release:staging'] },
  ]);
  assert.equal(decodeProtectedHeader(body.token).alg, 'ES256');
  assert.ok(decodeProtectedHeader(body.token).kid);
});

test('GET /token without credentials is anonymous: public pulls only', async () => {
  const { status, body } = await getToken('service=wharf&scope=repository:public/base:pull,push&scope=repository:team/app:pull');
  assert.equal(status, 200);
  assert.equal(decodeJwt(body.token).sub, '');
  assert.deepEqual(decodeJwt(body.token).access, [{ type: 'repository', name: 'public/base', actions: ['pull'] }]);
});

test('GET /token with wrong credentials is 401, with an unknown service 400', async () => {
  const wrong = await getToken('service=wharf&scope=repository:team/app:pull', basic('alice', 'nope'));
  assert.equal(wrong.status, 401);
  assert.equal(wrong.body.errors?.[0]?.code, 'UNAUTHORIZED');
  const unknownUser = await getToken('service=wharf', basic('nobody', 'nope'));
  assert.equal(unknownUser.status, 401);
  assert.deepEqual(unknownUser.body, wrong.body, 'an unknown user is answered exactly like a wrong password');
  const service = await getToken('service=someone-else&scope=repository:team/app:pull', basic('alice', 'alice-password'));
  assert.equal(service.status, 400);
});

test('docker login: offline_token=true returns a refresh token; POST refresh_token exchanges it', async () => {
  const { body } = await getToken('service=wharf&client_id=docker&offline_token=true', basic('alice', 'alice-password'));
  assert.ok(body.refresh_token);
  const res = await hub.req('/token', form({ grant_type: 'refresh_token', refresh_token: body.refresh_token!, service: 'wharf', client_id: 'docker', scope: 'repository:team/app:pull,push' }));
  assert.equal(res.status, 200);
  const exchanged = (await res.json()) as TokenResponse;
  assert.deepEqual(decodeJwt(exchanged.access_token).access, [{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
  const pull = await hub.req('/v2/team/app/tags/list', { auth: `Bearer ${exchanged.access_token}` });
  assert.equal(pull.status, 404, 'authorized (the repository does not exist yet)');

  const asAccess = await hub.req('/v2/', { auth: `Bearer ${body.refresh_token}` });
  assert.equal(asAccess.status, 401, 'a refresh token is not an access token');
});

test('a password change ends refresh tokens issued before it', async () => {
  await hub.accounts.addUser('bob', 'member', 'bob-password-1');
  const res = await hub.req('/token', form({ grant_type: 'password', username: 'bob', password: 'bob-password-1', service: 'wharf', access_type: 'offline', client_id: 'test' }));
  assert.equal(res.status, 200);
  const { refresh_token } = (await res.json()) as TokenResponse;
  assert.ok(refresh_token);
  const refresh = () => hub.req('/token', form({ grant_type: 'refresh_token', refresh_token: refresh_token!, service: 'wharf' }));
  assert.equal((await refresh()).status, 200);
  assert.equal((await hub.req('/v2/', { auth: basic('bob', 'bob-password-1') })).status, 200, 'now remembered in the credential cache');
  await hub.accounts.setPassword('bob', 'bob-password-2');
  assert.equal((await refresh()).status, 401);
  assert.equal((await hub.req('/v2/', { auth: basic('bob', 'bob-password-1') })).status, 401, 'the old password is refused at once, cached or not');
  assert.equal((await hub.req('/v2/', { auth: basic('bob', 'bob-password-2') })).status, 200);
});

test('POST /token: wrong password 401, unknown grant 400, wrong content type 400', async () => {
  assert.equal((await hub.req('/token', form({ grant_type: 'password', username: 'alice', password: 'x', service: 'wharf' }))).status, 401);
  assert.equal((await hub.req('/token', form({ grant_type: 'client_credentials', service: 'wharf' }))).status, 400);
  assert.equal((await hub.req('/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 400);
  assert.equal((await hub.req('/token', form({ grant_type: 'refresh_token', refresh_token: 'garbage', service: 'wharf' }))).status, 401);
});

test('robot tokens log in at /token with any user name', async () => {
  const { secret } = await hub.accounts.createToken('ci', ['repository:team/*:pull,push']);
  const { status, body } = await getToken('service=wharf&scope=repository:team/app:pull,push,delete', basic('anything', secret));
  assert.equal(status, 200);
  assert.match(String(decodeJwt(body.token).sub), /^token:[0-9a-f]{16}$/);
  assert.deepEqual(decodeJwt(body.token).access, [{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
});

test('anonymous pull works without any token for allowed patterns, and never push', async () => {
  const admin = basic('admin', ADMIN_PASSWORD);
  const blob = Buffer.from('public layer');
  const { createHash } = await import('node:crypto');
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  assert.equal((await hub.req(`/v2/public/base/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob, auth: admin })).status, 201);
  assert.equal((await hub.req(`/v2/public/base/blobs/${digest}`)).status, 200, 'anonymous pull of public/*');
  assert.equal((await hub.req(`/v2/team/app/blobs/${digest}`)).status, 401, 'not of other repositories');
  const push = await hub.req(`/v2/public/base/blobs/uploads/`, { method: 'POST' });
  assert.equal(push.status, 401);
  assert.match(push.headers.get('www-authenticate') ?? '', /scope="repository:public\/base:pull,push"/);
  assert.equal((await hub.req('/v2/')).status, 401, 'the base endpoint still challenges, so clients fetch a token');
  const anonymous = (await getToken('service=wharf&scope=registry:catalog:*')).body.token;
  const catalog = (await (await hub.req('/v2/_catalog', { auth: `Bearer ${anonymous}` })).json()) as { repositories: string[] };
  assert.deepEqual(catalog.repositories, ['public/base'], 'an anonymous token lists only public repositories');
});

test('a token from /token is remembered as issued: its first use on /v2 needs no signature check', async () => {
  const verify = TokenService.prototype.verifyAccess;
  let verified = 0;
  TokenService.prototype.verifyAccess = function (this: TokenService, token: string) {
    verified++;
    return verify.call(this, token);
  };
  try {
    const token = await bearer(hub, basic('admin', ADMIN_PASSWORD), 'repository:team/app:pull');
    const res = await hub.req('/v2/team/app/tags/list', { auth: token });
    await res.arrayBuffer();
    assert.notEqual(res.status, 401);
    assert.equal(verified, 0, 'the ES256 check of a token this server just signed is skipped');
    // A token signed here but not handed out by /token (so not remembered) is still checked.
    const minted = (await (await hub.tokens()).issueAccess('admin', [{ type: 'repository', name: 'team/app', actions: ['pull'] }])).token;
    await (await hub.req('/v2/team/app/tags/list', { auth: `Bearer ${minted}` })).arrayBuffer();
    assert.equal(verified, 1);
  } finally {
    TokenService.prototype.verifyAccess = verify;
  }
});
