// The permission matrix of the management API: every /api/v1 route of the route table (a new route is in it
// without a line here) against Bearer tokens that must not grant more than they claim — an admin's token issued
// to pull one repository, an admin's token with no scope at all, a CI robot's token — and against callers whose
// credentials do suffice (Basic admin, an admin token that asked for `wharf:admin:*`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Action } from '../../src/auth/access.js';
import { openRequestAccess as openAccess } from '../../src/server/access.js';
import type { ApiRoute } from '../../src/server/api.js';
import { hubRoutes } from '../../src/server/routes.js';
import { ADMIN_PASSWORD, basic, bearer, pushImage, startAuthHub, type AuthHub } from './auth-harness.js';

const APP = 'team/app';

/** Values for the named groups of route patterns: a route with another group name fails the test, asking for one. */
const SAMPLE_PARAMS: Record<string, string> = { app: APP, repo: APP, env: 'staging', id: '1', tag: 'v1', ref: 'v1', name: 'web-1', slot: 'staging/DB_PASSWORD' };

/** What a route needs, as the oracle of this test states it. */
interface Needs {
  repository?: string;
  actions: Action[];
  environment?: string;
}

/**
 * Routes whose access check is made inside the handler, from the body: the body to send and what the check
 * then needs. A new 'handler' route fails the test until it is described here.
 */
const HANDLER_ROUTES: Record<string, { body: unknown; needs: Needs }> = {
  'POST /api/v1/apps/team/app/releases': { body: { environment: 'production', ref: 'v1' }, needs: { repository: APP, actions: ['release'], environment: 'production' } },
  'POST /api/v1/apps/team/app/promote': { body: { from: 'staging', to: 'production' }, needs: { repository: APP, actions: ['release'], environment: 'production' } },
  'POST /api/v1/apps/team/app/rollback': { body: { environment: 'production' }, needs: { repository: APP, actions: ['release'], environment: 'production' } },
  'POST /api/v1/apps/team/app/deployments': { body: { environment: 'production' }, needs: { repository: APP, actions: ['release'], environment: 'production' } },
  // Approving needs what making the request needed (test/auth/protected.test.ts); a missing one, plain release.
  'POST /api/v1/apps/team/app/approvals/1': { body: {}, needs: { repository: APP, actions: ['release'] } },
  'POST /api/v1/apps/team/app/approvals/1/deny': { body: {}, needs: { repository: APP, actions: ['release'] } },
  'POST /api/v1/apply': { body: { file: `app: ${APP}\nenvironments:\n  staging: {}\n`, dryRun: true }, needs: { repository: APP, actions: ['admin'] } },
};

/** A JSON body for declared routes that read one (sent to every non-GET route; ignored where unread). */
const BODIES: Record<string, unknown> = {
  'POST /api/v1/webhooks': { url: 'http://127.0.0.1:9/hook', events: ['*'] },
  'POST /api/v1/retention/policies': { repositories: 'nothing/*', keepLast: 1000 },
  'POST /api/v1/gc': { dryRun: true },
  'POST /api/v1/apps/team/app/environments': { name: 'qa' },
  'POST /api/v1/repositories/team/app/tags/v1/restore': { to: 'sha256:' + '0'.repeat(64) },
  'POST /api/v1/apps/team/app/attestations': { envelope: { payload: '', payloadType: 'application/vnd.in-toto+json', signatures: [] } },
  'POST /api/v1/signers': { name: 'nobody', publicKey: 'not a key', apps: ['*'], kinds: ['tests'], environments: ['*'] },
};

/** A concrete path for a route pattern: each named group replaced by its sample value. */
function samplePath(pattern: RegExp): string {
  let src = pattern.source.replace(/^\^/, '').replace(/\$$/, '');
  for (;;) {
    const start = src.indexOf('(?<');
    if (start < 0) break;
    const name = src.slice(start + 3, src.indexOf('>', start));
    let depth = 0;
    let end = start;
    for (; end < src.length; end++) {
      if (src[end] === '\\') end++;
      else if (src[end] === '(') depth++;
      else if (src[end] === ')' && --depth === 0) break;
    }
    const value = SAMPLE_PARAMS[name];
    assert.ok(value !== undefined, `route ${pattern}: no sample value for the parameter ${name}; add it to SAMPLE_PARAMS`);
    src = src.slice(0, start) + value + src.slice(end + 1);
  }
  const path = src.replace(/\\\//g, '/');
  assert.ok(pattern.test(path), `route ${pattern}: the sample path ${path} does not match; the path builder needs teaching`);
  return path;
}

interface Case {
  key: string;
  method: ApiRoute['method'];
  path: string;
  body?: unknown;
  needs: Needs;
}

function cases(routes: ApiRoute[]): Case[] {
  return routes.map((route) => {
    const path = samplePath(route.pattern);
    const key = `${route.method} ${path}`;
    if (route.access === 'handler') {
      const h = HANDLER_ROUTES[key];
      assert.ok(h, `${key} checks access in its handler: describe its body and what it needs in HANDLER_ROUTES`);
      return { key, method: route.method, path, body: h.body, needs: h.needs };
    }
    if (route.access === 'public') return { key, method: route.method, path, body: undefined, needs: { actions: [] } };
    const needs: Needs = 'repositoryParam' in route.access ? { repository: APP, actions: route.access.actions } : { actions: route.access.actions };
    return { key, method: route.method, path, body: route.method === 'GET' ? undefined : (BODIES[key] ?? {}), needs };
  });
}

let hub: AuthHub;
let all: Case[];
const tokens: Record<string, string> = {};

before(async () => {
  hub = await startAuthHub('auth:\n  policyRefresh: 0\n  loginFailures: { perUser: 1000, perAddress: 1000 }\n');
  const admin = basic('admin', ADMIN_PASSWORD);
  await pushImage(hub, admin, APP, 'v1');
  const ci = basic('ci', (await hub.accounts.createToken('ci', ['repository:team/*:pull,push,release:staging'])).secret);
  tokens.adminBasic = admin;
  tokens.adminPull = await bearer(hub, admin, `repository:${APP}:pull`);
  tokens.adminEmpty = await bearer(hub, admin);
  tokens.adminFull = await bearer(hub, admin, 'wharf:admin:*', `repository:${APP}:*`);
  // The CI token asks for everything: it gets what its robot scope allows and no more.
  tokens.ci = await bearer(hub, ci, 'wharf:admin:*', `repository:${APP}:*`, `repository:${APP}:release:staging`);
  all = cases(hubRoutes(hub.wharf, openAccess));
});
after(() => hub?.close());

/** The oracle: what each caller may do, from its claims (and, for the robot, its scope). */
const MAY: Record<string, (n: Needs) => boolean> = {
  adminBasic: () => true,
  adminFull: () => true,
  adminPull: (n) => n.actions.every((a) => n.repository === APP && a === 'pull'),
  adminEmpty: (n) => n.actions.length === 0,
  ci: (n) => n.actions.every((a) => n.repository === APP && (a === 'pull' || a === 'push' || (a === 'release' && n.environment === 'staging'))),
};

async function call(c: Case, auth: string): Promise<{ status: number; text: string; challenge: string | null }> {
  const res = await hub.req(c.path, {
    method: c.method,
    auth,
    ...(c.body === undefined ? {} : { body: JSON.stringify(c.body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: res.status, text: await res.text(), challenge: res.headers.get('www-authenticate') };
}

async function expectDenied(c: Case, who: string) {
  const r = await call(c, tokens[who]!);
  const where = `${who} → ${c.key}: ${r.status} ${r.text.slice(0, 200)}`;
  assert.ok(r.status === 401 || r.status === 403, `denied expected: ${where}`);
  // 401 only when a better token would help (the caller holds the grant): the challenge says which scope.
  if (r.status === 401) assert.match(r.challenge ?? '', /error="insufficient_scope"/, where);
}

async function expectAllowed(c: Case, who: string) {
  const r = await call(c, tokens[who]!);
  const where = `${who} → ${c.key}: ${r.status} ${r.text.slice(0, 200)}`;
  assert.ok(r.status !== 401 && r.status !== 403, `allowed expected: ${where}`);
  assert.ok(r.status < 500, `no 5xx: ${where}`);
}

test('the route table is covered: every /api/v1 route gets a concrete request', () => {
  assert.ok(all.length >= 25, `only ${all.length} routes`);
  assert.ok(all.every((c) => c.path.startsWith('/api/v1/')));
});

for (const who of ['adminPull', 'adminEmpty', 'ci']) {
  test(`${who}: denied on every route its claims do not cover, allowed where they do`, async () => {
    for (const c of all) {
      if (MAY[who]!(c.needs)) await expectAllowed(c, who);
      else await expectDenied(c, who);
    }
  });
}

test('no change goes through on a pull-only or an empty-scope token, whatever its subject may do', async () => {
  // Independent of what routes declare: only reads may be reachable with these tokens.
  for (const c of all.filter((x) => x.method !== 'GET')) {
    await expectDenied(c, 'adminPull');
    await expectDenied(c, 'adminEmpty');
  }
});

test('credentials that do suffice: Basic admin, and an admin token that asked for wharf:admin:*', async () => {
  for (const who of ['adminFull', 'adminBasic']) for (const c of all) await expectAllowed(c, who);
});

test('the challenge names the scope to fetch, and /token issues it only on request and only to an admin', async () => {
  const res = await hub.req('/api/v1/webhooks', { auth: tokens.adminPull });
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /scope="wharf:admin:\*",error="insufficient_scope"/);
  const scoped = async (auth: string, ...scopes: string[]) => {
    const q = new URLSearchParams({ service: 'wharf' });
    for (const s of scopes) q.append('scope', s);
    return ((await (await hub.req(`/token?${q}`, { auth })).json()) as { scope: string }).scope;
  };
  const admin = tokens.adminBasic!;
  assert.equal(await scoped(admin, `repository:${APP}:*`), `repository:${APP}:pull,push,delete,release,admin`, 'no registry-wide claim unless asked');
  assert.equal(await scoped(admin, 'wharf:admin:*'), 'wharf:admin:*');
  const ci = tokens.ci!;
  const claims = JSON.parse(Buffer.from(ci.split('.')[1]!, 'base64url').toString()) as { access: { type: string }[] };
  assert.ok(!claims.access.some((a) => a.type === 'wharf'), 'a robot without registry-wide grants is never issued wharf:admin:*');
  // A release to staging: the challenge asks for exactly that, which the CI robot can get.
  const rel = await call({ key: '', method: 'POST', path: `/api/v1/apps/${APP}/releases`, body: { environment: 'staging', ref: 'v1' }, needs: { actions: [] } }, tokens.adminPull!);
  assert.equal(rel.status, 401);
  assert.match(rel.challenge ?? '', /scope="repository:team\/app:release:staging"/);
});
