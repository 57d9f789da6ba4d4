// The token service signs what it should and refuses every token it did not issue for this service; its keys live in
// the metadata database (both backends), rotate, and retire.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, UnsecuredJWT, decodeProtectedHeader, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { TokenService, type TokenServiceOptions } from '../../src/auth/token-service.js';
import type { MetadataStore } from '../../src/metadata/store.js';
import { forgetDatabase, openTestStore } from '../support/database.js';

const OPTIONS: TokenServiceOptions = { service: 'wharf', issuer: 'wharf', accessTtlMs: 300_000, refreshTtlMs: 86_400_000 };
const ACCESS = [{ type: 'repository', name: 'team/app', actions: ['pull'] }];

let dir: string;
let store: MetadataStore;
let tokens: TokenService;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-tokens-'));
  store = await openTestStore(join(dir, 'wharf.db'));
  tokens = await TokenService.open(store.signingKeys, dir, OPTIONS);
});
after(async () => {
  await store.close();
  await forgetDatabase(dir);
  await rm(dir, { recursive: true, force: true });
});

/** The signing key as the database holds it. */
async function currentKey(s: MetadataStore = store): Promise<{ kid: string; privateJwk: JWK }> {
  const rows = await s.signingKeys.keys();
  const row = rows.filter((r) => r.private_jwk !== null).at(-1)!;
  return { kid: row.kid, privateJwk: JSON.parse(row.private_jwk!) as JWK };
}

/** Signs arbitrary claims with the real key: what an attacker holding no key cannot do. */
async function signWithOwnKey(claims: Record<string, unknown>): Promise<string> {
  const file = await currentKey();
  const key = await importJWK(file.privateJwk, 'ES256');
  const now = Math.floor(Date.now() / 1000);
  const payload = { access: ACCESS, iss: 'wharf', aud: 'wharf', sub: 'alice', iat: now, nbf: now, exp: now + 300, ...claims };
  return new SignJWT(JSON.parse(JSON.stringify(payload))).setProtectedHeader({ alg: 'ES256', kid: file.kid }).sign(key);
}

async function refused(token: string, why: RegExp): Promise<void> {
  await assert.rejects(tokens.verifyAccess(token), why);
}

test('the signing key is generated once, in the database, and its id is in every token header', async () => {
  assert.equal((await store.signingKeys.keys()).length, 1);
  const again = await TokenService.open(store.signingKeys, dir, OPTIONS);
  assert.equal((await store.signingKeys.keys()).length, 1);
  const issued = await again.issueAccess('alice', ACCESS);
  const { kid, alg } = decodeProtectedHeader(issued.token);
  assert.equal(alg, 'ES256');
  assert.equal(kid, (await currentKey()).kid);
  assert.equal(issued.kid, kid);
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
  const other = await TokenService.open(store.signingKeys, dir, { ...OPTIONS, service: 'other-registry' });
  await refused((await other.issueAccess('alice', ACCESS)).token, /aud/);
  const otherIssuer = await TokenService.open(store.signingKeys, dir, { ...OPTIONS, issuer: 'someone-else' });
  await refused((await otherIssuer.issueAccess('alice', ACCESS)).token, /iss/);
  await refused(await signWithOwnKey({ exp: undefined }), /exp/);
});

test('a token signed by another key is refused, under our key id or its own', async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const file = await currentKey();
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
  const file = await currentKey();
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

test('instances racing on a fresh database end up with one key', async () => {
  const fresh = await mkdtemp(join(tmpdir(), 'wharf-tokens-race-'));
  const stores: MetadataStore[] = [];
  for (let i = 0; i < 4; i++) stores.push(await openTestStore(join(fresh, 'wharf.db')));
  try {
    const services = await Promise.all(stores.flatMap((s) => [TokenService.open(s.signingKeys, fresh, OPTIONS), TokenService.open(s.signingKeys, fresh, OPTIONS)]));
    assert.equal((await stores[0]!.signingKeys.keys()).length, 1);
    const token = (await services[0]!.issueAccess('alice', ACCESS)).token;
    for (const s of services) assert.equal((await s.verifyAccess(token)).subject, 'alice');
  } finally {
    for (const s of stores) await s.close();
    await forgetDatabase(fresh);
    await rm(fresh, { recursive: true, force: true });
  }
});

test('rotation: new tokens carry the new kid, old ones stay valid, an instance that read the keys before verifies the new ones', async () => {
  const fresh = await mkdtemp(join(tmpdir(), 'wharf-tokens-rotate-'));
  const a = await openTestStore(join(fresh, 'wharf.db'));
  const b = await openTestStore(join(fresh, 'wharf.db'));
  try {
    // B refreshes rarely: only a token of an unknown key makes it read the keys at once.
    const onA = await TokenService.open(a.signingKeys, fresh, { ...OPTIONS, keyRefreshMs: 60_000 });
    const onB = await TokenService.open(b.signingKeys, fresh, { ...OPTIONS, keyRefreshMs: 60_000 });
    const old = await onA.issueAccess('alice', ACCESS);
    const oldRefresh = await onA.issueRefresh('alice', 'binding');
    const rotated = await onA.rotate();
    assert.notEqual(rotated.kid, old.kid);
    assert.equal(rotated.state, 'signing');
    const fresh1 = await onA.issueAccess('alice', ACCESS);
    assert.equal(decodeProtectedHeader(fresh1.token).kid, rotated.kid);
    assert.equal((await onB.verifyAccess(fresh1.token)).kid, rotated.kid, 'B learns the new key from its first token');
    for (const s of [onA, onB]) {
      assert.equal((await s.verifyAccess(old.token)).subject, 'alice');
      assert.equal((await s.verifyRefresh(oldRefresh)).subject, 'alice');
    }
    const listed = await onB.list();
    assert.deepEqual(listed.map((k) => [k.kid, k.state]), [[old.kid, 'verifying'], [rotated.kid, 'signing']]);
    assert.ok(listed[0]!.trustedUntil! >= Date.now() + OPTIONS.refreshTtlMs - 60_000, 'an old key verifies for the longest token lifetime');
    // Only the signing key keeps its private half.
    assert.deepEqual((await a.signingKeys.keys()).map((r) => r.private_jwk !== null), [false, true]);

    // Retired: refused by A at once, by B (which refreshes every minute here) as soon as it reads the keys.
    await onA.rotate(true);
    await assert.rejects(onA.verifyAccess(old.token), /retired|unknown key id/);
    await assert.rejects(onA.verifyAccess(fresh1.token), /retired|unknown key id/);
    await assert.rejects(onA.verifyRefresh(oldRefresh), /retired|unknown key id/);
    const onB2 = await TokenService.open(b.signingKeys, fresh, OPTIONS);
    await assert.rejects(onB2.verifyAccess(old.token), /retired|unknown key id/);
    assert.equal(onB2.trusts(old.kid), false);
    assert.deepEqual((await onB2.list()).map((k) => k.state), ['retired', 'retired', 'signing']);
  } finally {
    await a.close();
    await b.close();
    await forgetDatabase(fresh);
    await rm(fresh, { recursive: true, force: true });
  }
});

test('a superseded key stops verifying a token lifetime after it stopped signing', async () => {
  const fresh = await mkdtemp(join(tmpdir(), 'wharf-tokens-lifetime-'));
  const a = await openTestStore(join(fresh, 'wharf.db'));
  try {
    const short = { ...OPTIONS, accessTtlMs: 1_000, refreshTtlMs: 1_000, keyRefreshMs: 0 };
    const s = await TokenService.open(a.signingKeys, fresh, short);
    const old = await s.issueAccess('alice', ACCESS);
    await s.rotate();
    assert.equal(s.trusts(old.kid), true);
    // 1 s of lifetime plus the 5 s clock tolerance: backdate the rotation instead of waiting.
    const { onDatabase } = await import('../support/database.js');
    await onDatabase(fresh, (db) => db.updateTable('signing_keys').set({ superseded_at: Date.now() - 10_000 }).where('kid', '=', old.kid).execute());
    await assert.rejects(s.verifyAccess(old.token), /retired|unknown key id/);
    assert.equal((await s.list())[0]!.state, 'retired');
  } finally {
    await a.close();
    await forgetDatabase(fresh);
    await rm(fresh, { recursive: true, force: true });
  }
});

test('the key file of an older data directory is imported, so its tokens stay valid; a rotation removes it', async () => {
  const fresh = await mkdtemp(join(tmpdir(), 'wharf-tokens-legacy-'));
  const a = await openTestStore(join(fresh, 'wharf.db'));
  try {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    const privateJwk = await exportJWK(privateKey);
    const kid = 'legacy-kid';
    await mkdir(join(fresh, 'auth'));
    const file = join(fresh, 'auth', 'signing-key.json');
    await writeFile(file, JSON.stringify({ kid, alg: 'ES256', privateJwk: { ...privateJwk, kid, alg: 'ES256' } }), { mode: 0o600 });
    const now = Math.floor(Date.now() / 1000);
    const before = await new SignJWT({ access: ACCESS }).setProtectedHeader({ alg: 'ES256', kid }).setIssuer('wharf').setAudience('wharf').setSubject('alice').setIssuedAt(now).setNotBefore(now).setExpirationTime(now + 300).sign(privateKey);
    const s = await TokenService.open(a.signingKeys, fresh, OPTIONS);
    assert.equal((await s.verifyAccess(before)).subject, 'alice');
    assert.equal((await s.issueAccess('alice', ACCESS)).kid, kid);
    await s.rotate();
    await assert.rejects(import('node:fs/promises').then((fs) => fs.stat(file)), /ENOENT/);
    assert.equal((await s.verifyAccess(before)).subject, 'alice');
  } finally {
    await a.close();
    await forgetDatabase(fresh);
    await rm(fresh, { recursive: true, force: true });
  }
});
