// The access decision over plain values (auth/access.ts, auth/access-policy.ts): no request, no server. What the
// HTTP layer hands in (the Authorization header, a session claim, the address, the realm) decides it alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Credentials, SessionClaim } from '../../src/auth/access.js';
import { ensureAdmin } from '../../src/auth/bootstrap.js';
import { loadConfig } from '../../src/config.js';
import { RegistryError } from '../../src/oci/errors.js';
import { openWharf } from '../../src/wharf.js';
import { ADMIN_PASSWORD, basic } from './auth-harness.js';

function credentials(authorization: string | undefined, session?: SessionClaim): Credentials & { asked: string[] } {
  const asked: string[] = [];
  return {
    authorization,
    asked,
    session: () => (asked.push('session'), session),
    address: () => (asked.push('address'), '192.0.2.7'),
    realm: () => (asked.push('realm'), 'https://hub.example/token'),
  };
}

test('the access decision takes plain credentials and says who called and how', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'wharf-access-'));
  const wharf = await openWharf(loadConfig({ flags: { data: dataDir }, env: {} }));
  t.after(async () => {
    await wharf.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  const auth = wharf.auth;
  await ensureAdmin(wharf.meta.auth, wharf.audit, dataDir, pino({ level: 'silent' }), { WHARF_ADMIN_PASSWORD: ADMIN_PASSWORD });

  const admin = credentials(basic('admin', ADMIN_PASSWORD));
  const principal = await auth.access.authorize(admin, 'shop', ['push']);
  assert.equal(principal.name, 'admin');
  assert.equal(principal.kind, 'user');
  assert.equal(principal.credential, 'basic');
  assert.equal(admin.caller, principal, 'the caller is handed back for the audit');
  assert.ok(!admin.asked.includes('session'), 'with an Authorization header no session is asked for');

  // Nobody: the challenge names the realm the caller's side gave, and the scope this request needs.
  const nobody = credentials(undefined);
  await assert.rejects(auth.access.authorize(nobody, 'shop', ['pull']), (e: unknown) => {
    assert.ok(e instanceof RegistryError);
    assert.equal(e.code, 'UNAUTHORIZED');
    assert.match(e.headers?.['WWW-Authenticate'] ?? '', /^Bearer realm="https:\/\/hub\.example\/token",service="wharf",scope="repository:shop:pull"$/);
    return true;
  });
  assert.deepEqual(nobody.asked, ['session', 'realm']);

  // A wrong password is refused, and the address it came from is what the limiter counts.
  const wrong = credentials(basic('admin', 'not-the-password'));
  await assert.rejects(auth.access.authorize(wrong, 'shop', ['pull']), (e: unknown) => e instanceof RegistryError && e.code === 'UNAUTHORIZED');
  assert.ok(wrong.asked.includes('address'));

  // A session that does not exist is a refusal, not an anonymous caller.
  const stale = credentials(undefined, { id: 'x'.repeat(43), changes: false, csrfHeader: undefined, csrfCookie: undefined });
  await assert.rejects(auth.access.authorize(stale, undefined, []), (e: unknown) => e instanceof RegistryError && e.code === 'UNAUTHORIZED');
});
