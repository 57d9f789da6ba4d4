// Access settings from the config file and environment: grants in the file, the external URL in the
// realm, the proxies whose forwarding headers are believed, and the explicit (development-only) switch
// that turns authentication off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';
import { ADMIN_PASSWORD, basic, pushImage, startAuthHub } from './auth-harness.js';

test('grants in the config file apply to users and @groups, beside those in the database', async () => {
  const hub = await startAuthHub(
    [
      'auth:',
      '  grants:',
      '    - { to: "@qa", actions: pull, repositories: "shop/*" }',
      '    - { to: carol, actions: [pull, push], repositories: "lab/*" }',
    ].join('\n'),
  );
  try {
    await hub.accounts.addUser('bob', 'member', 'bob-password');
    await hub.accounts.addUser('carol', 'member', 'carol-password');
    await hub.accounts.addToGroup('qa', ['bob']);
    await pushImage(hub, basic('admin', ADMIN_PASSWORD), 'shop/web', 'v1');
    // The policy is reread at most every second; wait for it to see the new users.
    await new Promise((r) => setTimeout(r, 1_100));
    assert.equal((await hub.req('/v2/shop/web/manifests/v1', { auth: basic('bob', 'bob-password') })).status, 200, '@qa may pull shop/*');
    assert.equal((await hub.req('/v2/shop/web/manifests/v1', { auth: basic('carol', 'carol-password') })).status, 403);
    await pushImage(hub, basic('carol', 'carol-password'), 'lab/x', 'v1');
  } finally {
    await hub.close();
  }
});

test('--external-url sets the realm of the challenge', async () => {
  const hub = await startAuthHub('externalUrl: https://registry.example.test/\n');
  try {
    const res = await hub.req('/v2/shop/web/manifests/v1');
    assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="https://registry.example.test/token",service="wharf",scope="repository:shop/web:pull"');
  } finally {
    await hub.close();
  }
});

test('auth.enabled: false (WHARF_AUTH=off) lets anyone in and serves no /token', async () => {
  const hub = await startAuthHub('auth:\n  enabled: false\n');
  try {
    assert.equal((await hub.req('/v2/')).status, 200);
    assert.equal((await hub.req('/token?service=wharf')).status, 404);
  } finally {
    await hub.close();
  }
});

test('the environment switches auth, and bad grants in the file are refused by name', () => {
  assert.equal(loadConfig({ env: {} }).auth.enabled, true, 'on by default');
  assert.equal(loadConfig({ env: { WHARF_AUTH: 'off' } }).auth.enabled, false);
  assert.equal(loadConfig({ env: { WHARF_AUTH: 'on' } }).auth.enabled, true);
  assert.throws(() => loadConfig({ env: { WHARF_AUTH: 'maybe' } }), /auth\.enabled/);
  assert.deepEqual(loadConfig({ env: {} }).auth.anonymousPull, [], 'no anonymous pull by default');
  assert.throws(() => loadConfig({ env: { WHARF_TLS_CERT: '/x.pem' } }), /tls\.key/);
});

test('trustedProxies: none by default; the file, WHARF_TRUSTED_PROXIES and --trusted-proxies set it; junk is refused by name', async () => {
  assert.deepEqual(loadConfig({ env: {} }).trustedProxies, []);
  const dir = await mkdtemp(join(tmpdir(), 'wharf-config-'));
  try {
    const file = join(dir, 'wharf.yaml');
    await writeFile(file, 'trustedProxies: ["10.0.0.1", "fd00::/8"]\n');
    assert.deepEqual(loadConfig({ flags: { config: file }, env: {} }).trustedProxies, ['10.0.0.1', 'fd00::/8']);
    assert.deepEqual(loadConfig({ flags: { config: file }, env: { WHARF_TRUSTED_PROXIES: '127.0.0.1, 10.0.0.0/8' } }).trustedProxies, ['127.0.0.1', '10.0.0.0/8']);
    assert.deepEqual(loadConfig({ flags: { config: file, trustedProxies: '192.0.2.1' }, env: { WHARF_TRUSTED_PROXIES: '127.0.0.1' } }).trustedProxies, ['192.0.2.1'], 'flags win');
    assert.deepEqual(loadConfig({ env: { WHARF_TRUSTED_PROXIES: '' } }).trustedProxies, []);
    assert.throws(() => loadConfig({ env: { WHARF_TRUSTED_PROXIES: '10.0.0.0/40' } }), /trustedProxies\.0: expected an IP address or CIDR range/);
    assert.throws(() => loadConfig({ flags: { trustedProxies: 'proxy.internal' }, env: {} }), /trustedProxies\.0/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
