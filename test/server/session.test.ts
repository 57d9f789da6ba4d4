// Browser sessions against a real in-process hub: sign-in cookies, CSRF on changes, sign-out, password change.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createHash } from 'node:crypto';
import { ADMIN_PASSWORD, basic, member, startAuthHub, type AuthHub } from '../auth/auth-harness.js';
import { onDatabase } from '../support/database.js';

interface Browser {
  cookie: string;
  csrf: string;
}

async function signIn(hub: AuthHub, username: string, password: string): Promise<Browser> {
  const res = await hub.req('/api/v1/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  assert.equal(res.status, 201, await res.clone().text());
  const cookies = res.headers.getSetCookie();
  const body = (await res.json()) as { csrf: string; user: string };
  assert.equal(body.user, username);
  return { cookie: cookies.map((c) => c.split(';')[0]).join('; '), csrf: body.csrf };
}

describe('browser sessions', () => {
  let hub: AuthHub;
  before(async () => {
    hub = await startAuthHub();
  });
  after(() => hub.close());

  it('sets an HttpOnly, SameSite=Strict session cookie (not Secure over plain HTTP) and a readable CSRF cookie', async () => {
    // X-Forwarded-Proto from a client that is no trusted proxy (this hub trusts none) is not believed.
    const res = await hub.req('/api/v1/session', { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' }, body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }) });
    assert.equal(res.status, 201);
    const [session, csrf] = res.headers.getSetCookie();
    assert.match(session!, /^wharf_session=[A-Za-z0-9_-]{43}; HttpOnly; Path=\/; SameSite=Strict; Max-Age=\d+$/);
    assert.match(csrf!, /^wharf_csrf=[A-Za-z0-9_-]+; Path=\/; SameSite=Strict; Max-Age=\d+$/);
    assert.doesNotMatch(csrf!, /HttpOnly/);
    assert.equal(((await res.json()) as { admin: boolean }).admin, true);
  });

  it('stores only a hash of the session id', async () => {
    const b = await signIn(hub, 'admin', ADMIN_PASSWORD);
    const id = /wharf_session=([^;]+)/.exec(b.cookie)![1]!;
    const rows = await onDatabase(hub.dataDir, (db) => db.selectFrom('browser_sessions').select('id_hash').execute());
    assert.ok(rows.some((r) => r.id_hash === createHash('sha256').update(id).digest('base64url')));
    assert.ok(!rows.some((r) => r.id_hash === id));
  });

  it('the cookie alone reads the API and the registry; a wrong password is 401 without a Basic challenge', async () => {
    const b = await signIn(hub, 'admin', ADMIN_PASSWORD);
    const who = await hub.req('/api/v1/session', { headers: { cookie: b.cookie } });
    assert.equal(who.status, 200);
    assert.deepEqual({ ...((await who.json()) as object), csrf: undefined }, { user: 'admin', kind: 'user', admin: true, csrf: undefined });
    assert.equal((await hub.req('/v2/_catalog', { headers: { cookie: b.cookie } })).status, 200);
    const bad = await hub.req('/api/v1/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'wrong-password' }) });
    assert.equal(bad.status, 401);
    assert.equal(bad.headers.get('www-authenticate'), null);
    assert.equal((await hub.req('/api/v1/session', { headers: { cookie: 'wharf_session=' + 'x'.repeat(43) } })).status, 401);
  });

  it('refuses a change made with the cookie but without the CSRF token, or with a wrong one; accepts it with the token', async () => {
    const b = await signIn(hub, 'admin', ADMIN_PASSWORD);
    const body = JSON.stringify({ name: 'carol', role: 'member', password: 'carol-password' });
    const headers = { cookie: b.cookie, 'content-type': 'application/json' };
    const none = await hub.req('/api/v1/users', { method: 'POST', headers, body });
    assert.equal(none.status, 403);
    assert.match(await none.text(), /CSRF/);
    const wrong = await hub.req('/api/v1/users', { method: 'POST', headers: { ...headers, 'x-csrf-token': 'A'.repeat(43) }, body });
    assert.equal(wrong.status, 403);
    // The header alone, without the matching cookie (a forged form cannot set either): refused too.
    const noCookie = await hub.req('/api/v1/users', { method: 'POST', headers: { ...headers, cookie: b.cookie.replace(/; wharf_csrf=[^;]+/, ''), 'x-csrf-token': b.csrf }, body });
    assert.equal(noCookie.status, 403);
    assert.equal((await onDatabase(hub.dataDir, (db) => db.selectFrom('users').select('name').where('name', '=', 'carol').execute())).length, 0);
    const ok = await hub.req('/api/v1/users', { method: 'POST', headers: { ...headers, 'x-csrf-token': b.csrf }, body });
    assert.equal(ok.status, 201, await ok.text());
  });

  it('a pull-only user’s session is refused admin and push actions', async () => {
    await member(hub, 'reader', 'pull', 'team/*');
    const b = await signIn(hub, 'reader', 'reader-password');
    const who = (await (await hub.req('/api/v1/session', { headers: { cookie: b.cookie } })).json()) as { admin: boolean };
    assert.equal(who.admin, false);
    const res = await hub.req('/api/v1/users', { method: 'POST', headers: { cookie: b.cookie, 'x-csrf-token': b.csrf, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'mallory', password: 'mallory-password' }) });
    assert.equal(res.status, 403);
  });

  it('sign-out revokes the session on the server; a new password ends the others', async () => {
    const b = await signIn(hub, 'admin', ADMIN_PASSWORD);
    const out = await hub.req('/api/v1/session', { method: 'DELETE', headers: { cookie: b.cookie, 'x-csrf-token': b.csrf } });
    assert.equal(out.status, 204);
    assert.ok(out.headers.getSetCookie().every((c) => /Max-Age=0/.test(c)));
    assert.equal((await hub.req('/api/v1/session', { headers: { cookie: b.cookie } })).status, 401);

    await member(hub, 'dave', 'pull', 'x');
    const d = await signIn(hub, 'dave', 'dave-password');
    assert.equal((await hub.req('/api/v1/session', { headers: { cookie: d.cookie } })).status, 200);
    const passwd = await hub.req('/api/v1/users/dave', { method: 'PATCH', auth: basic('admin', ADMIN_PASSWORD), headers: { 'content-type': 'application/json' }, body: JSON.stringify({ password: 'dave-new-password' }) });
    assert.equal(passwd.status, 204);
    assert.equal((await hub.req('/api/v1/session', { headers: { cookie: d.cookie } })).status, 401);

    // `wharf user logout` (a new token generation) ends browser sessions too.
    const again = await signIn(hub, 'dave', 'dave-new-password');
    assert.equal((await hub.req('/api/v1/session', { headers: { cookie: again.cookie } })).status, 200);
    await hub.accounts.endSessions('dave');
    await new Promise((r) => setTimeout(r, 1100)); // the policy is reread within a second
    assert.equal((await hub.req('/api/v1/session', { headers: { cookie: again.cookie } })).status, 401);
  });

  it('a robot token secret cannot open a browser session', async () => {
    const { secret } = await hub.accounts.createToken('ci', ['repository:x:pull']);
    const res = await hub.req('/api/v1/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'ci', password: secret }) });
    assert.equal(res.status, 401);
  });
});

describe('with authentication off', () => {
  it('the page is told nobody is signed in and everything is allowed (as the server then allows it)', async () => {
    const hub = await startAuthHub('auth:\n  enabled: false\n');
    try {
      const res = await hub.req('/api/v1/session');
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { user: null, kind: 'anonymous', admin: true });
      assert.equal((await hub.req('/api/v1/session', { method: 'POST', body: '{}' })).status, 405);
    } finally {
      await hub.close();
    }
  });
});

describe('behind a TLS-terminating proxy', () => {
  it('marks both cookies Secure when a trusted proxy says the client came over https, and only then', async () => {
    // The test's own connection comes from 127.0.0.1: here that address is the trusted proxy.
    const hub = await startAuthHub('trustedProxies: [127.0.0.1]\n');
    try {
      const signIn = (proto: string) =>
        hub.req('/api/v1/session', { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-proto': proto }, body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }) });
      const res = await signIn('https');
      assert.equal(res.status, 201);
      const cookies = res.headers.getSetCookie();
      assert.deepEqual(cookies.map((c) => c.split('=')[0]), ['wharf_session', 'wharf_csrf']);
      for (const c of cookies) assert.match(c, /; Secure(;|$)/, c);
      assert.match(cookies[0]!, /HttpOnly/);
      // Signing out clears them with the same attributes (a browser matches a Secure cookie only so).
      const cookie = cookies.map((c) => c.split(';')[0]).join('; ');
      const csrf = ((await res.json()) as { csrf: string }).csrf;
      const out = await hub.req('/api/v1/session', { method: 'DELETE', headers: { cookie, 'x-csrf-token': csrf, 'x-forwarded-proto': 'https' } });
      assert.ok(out.status < 300, String(out.status));
      assert.equal(out.headers.getSetCookie().length, 2);
      for (const c of out.headers.getSetCookie()) assert.match(c, /Max-Age=0; Secure/, c);
      // The proxy saying plain http: not Secure (the browser would not send it back).
      for (const c of (await signIn('http')).headers.getSetCookie()) assert.doesNotMatch(c, /Secure/, c);
    } finally {
      await hub.close();
    }
  });
});
