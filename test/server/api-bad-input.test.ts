// The bad input of issue 14 §4, each answered with a 4xx and a message (each was a 500 or a silent success):
// a malformed escape in an /api/v1 path (before authentication), unparseable and astronomic `limit`s, an app
// file that is a YAML alias bomb, `tag restore` of a name no push could create, and a promotion of an
// environment to itself. The fuzz test (fuzz.test.ts) covers every route more broadly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRegistry, type Registry } from './v2-harness.js';
import { api, errorMessage, pushImage } from '../delivery/delivery-harness.js';
import { ADMIN_PASSWORD, basic, startAuthHub, type AuthHub } from '../auth/auth-harness.js';

const APP = 'bad/app';
let r: Registry;
let digest: string;

before(async () => {
  r = await startRegistry();
  digest = await pushImage(r, APP, '1.0.0');
  for (const name of ['staging', 'production']) await api(r, 'POST', `/api/v1/apps/${APP}/environments`, { name }, 201);
  await api(r, 'POST', `/api/v1/apps/${APP}/releases`, { environment: 'staging', ref: '1.0.0' }, 201);
});
after(() => r.close());

test('a malformed percent-escape in an /api/v1 path is a 400, before authentication', async (t) => {
  for (const path of ['/api/v1/apps/%zz/releases', '/api/v1/apps/te%E0%A4%A/environments', '/api/v1/repositories/%/tags/history']) {
    const res = await api(r, 'GET', path);
    assert.equal(res.status, 400, path);
    assert.match(errorMessage(res.body), /malformed percent-encoding/);
  }
  // With authentication on, the same request from nobody is still a 400, not a 500 (nor a 401 first).
  const hub: AuthHub = await startAuthHub();
  t.after(() => hub.close());
  assert.equal((await hub.req('/api/v1/apps/%zz/releases')).status, 400);
  assert.equal((await hub.req('/api/v1/apps/%zz/releases', { auth: basic('admin', ADMIN_PASSWORD) })).status, 400);
});

test('releases and deployments refuse a limit that is no whole number within bounds', async () => {
  for (const limit of ['abc', '1e30', '99999999999999999999', '-1', '0', '1.5', '']) {
    const releases = await api(r, 'GET', `/api/v1/apps/${APP}/releases?limit=${limit}`);
    assert.equal(releases.status, 400, `releases?limit=${limit}: ${JSON.stringify(releases.body)}`);
    assert.match(errorMessage(releases.body), /^query limit: /);
    const deployments = await api(r, 'GET', `/api/v1/apps/${APP}/deployments?environment=staging&limit=${limit}`);
    assert.equal(deployments.status, 400, `deployments?limit=${limit}`);
  }
  assert.equal((await api(r, 'GET', `/api/v1/apps/${APP}/releases?limit=1`, undefined, 200)).body.length, 1);
  assert.deepEqual((await api(r, 'GET', `/api/v1/apps/${APP}/deployments?environment=staging&limit=5`, undefined, 200)).body, []);
  assert.match(errorMessage((await api(r, 'GET', `/api/v1/apps/${APP}/deployments`, undefined, 400)).body), /environment is required/);
});

test('an app file that is a YAML alias bomb is refused with a 400 naming the cause', async () => {
  const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < 9; i++) {
    const prev = String.fromCharCode(96 + i);
    const name = String.fromCharCode(97 + i);
    levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
  }
  const file = `app: ${APP}\n${levels.join('\n')}\nenvironments: {}\n`;
  const res = await api(r, 'POST', '/api/v1/apply', { file });
  assert.equal(res.status, 400, JSON.stringify(res.body));
  assert.match(JSON.stringify(res.body), /alias/i);
});

test('tag restore refuses a tag name no push could create, and creates nothing', async () => {
  for (const tag of ['.x', '-x', 'x'.repeat(129)]) {
    const res = await api(r, 'POST', `/api/v1/repositories/${APP}/tags/${tag}/restore`, { to: digest });
    assert.equal(res.status, 400, `${tag}: ${JSON.stringify(res.body)}`);
    assert.match(errorMessage(res.body), /invalid tag/);
  }
  const tags = (await (await r.req(`/v2/${APP}/tags/list`)).json()) as { tags: string[] };
  assert.ok(!tags.tags.some((t) => t.startsWith('.') || t.startsWith('-')), JSON.stringify(tags));
  // A valid name is restored as before.
  assert.equal((await api(r, 'POST', `/api/v1/repositories/${APP}/tags/restored/restore`, { to: digest })).status, 200);
});

test('promoting an environment to itself is refused and records no release', async () => {
  const before = (await api(r, 'GET', `/api/v1/apps/${APP}/releases`, undefined, 200)).body.length;
  const res = await api(r, 'POST', `/api/v1/apps/${APP}/promote`, { from: 'staging', to: 'staging' });
  assert.equal(res.status, 400);
  assert.match(errorMessage(res.body), /cannot promote an environment to itself/);
  assert.equal((await api(r, 'GET', `/api/v1/apps/${APP}/releases`, undefined, 200)).body.length, before);
  assert.equal((await api(r, 'POST', `/api/v1/apps/${APP}/promote`, { from: 'staging', to: 'production' })).status, 201);
});
