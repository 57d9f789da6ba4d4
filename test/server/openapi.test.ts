// The OpenAPI document against the router: every route is documented, and every documented route answers.
import assert from 'node:assert/strict';
import { z } from 'zod';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PASSWORD, basic, startAuthHub, type AuthHub } from '../auth/auth-harness.js';
import { pathOf } from '../../src/server/openapi.js';
import { hubRoutes } from '../../src/server/routes.js';
import { openRequestAccess as openAccess } from '../../src/server/access.js';

const SAMPLE: Record<string, string> = { app: 'team/app', repo: 'team/app', tag: 'latest', ref: 'latest', env: 'staging', id: '1', user: 'nobody', group: 'nogroup' };

describe('OpenAPI document', () => {
  let hub: AuthHub;
  let doc: { openapi: string; paths: Record<string, Record<string, { requestBody?: unknown; parameters?: { name: string; in: string }[] }>> };
  before(async () => {
    hub = await startAuthHub();
    const res = await hub.req('/api/v1/openapi.json');
    assert.equal(res.status, 200);
    doc = (await res.json()) as typeof doc;
  });
  after(() => hub.close());

  it('is OpenAPI 3.1 and documents every route of the hub and of access control, and nothing else, with the request schema where a body is validated', async () => {
    assert.equal(doc.openapi, '3.1.0');
    const routes = [...hubRoutes(hub.wharf, openAccess), ...hub.authRoutes];
    assert.ok(routes.length > 20);
    // The access-control routes are served beside hubRoutes: each group is in the set checked here.
    for (const p of ['/api/v1/session', '/api/v1/users', '/api/v1/groups', '/api/v1/grants', '/api/v1/audit', '/api/v1/tokens', '/api/v1/keys']) {
      assert.ok(hub.authRoutes.some((r) => pathOf(r.pattern).startsWith(p)), `${p} is among the auth routes`);
    }
    const served = new Set(routes.map((r) => `${r.method} ${pathOf(r.pattern)}`));
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    // The document's own route is added where it is served; every other operation it names is a route.
    assert.deepEqual(documented.filter((op) => op !== 'GET /api/v1/openapi.json').sort(), [...served].sort());
    for (const r of routes) {
      const op = doc.paths[pathOf(r.pattern)]?.[r.method.toLowerCase()];
      assert.ok(op, `${r.method} ${pathOf(r.pattern)} is not in the document`);
      if (r.request) assert.ok(op.requestBody, `${r.method} ${pathOf(r.pattern)} has no requestBody`);
      // A query read outside a schema is a hole in the document: a handler that looks at the query string
      // validates it with the schema it declares (the handler's own text, as compiled, tells).
      if (/searchParams|parseQuery\(|\br\.url\b/.test(r.handle.toString())) {
        assert.ok(r.query, `${r.method} ${pathOf(r.pattern)} reads its query without a declared schema`);
        assert.doesNotMatch(r.handle.toString(), /searchParams/, `${r.method} ${pathOf(r.pattern)} reads the query string around its schema`);
      }
      if (r.query) {
        const names = Object.keys((z.toJSONSchema(r.query, { io: 'input', unrepresentable: 'any' }) as { properties?: object }).properties ?? {});
        const inDoc = (op.parameters ?? []).filter((x) => x.in === 'query').map((x) => x.name);
        assert.deepEqual(inDoc.sort(), names.sort(), `${r.method} ${pathOf(r.pattern)}: the query parameters documented are the schema's`);
      }
      // Every route that takes a body names the schema it validates it with (redeliver takes none; a target is
      // validated inside the target registry, whose schema the route does not see).
      const exempt = pathOf(r.pattern).endsWith('/redeliver') || (r.method === 'POST' && pathOf(r.pattern) === '/api/v1/targets');
      if (r.method !== 'GET' && r.method !== 'DELETE' && !exempt) assert.ok(r.request, `${r.method} ${pathOf(r.pattern)} declares no request schema`);
    }
    for (const p of ['/api/v1/session', '/api/v1/users', '/api/v1/grants', '/api/v1/audit', '/api/v1/openapi.json', '/api/v1/repositories']) assert.ok(doc.paths[p], p);
    const tags = doc.paths['/api/v1/repositories/{repo}/tags']!.get!;
    assert.deepEqual(tags.parameters!.map((p) => `${p.in}:${p.name}`).sort(), ['path:repo', 'query:cursor', 'query:limit', 'query:prefix', 'query:sort']);
    // The lists that stayed JSON arrays when they were paged: cursor and limit, and the Link header of the next page.
    for (const p of ['/api/v1/apps/{app}/releases', '/api/v1/apps/{app}/deployments', '/api/v1/repositories/{repo}/tags/history', '/api/v1/webhooks/deliveries', '/api/v1/gc/runs', '/api/v1/retention/policies', '/api/v1/apps/{app}/approvals', '/api/v1/apps/{app}/environments', '/api/v1/targets', '/api/v1/apps/{app}/secrets', '/api/v1/webhooks', '/api/v1/signers', '/api/v1/keys']) {
      const op = doc.paths[p]!.get! as { parameters?: { name: string; in: string }[]; responses: Record<string, { headers?: Record<string, unknown> }> };
      const names = op.parameters!.map((x) => `${x.in}:${x.name}`);
      assert.ok(names.includes('query:cursor') && names.includes('query:limit'), `${p}: ${names.join(' ')}`);
      assert.ok(op.responses['200']!.headers?.Link, `${p} documents its Link header`);
    }
    assert.deepEqual((doc.paths['/api/v1/tokens']!.get!.parameters ?? []).map((x) => x.name).sort(), ['cursor', 'limit']);
    const query = (p: string) => (doc.paths[p]!.get!.parameters ?? []).filter((x) => x.in === 'query').map((x) => x.name).sort();
    // The environment an app's status or an image's attestations are read for, and the who-and-when filters of the histories.
    assert.deepEqual(query('/api/v1/apps/{app}/status'), ['environment']);
    assert.deepEqual(query('/api/v1/apps/{app}/attestations/{ref}'), ['environment']);
    for (const p of ['/api/v1/apps/{app}/releases', '/api/v1/apps/{app}/deployments', '/api/v1/repositories/{repo}/tags/history', '/api/v1/audit']) {
      for (const f of ['actor', 'since', 'until']) assert.ok(query(p).includes(f), `${p} documents ${f}: ${query(p).join(' ')}`);
    }
  });

  it('every documented path and method is served (no "no route" or "method not allowed")', async () => {
    let checked = 0;
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) {
        if (path === '/api/v1/session' && method === 'delete') continue; // would end nothing, but is a change
        const url = path.replace(/\{(\w+)\}/g, (_, k: string) => SAMPLE[k] ?? 'x');
        const res = await hub.req(url, { method: method.toUpperCase(), auth: basic('admin', ADMIN_PASSWORD), headers: { 'content-type': 'application/json' }, body: method === 'get' ? undefined : '{}' });
        const text = await res.text();
        assert.doesNotMatch(text, /no route for|not allowed on/, `${method.toUpperCase()} ${url}: ${res.status} ${text}`);
        assert.ok(res.status < 500, `${method.toUpperCase()} ${url}: ${res.status} ${text}`);
        checked++;
      }
    }
    assert.ok(checked > 30, `only ${checked} operations`);
    // The router does answer "no route" for an undocumented path: the check above can fail.
    const res = await hub.req('/api/v1/nowhere', { auth: basic('admin', ADMIN_PASSWORD) });
    assert.match(await res.text(), /no route for/);
  });
});
