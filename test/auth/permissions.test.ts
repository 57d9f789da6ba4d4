// The permission matrix: every /v2 endpoint against every kind of caller — anonymous, reader, writer,
// admin, a narrow robot token, an expired and a revoked one, and Bearer tokens that are tampered, alg:none,
// minted for another repository, another service or signed by another key. Every refusal is asserted:
// 401 with Distribution's challenge (no or bad credentials) or 403 DENIED (known caller, no grant).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, UnsecuredJWT, generateKeyPair } from 'jose';
import { digestOf } from '../../src/oci/digest.js';
import { OCI_MANIFEST } from '../../src/oci/media-types.js';
import { ADMIN_PASSWORD, basic, bearer, pushImage, startAuthHub, type AuthHub, type PushedImage } from './auth-harness.js';

const REPO = 'team/app';
const UNKNOWN_DIGEST = digestOf('nothing here');

let hub: AuthHub;
let image: PushedImage;
let other: PushedImage;
const creds: Record<string, string> = {};

before(async () => {
  // policyRefresh 0: every request sees the database as it is (the tests change it between requests).
  // Many deliberate failures come from one address here: the limits are not what this file tests.
  hub = await startAuthHub('auth:\n  policyRefresh: 0\n  loginFailures: { perUser: 1000, perAddress: 1000 }\n');
  const a = hub.accounts;
  await a.addUser('reader', 'member', 'reader-password');
  await a.addUser('writer', 'member', 'writer-password');
  await a.addUser('deleter', 'member', 'deleter-password');
  await a.addUser('outsider', 'member', 'outsider-password');
  await a.grant('reader', 'pull', 'team/*');
  await a.grant('writer', 'pull,push', 'team/*');
  await a.grant('deleter', 'pull,delete', 'team/*');
  creds.admin = basic('admin', ADMIN_PASSWORD);
  creds.reader = basic('reader', 'reader-password');
  creds.writer = basic('writer', 'writer-password');
  creds.deleter = basic('deleter', 'deleter-password');
  creds.outsider = basic('outsider', 'outsider-password');
  creds.narrow = basic('ci', (await a.createToken('narrow', ['repository:team/app:pull'])).secret);
  creds.expired = basic('ci', (await a.createToken('expired', ['repository:team/*:pull,push'], 1)).secret);
  creds.revoked = basic('ci', (await a.createToken('revoked', ['repository:team/*:pull,push'])).secret);
  await a.revokeToken('revoked');
  image = await pushImage(hub, creds.admin, REPO, 'v1');
  other = await pushImage(hub, creds.admin, 'other/app', 'v1');
});
after(() => hub?.close());

interface Endpoint {
  name: string;
  method: string;
  path: () => string;
  /** the scope actions the route declares, as the challenge names them; undefined: registry-level */
  scope?: string;
  body?: () => Buffer;
  headers?: Record<string, string>;
  /** the status an allowed caller gets (404s prove the check passed and the handler ran) */
  ok: number;
}

const ENDPOINTS: Endpoint[] = [
  { name: 'base', method: 'GET', path: () => '/v2/', ok: 200 },
  { name: 'catalog', method: 'GET', path: () => '/v2/_catalog', ok: 200 },
  { name: 'get manifest', method: 'GET', path: () => `/v2/${REPO}/manifests/v1`, scope: 'pull', ok: 200 },
  { name: 'head manifest', method: 'HEAD', path: () => `/v2/${REPO}/manifests/${image.digest}`, scope: 'pull', ok: 200 },
  { name: 'put manifest', method: 'PUT', path: () => `/v2/${REPO}/manifests/v2`, scope: 'pull,push', body: () => image.manifest, headers: { 'content-type': OCI_MANIFEST }, ok: 201 },
  { name: 'delete manifest', method: 'DELETE', path: () => `/v2/${REPO}/manifests/${UNKNOWN_DIGEST}`, scope: 'delete', ok: 404 },
  { name: 'get blob', method: 'GET', path: () => `/v2/${REPO}/blobs/${image.layer}`, scope: 'pull', ok: 200 },
  { name: 'head blob', method: 'HEAD', path: () => `/v2/${REPO}/blobs/${image.layer}`, scope: 'pull', ok: 200 },
  { name: 'delete blob', method: 'DELETE', path: () => `/v2/${REPO}/blobs/${UNKNOWN_DIGEST}`, scope: 'delete', ok: 404 },
  { name: 'start upload', method: 'POST', path: () => `/v2/${REPO}/blobs/uploads/`, scope: 'pull,push', ok: 202 },
  { name: 'upload status', method: 'GET', path: () => `/v2/${REPO}/blobs/uploads/no-such-upload`, scope: 'pull,push', ok: 404 },
  { name: 'upload chunk', method: 'PATCH', path: () => `/v2/${REPO}/blobs/uploads/no-such-upload`, scope: 'pull,push', body: () => Buffer.from('x'), ok: 404 },
  { name: 'finish upload', method: 'PUT', path: () => `/v2/${REPO}/blobs/uploads/no-such-upload?digest=${UNKNOWN_DIGEST}`, scope: 'pull,push', ok: 404 },
  { name: 'cancel upload', method: 'DELETE', path: () => `/v2/${REPO}/blobs/uploads/no-such-upload`, scope: 'pull,push', ok: 404 },
  { name: 'tags list', method: 'GET', path: () => `/v2/${REPO}/tags/list`, scope: 'pull', ok: 200 },
  { name: 'referrers', method: 'GET', path: () => `/v2/${REPO}/referrers/${image.digest}`, scope: 'pull', ok: 200 },
];

type Outcome = 'ok' | 401 | 403 | 'insufficient_scope' | 'invalid_token';

async function call(e: Endpoint, auth: string | undefined): Promise<Response> {
  return hub.req(e.path(), { method: e.method, auth, headers: e.headers, body: e.body?.() as Uint8Array<ArrayBuffer> | undefined });
}

async function expectOutcome(e: Endpoint, who: string, auth: string | undefined, outcome: Outcome): Promise<void> {
  const res = await call(e, auth);
  const text = await res.text();
  const where = `${who} → ${e.method} ${e.path()}: ${res.status} ${text.slice(0, 200)}`;
  if (outcome === 'ok') {
    assert.equal(res.status, e.ok, where);
    return;
  }
  const status = outcome === 403 ? 403 : 401;
  assert.equal(res.status, status, where);
  if (e.method !== 'HEAD') {
    const body = JSON.parse(text) as { errors: { code: string }[] };
    assert.equal(body.errors[0]!.code, status === 403 ? 'DENIED' : 'UNAUTHORIZED', where);
  }
  const challenge = res.headers.get('www-authenticate');
  if (status === 403) {
    assert.equal(challenge, null, `${where}: a 403 carries no challenge`);
    return;
  }
  let expected = `Bearer realm="${hub.url}/token",service="wharf"`;
  if (e.scope) expected += `,scope="repository:${REPO}:${e.scope}"`;
  else if (e.name === 'catalog') expected += `,scope="registry:catalog:*"`;
  if (outcome === 'insufficient_scope' || outcome === 'invalid_token') expected += `,error="${outcome}"`;
  assert.equal(challenge, expected, where);
}

/** What each kind of caller may do: pull, push (with pull), delete, or nothing. */
function expected(e: Endpoint, can: { login: boolean; pull: boolean; push: boolean; delete: boolean }, denied: 401 | 403 = 403): Outcome {
  if (!can.login) return 401;
  if (e.scope === undefined) return 'ok';
  const need = e.scope === 'pull' ? can.pull : e.scope === 'delete' ? can.delete : can.push && can.pull;
  return need ? 'ok' : denied;
}

const NOTHING = { login: false, pull: false, push: false, delete: false };
const CALLERS: [string, () => string | undefined, { login: boolean; pull: boolean; push: boolean; delete: boolean }][] = [
  ['anonymous', () => undefined, NOTHING],
  ['outsider (no grants)', () => creds.outsider, { login: true, pull: false, push: false, delete: false }],
  ['reader', () => creds.reader, { login: true, pull: true, push: false, delete: false }],
  ['writer', () => creds.writer, { login: true, pull: true, push: true, delete: false }],
  ['deleter', () => creds.deleter, { login: true, pull: true, push: false, delete: true }],
  ['admin', () => creds.admin, { login: true, pull: true, push: true, delete: true }],
  ['narrow token (team/app:pull)', () => creds.narrow, { login: true, pull: true, push: false, delete: false }],
  ['expired token', () => creds.expired, NOTHING],
  ['revoked token', () => creds.revoked, NOTHING],
  ['wrong password', () => basic('writer', 'not-the-password'), NOTHING],
];

for (const [who, auth, can] of CALLERS) {
  test(`Basic: ${who}`, async () => {
    for (const e of ENDPOINTS) await expectOutcome(e, who, auth(), expected(e, can));
  });
}

/** A token that claims only repositories may not list the catalog: it is sent back for `registry:catalog:*`. */
function withoutCatalogClaim(e: Endpoint, outcome: Outcome): Outcome {
  return e.name === 'catalog' && outcome === 'ok' ? 'insufficient_scope' : outcome;
}

test('Bearer: a token from /token grants what was asked and allowed, and nothing more', async () => {
  const writer = await bearer(hub, creds.writer, `repository:${REPO}:pull,push,delete`);
  for (const e of ENDPOINTS) await expectOutcome(e, 'writer bearer', writer, withoutCatalogClaim(e, expected(e, { login: true, pull: true, push: true, delete: false })));
  const pullOnly = await bearer(hub, creds.writer, `repository:${REPO}:pull`);
  for (const e of ENDPOINTS) {
    // The writer may push, so a pull-only token gets the challenge to come back with a better one;
    // the writer may not delete, so no token would help there: 403.
    const outcome: Outcome = e.scope === 'pull,push' ? 'insufficient_scope' : e.scope === 'delete' ? 403 : 'ok';
    await expectOutcome(e, 'writer pull-only bearer', pullOnly, withoutCatalogClaim(e, outcome));
  }
});

test('Bearer: a token minted for another repository', async () => {
  const forOther = await bearer(hub, creds.writer, 'repository:team/other:pull,push');
  for (const e of ENDPOINTS) {
    const outcome: Outcome = e.scope === undefined ? 'ok' : e.scope === 'delete' ? 403 : 'insufficient_scope';
    await expectOutcome(e, 'writer bearer for team/other', forOther, withoutCatalogClaim(e, outcome));
  }
  // A reader's token for a repository they cannot read grants nothing there, and is refused there.
  const res = await hub.req(`/v2/other/app/manifests/v1`, { auth: await bearer(hub, creds.reader, 'repository:other/app:pull') });
  assert.equal(res.status, 403);
});

test('Bearer: tampered, alg:none, expired, other service, other issuer and other key are all refused', async () => {
  const good = (await bearer(hub, creds.admin, `repository:${REPO}:pull,push,delete`)).slice('Bearer '.length);
  const [h, p, s] = good.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url')}.${s}`;
  const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { kid: string };
  const now = Math.floor(Date.now() / 1000);
  const none = new UnsecuredJWT(claims).encode().replace(/^[^.]+/, Buffer.from(JSON.stringify({ alg: 'none', kid: header.kid })).toString('base64url'));
  const { privateKey } = await generateKeyPair('ES256');
  const otherKey = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: header.kid }).sign(privateKey);
  const access = [{ type: 'repository', name: REPO, actions: ['pull', 'push', 'delete'] }];
  const expired = (await (await hub.tokens()).issueAccess('admin', access, Date.now() - 3_600_000)).token;
  const notYet = (await (await hub.tokens()).issueAccess('admin', access, Date.now() + 3_600_000)).token;
  const otherService = (await (await hub.tokens({ service: 'another-registry' })).issueAccess('admin', access)).token;
  const otherIssuer = (await (await hub.tokens({ issuer: 'another-issuer' })).issueAccess('admin', access)).token;
  const forGone = (await (await hub.tokens()).issueAccess('nobody', access)).token;
  void now;
  for (const [what, token] of Object.entries({ tampered, none, otherKey, expired, notYet, otherService, otherIssuer, forGone, garbage: 'not.a.jwt' })) {
    for (const e of ENDPOINTS) await expectOutcome(e, `${what} bearer`, `Bearer ${token}`, 'invalid_token');
  }
});

test('Bearer: a token with a remembered token’s signature but other claims is refused', async () => {
  // Access tokens are remembered by the end of their signature and then compared whole: a forgery that
  // keeps the signature of a token in use must not ride on its cache entry.
  const good = await bearer(hub, creds.reader, `repository:${REPO}:pull`);
  assert.equal((await hub.req(`/v2/${REPO}/manifests/v1`, { auth: good })).status, 200);
  const [h, p, s] = good.slice('Bearer '.length).split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  for (const forged of [{ ...claims, sub: 'admin' }, { ...claims, access: [{ type: 'repository', name: REPO, actions: ['pull', 'push', 'delete'] }] }]) {
    const token = `Bearer ${h}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${s}`;
    const res = await hub.req(`/v2/${REPO}/manifests/v1`, { method: 'DELETE', auth: token });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  }
  assert.equal((await hub.req(`/v2/${REPO}/manifests/v1`, { auth: good })).status, 200, 'the genuine token still works');
});

test('Bearer: a token for a robot token that is revoked afterwards stops working', async () => {
  const { secret } = await hub.accounts.createToken('short-lived', [`repository:${REPO}:pull`]);
  const token = await bearer(hub, basic('x', secret), `repository:${REPO}:pull`);
  assert.equal((await hub.req(`/v2/${REPO}/manifests/v1`, { auth: token })).status, 200);
  await hub.accounts.revokeToken('short-lived');
  const res = await hub.req(`/v2/${REPO}/manifests/v1`, { auth: token });
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
});

test('a blob mount needs pull on the source: without it the client gets an upload session instead', async () => {
  const mount = `/v2/${REPO}/blobs/uploads/?mount=${other.layer}&from=other/app`;
  const writer = await hub.req(mount, { method: 'POST', auth: creds.writer });
  assert.equal(writer.status, 202, 'writer cannot pull other/app: no mount');
  assert.equal((await hub.req(`/v2/${REPO}/blobs/${other.layer}`, { method: 'HEAD', auth: creds.writer })).status, 404);
  await hub.accounts.grant('writer', 'pull', 'other/*');
  const mounted = await hub.req(mount, { method: 'POST', auth: creds.writer });
  assert.equal(mounted.status, 201, 'with pull on the source the mount succeeds');
  assert.equal((await hub.req(`/v2/${REPO}/blobs/${other.layer}`, { method: 'HEAD', auth: creds.writer })).status, 200);
  await hub.accounts.revoke('writer', 'pull', 'other/*');
});

test('the catalog lists only what the caller may pull', async () => {
  const list = async (auth: string) => ((await (await hub.req('/v2/_catalog', { auth })).json()) as { repositories: string[] }).repositories;
  assert.deepEqual(await list(creds.admin), ['other/app', 'team/app']);
  assert.deepEqual(await list(creds.reader), ['team/app']);
  assert.deepEqual(await list(creds.narrow), ['team/app']);
  assert.deepEqual(await list(creds.outsider), []);
  assert.deepEqual(await list(await bearer(hub, creds.reader, 'registry:catalog:*')), ['team/app']);
});

test('a token lists the catalog only when it claims registry:catalog:*, and the challenge says so', async () => {
  // A token issued to pull one repository is not a licence to enumerate the others (Distribution asks the same).
  const narrow = await hub.req('/v2/_catalog', { auth: await bearer(hub, creds.admin, 'repository:team/app:pull') });
  assert.equal(narrow.status, 401);
  const challenge = narrow.headers.get('www-authenticate') ?? '';
  assert.match(challenge, /scope="registry:catalog:\*"/);
  assert.match(challenge, /error="insufficient_scope"/);
  assert.equal(((await narrow.json()) as { errors: { code: string }[] }).errors[0]!.code, 'UNAUTHORIZED');
  const empty = await hub.req('/v2/_catalog', { auth: await bearer(hub, creds.admin) });
  assert.equal(empty.status, 401, 'a token with no claims lists nothing either');
  // Anonymous callers are told which scope to fetch; Basic credentials carry no claims and list what they may pull.
  const anonymous = await hub.req('/v2/_catalog');
  assert.equal(anonymous.status, 401);
  assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer realm="[^"]+",service="[^"]+",scope="registry:catalog:\*"$/);
  assert.equal((await hub.req('/v2/_catalog', { auth: creds.reader })).status, 200);
});

test('grants changed while the server runs apply to the next request', async () => {
  assert.equal((await hub.req(`/v2/${REPO}/manifests/v1`, { auth: creds.outsider })).status, 403);
  await hub.accounts.grant('outsider', 'pull', REPO);
  assert.equal((await hub.req(`/v2/${REPO}/manifests/v1`, { auth: creds.outsider })).status, 200);
  await hub.accounts.revoke('outsider', undefined, REPO);
  assert.equal((await hub.req(`/v2/${REPO}/manifests/v1`, { auth: creds.outsider })).status, 403);
  await hub.accounts.removeUser('outsider');
  assert.equal((await hub.req(`/v2/${REPO}/manifests/v1`, { auth: creds.outsider })).status, 401, 'a removed user is a bad login');
});
