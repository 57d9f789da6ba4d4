// The token service signs what it should and refuses every token it did not issue for this service.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, UnsecuredJWT, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { TokenService, type TokenServiceOptions } from '../../src/auth/token-service.js';

const OPTIONS: TokenServiceOptions = { service: 'wharf', issuer: 'wharf', accessTtlMs: 300_000, refreshTtlMs: 86_400_000 };
const ACCESS = [{ type: 'repository', name: 'team/app', actions: ['pull'] }];

let dir: string;
let tokens: TokenService;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-tokens-'));
  tokens = await TokenService.open(dir, OPTIONS);
});
after(() => rm(dir, { recursive: true, force: true }));

/** Signs arbitrary claims with the data dir's real key: what an attacker holding no key cannot do. */
async function signWithOwnKey(claims: Record<string, unknown>): Promise<string> {
  const file = JSON.parse(await readFile(join(dir, 'auth', 'signing-key.json'), 'utf8')) as { kid: string; privateJwk: JWK };
  const key = await importJWK(file.privateJwk, 'ES256');
  const now = Math.floor(Date.now() / 1000);
  const payload = { access: ACCESS, iss: 'wharf', aud: 'wharf', sub: 'alice', iat: now, nbf: now, exp: now + 300, ...claims };
  return new SignJWT(JSON.parse(JSON.stringify(payload))).setProtectedHeader({ alg: 'ES256', kid: file.kid }).sign(key);
}

async function refused(token: string, why: RegExp): Promise<void> {
  await assert.rejects(tokens.verifyAccess(token), why);
}

test('the signing key is generated once, 0600, and its id is in every token header', async () => {
  const file = join(dir, 'auth', 'signing-key.json');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const again = await TokenService.open(dir, OPTIONS);
  const issued = await again.issueAccess('alice', ACCESS);
  const { kid, alg } = decodeProtectedHeader(issued.token);
  assert.equal(alg, 'ES256');
  assert.equal(kid, (JSON.parse(await readFile(file, 'utf8')) as { kid: string }).kid);
  assert.deepEqual((await tokens.verifyAccess(issued.token)).access, ACCESS, 'a reopened service verifies what the other signed');
});

test('an issued access token verifies with its subject, access and lifetime', async () => {
  const issued = await tokens.issueAccess('alice', ACCESS);
  assert.equal(issued.expiresIn, 300);
  const v = await tokens.verifyAccess(issued.token);
  assert.equal(v.subject, 'alice');
  assert.deepEqual(v.access, ACCESS);
  assert.ok(Math.abs(v.expiresAt - (Date.now() + 300_000)) < 5_000);
});

test('expired and not-yet-valid tokens are refused', async () => {
  await refused((await tokens.issueAccess('alice', ACCESS, Date.now() - 3_600_000)).token, /exp/);
  await refused((await tokens.issueAccess('alice', ACCESS, Date.now() + 3_600_000)).token, /nbf|not active/);
});

test('a token for another service, from another issuer, or without an expiry is refused', async () => {
  const other = await TokenService.open(dir, { ...OPTIONS, service: 'other-registry' });
  await refused((await other.issueAccess('alice', ACCESS)).token, /aud/);
  const otherIssuer = await TokenService.open(dir, { ...OPTIONS, issuer: 'someone-else' });
  await refused((await otherIssuer.issueAccess('alice', ACCESS)).token, /iss/);
  await refused(await signWithOwnKey({ exp: undefined }), /exp/);
});

test('a token signed by another key is refused, under our key id or its own', async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const file = JSON.parse(await readFile(join(dir, 'auth', 'signing-key.json'), 'utf8')) as { kid: string };
  const now = Math.floor(Date.now() / 1000);
  const forge = (kid: string) =>
    new SignJWT({ access: ACCESS }).setProtectedHeader({ alg: 'ES256', kid }).setIssuer('wharf').setAudience('wharf').setSubject('alice').setIssuedAt(now).setNotBefore(now).setExpirationTime(now + 300).sign(privateKey);
  await refused(await forge(file.kid), /signature/);
  await refused(await forge((await exportJWK(publicKey)).x!), /unknown key id/);
  await refused((await forge(file.kid)).replace(/^[^.]+/, Buffer.from(JSON.stringify({ alg: 'ES256' })).toString('base64url')), /unknown key id/);
});

test('alg none, HS256 with the public key, and tampered payloads are refused', async () => {
  const now = Math.floor(Date.now() / 1000);
  const none = new UnsecuredJWT({ access: ACCESS }).setIssuer('wharf').setAudience('wharf').setSubject('alice').setIssuedAt(now).setNotBefore(now).setExpirationTime(now + 300).encode();
  await refused(none, /"alg" \(Algorithm\) Header Parameter value not allowed/);
  const file = JSON.parse(await readFile(join(dir, 'auth', 'signing-key.json'), 'utf8')) as { kid: string; privateJwk: JWK };
  const noneWithOurKid = none.replace(/^[^.]+/, Buffer.from(JSON.stringify({ alg: 'none', kid: file.kid })).toString('base64url'));
  await refused(noneWithOurKid, /"alg" \(Algorithm\) Header Parameter value not allowed/);
  const hs = await new SignJWT({ access: ACCESS })
    .setProtectedHeader({ alg: 'HS256', kid: file.kid })
    .setIssuer('wharf').setAudience('wharf').setSubject('alice').setIssuedAt(now).setNotBefore(now).setExpirationTime(now + 300)
    .sign(Buffer.from(JSON.stringify({ kty: file.privateJwk.kty, x: file.privateJwk.x, y: file.privateJwk.y })));
  await refused(hs, /alg/);

  const good = (await tokens.issueAccess('alice', ACCESS)).token;
  const [h, p, s] = good.split('.') as [string, string, string];
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as { access: { actions: string[] }[] };
  payload.access[0]!.actions = ['pull', 'push', 'delete'];
  await refused(`${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`, /signature/);
  await refused(`${h}.${p}.${s.slice(0, -4)}AAAA`, /signature/);
});

test('refresh tokens and access tokens are not interchangeable', async () => {
  const refresh = await tokens.issueRefresh('alice', 'binding');
  await refused(refresh, /aud/);
  const access = (await tokens.issueAccess('alice', ACCESS)).token;
  await assert.rejects(tokens.verifyRefresh(access), /aud/);
  assert.deepEqual(await tokens.verifyRefresh(refresh).then((r) => [r.subject, r.binding]), ['alice', 'binding']);
});

test('a malformed access claim is refused even when properly signed', async () => {
  await refused(await signWithOwnKey({ access: [{ type: 'repository', name: 'team/app', actions: 'pull' }] }), /malformed/);
});

test('processes racing on a fresh data dir end up with one key', async () => {
  const fresh = await mkdtemp(join(tmpdir(), 'wharf-tokens-race-'));
  try {
    const services = await Promise.all(Array.from({ length: 8 }, () => TokenService.open(fresh, OPTIONS)));
    const token = (await services[0]!.issueAccess('alice', ACCESS)).token;
    for (const s of services) assert.equal((await s.verifyAccess(token)).subject, 'alice');
  } finally {
    await rm(fresh, { recursive: true, force: true });
  }
});
