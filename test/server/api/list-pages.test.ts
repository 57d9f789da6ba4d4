// The lists paged since issue 18 (releases, deployments, tag history, webhook deliveries, GC runs, retention
// policies; approvals, environments, targets, secrets, webhook subscriptions, signers; users, groups, grants,
// audit, tokens), over a real in-process hub: each keeps its body (a JSON array naming the next page in a
// `Link: rel="next"` header; the admin lists' {items, next}); pages are keyset positions, so rows added between
// two pages neither repeat nor hide one; a cursor of another list, or one the server never wrote, is a 400 with
// a message; the filters (prefix, environment, kind, actor, time range …) narrow the pages.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import { startRegistry, type Registry } from '../v2-harness.js';
import { MemoryEngines } from '../../support/memory-host.js';
import { eventually } from '../../webhooks/receiver.js';
import { api, errorMessage, pushImage } from '../../delivery/delivery-harness.js';
import { nextLink } from '../../../src/cli/client.js';
import { ADMIN_PASSWORD, basic, startAuthHub, type AuthHub } from '../../auth/auth-harness.js';

const APP = 'shop/paged';
const APP_FILE = `app: ${APP}
rollout: { healthTimeout: 2s, monitor: 0s }
environments:
  staging:
    autoDeploy: true
    targets: [paged-1]
`;

interface Row {
  id: number | string;
}

describe('cursor pages of the array lists', () => {
  let r: Registry;
  const engines = new MemoryEngines();
  let version = 0;

  /** Pushes a new version and releases it to staging (which deploys it): one tag change, release and deployment each. */
  async function ship(): Promise<void> {
    const v = `1.0.${version++}`;
    await pushImage(r, APP, v);
    if (version % 2 === 0) {
      // Every other one by a named actor (as a signed-in user's would be; this hub's calls are anonymous): the
      // actor filters have rows to tell apart.
      const step = await r.wharf.releases.carryOut(APP, { kind: 'release', environment: 'staging', ref: v }, 'ci-bot');
      assert.ok('deployment' in step && step.deployment, 'staging deploys automatically');
      assert.equal((await step.deployment(() => {})).result.status, 'succeeded');
      return;
    }
    const res = await r.req(`/api/v1/apps/${APP}/releases`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ environment: 'staging', ref: v }) });
    const text = await res.text();
    assert.ok(res.status === 200 || res.status === 201, text);
    assert.doesNotMatch(text, /"error"/);
  }

  /** One page: its rows and the `next` cursor from its Link header (the path it names is checked too). */
  async function page<T>(path: string): Promise<{ rows: T[]; next: string | null }> {
    const res = await r.req(path);
    const text = await res.text();
    assert.equal(res.status, 200, `${path}: ${text}`);
    const rows = JSON.parse(text) as T[];
    assert.ok(Array.isArray(rows), `${path} answers an array`);
    const link = nextLink(res.headers.get('link'));
    if (link === null) return { rows, next: null };
    const to = new URL(link, 'http://x');
    assert.equal(to.pathname, new URL(path, 'http://x').pathname, 'the next page is of the same list');
    return { rows, next: to.searchParams.get('cursor') };
  }

  const withCursor = (path: string, limit: number, cursor: string | null) =>
    `${path}${path.includes('?') ? '&' : '?'}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;

  async function all<T extends Row>(path: string, limit: number): Promise<T[]> {
    const rows: T[] = [];
    let cursor: string | null = null;
    for (let n = 0; ; n++) {
      assert.ok(n < 100, 'the pages end');
      const p: { rows: T[]; next: string | null } = await page<T>(withCursor(path, limit, cursor));
      assert.ok(p.rows.length <= limit);
      rows.push(...p.rows);
      if (p.next === null) return rows;
      assert.equal(p.rows.length, limit, 'only the last page is short');
      cursor = p.next;
    }
  }

  const LISTS = {
    releases: `/api/v1/apps/${APP}/releases?environment=staging`,
    deployments: `/api/v1/apps/${APP}/deployments?environment=staging`,
    history: `/api/v1/repositories/${APP}/tags/history`,
    deliveries: '/api/v1/webhooks/deliveries',
    gcRuns: '/api/v1/gc/runs',
    policies: '/api/v1/retention/policies',
  };

  before(async () => {
    r = await startRegistry({ engines, env: { WHARF_WEBHOOK_ALLOW_TARGETS: '127.0.0.1' } });
    await r.wharf.targets.add({ name: 'paged-1', endpoint: 'unix:///paged-1', apps: ['shop/*'] }, 'admin');
    await api(r, 'POST', '/api/v1/apply', { file: APP_FILE }, 200);
    // Nothing listens on port 9: every delivery stays in the log, failing and retried.
    await r.wharf.webhooks.addSubscription({ url: 'http://127.0.0.1:9/hook', events: ['*'] });
    for (let i = 0; i < 7; i++) await ship();
    // Real runs (a dry run is not logged); within the grace period they delete nothing.
    for (let i = 0; i < 7; i++) await api(r, 'POST', '/api/v1/gc', {}, 200);
    for (let i = 0; i < 7; i++) await api(r, 'POST', '/api/v1/retention/policies', { repositories: `team-${i}/*`, keepLast: i + 1 }, 201);
    await eventually(async () => ((await api(r, 'GET', '/api/v1/webhooks/deliveries?limit=1000')).body.length >= 14 ? true : undefined), '14 deliveries enqueued');
  });
  after(() => r.close());

  it('pages every list to the same rows as one big page, each row once', async () => {
    for (const [name, path] of Object.entries(LISTS)) {
      const whole = (await page<Row>(withCursor(path, 1000, null))).rows;
      assert.ok(whole.length >= 7, `${name}: ${whole.length} rows`);
      for (const limit of [1, 2, 3]) {
        const paged = await all<Row>(path, limit);
        assert.deepEqual(paged.map((x) => x.id), whole.map((x) => x.id), `${name} by ${limit}`);
      }
    }
  });

  it('keeps its place while rows are added between two pages (keyset, not offset)', async () => {
    for (const [name, path] of Object.entries(LISTS)) {
      const whole = (await page<Row>(withCursor(path, 1000, null))).rows.map((x) => x.id);
      const first = await page<Row>(withCursor(path, 3, null));
      assert.ok(first.next, `${name} has a second page`);
      // Rows arrive: at the head of the newest-first lists, at the tail of the policies (oldest first).
      if (name === 'gcRuns') await api(r, 'POST', '/api/v1/gc', {}, 200);
      else if (name === 'policies') await api(r, 'POST', '/api/v1/retention/policies', { repositories: `late-${version}/*`, keepLast: 1 }, 201);
      else {
        const before = (await api(r, 'GET', `${LISTS.deliveries}?limit=1000`)).body.length as number;
        await ship();
        await ship();
        await eventually(async () => (((await api(r, 'GET', `${LISTS.deliveries}?limit=1000`)).body.length as number) > before ? true : undefined), 'new deliveries');
      }
      const rest: (number | string)[] = [];
      let cursor: string | null = first.next;
      while (cursor) {
        const p: { rows: Row[]; next: string | null } = await page<Row>(withCursor(path, 3, cursor));
        rest.push(...p.rows.map((x) => x.id));
        cursor = p.next;
      }
      const seen = [...first.rows.map((x) => x.id), ...rest];
      if (name === 'policies') {
        assert.deepEqual(seen.slice(0, whole.length), whole, name);
        assert.equal(seen.length, whole.length + 1, 'the policy added after the first page is on a later one');
      } else {
        assert.deepEqual(seen, whole, `${name}: the rows added at the head are not on later pages, and none is repeated or skipped`);
      }
    }
  });

  it('refuses a cursor of another list, and a forged one, with 400 and a message', async () => {
    const nexts = new Map<string, string>();
    for (const [name, path] of Object.entries(LISTS)) nexts.set(name, (await page<Row>(withCursor(path, 1, null))).next!);
    for (const [name, path] of Object.entries(LISTS)) {
      for (const [other, cursor] of nexts) {
        if (other === name) continue;
        const res = await api(r, 'GET', withCursor(path, 2, cursor));
        assert.equal(res.status, 400, `${name} with a cursor of ${other}: ${JSON.stringify(res.body)}`);
        assert.match(errorMessage(res.body), /invalid cursor: it pages .+, not /);
      }
      const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const own = JSON.parse(Buffer.from(nexts.get(name)!, 'base64url').toString('utf8')) as { l: string };
      for (const forged of ['nope', '%%%', b64(5), b64({ x: 1 }), b64({ l: own.l, p: 'x' }), b64({ l: own.l, p: { createdAt: 'x' } }), b64({ l: own.l }), 'x'.repeat(1100)]) {
        const res = await api(r, 'GET', withCursor(path, 2, forged));
        assert.equal(res.status, 400, `${name} with ${forged.slice(0, 40)}: ${JSON.stringify(res.body)}`);
        assert.match(errorMessage(res.body), /cursor/);
      }
    }
  });

  it('filters releases by digest: the releases an image page lists', async () => {
    const whole = (await page<{ id: number; digest: string }>(withCursor(LISTS.releases, 1000, null))).rows;
    const digest = whole[2]!.digest;
    const mine = await all<{ id: number; digest: string }>(`${LISTS.releases}&digest=${encodeURIComponent(digest)}`, 1);
    assert.deepEqual(mine.map((x) => x.id), whole.filter((x) => x.digest === digest).map((x) => x.id));
    assert.ok(mine.length >= 1);
    assert.equal((await api(r, 'GET', `${LISTS.releases}&digest=latest`)).status, 400);
    // By kind: every release of this file is a plain release; none is a rollback.
    assert.equal((await all<{ id: number; kind: string }>(`${LISTS.releases}&kind=release`, 2)).length, whole.length);
    assert.deepEqual(await all(`${LISTS.releases}&kind=rollback`, 2), []);
    assert.equal((await api(r, 'GET', `${LISTS.releases}&kind=redo`)).status, 400);
  });

  it('filters releases, deployments and tag history by actor and time range (epoch ms or ISO), page by page', async () => {
    const timeOf: Record<string, (x: Record<string, unknown>) => number> = {
      releases: (x) => Date.parse(String(x.createdAt)),
      deployments: (x) => Number(x.started_at),
      history: (x) => Number(x.at),
    };
    for (const [name, at] of Object.entries(timeOf)) {
      const path = LISTS[name as keyof typeof LISTS];
      const join = `${path.includes('?') ? '&' : '?'}`;
      const whole = (await page<Row & Record<string, unknown>>(withCursor(path, 1000, null))).rows;
      const ids = (rows: Row[]) => rows.map((x) => x.id);
      // Rows were made one after another over many milliseconds: a pivot in the middle splits them.
      const pivot = at(whole[Math.floor(whole.length / 2)]!);
      const since = whole.filter((x) => at(x) >= pivot);
      const until = whole.filter((x) => at(x) < pivot);
      assert.ok(since.length > 0 && until.length > 0, `${name}: the pivot splits ${whole.length} rows`);
      assert.deepEqual(ids(await all(`${path}${join}since=${pivot}`, 2)), ids(since), `${name} since (ms)`);
      assert.deepEqual(ids(await all(`${path}${join}since=${encodeURIComponent(new Date(pivot).toISOString())}`, 2)), ids(since), `${name} since (ISO)`);
      assert.deepEqual(ids(await all(`${path}${join}until=${encodeURIComponent(new Date(pivot).toISOString())}`, 2)), ids(until), `${name} until (ISO)`);
      const window = whole.filter((x) => at(x) >= at(whole[whole.length - 1]!) + 1 && at(x) < pivot);
      assert.deepEqual(ids(await all(`${path}${join}since=${at(whole[whole.length - 1]!) + 1}&until=${pivot}`, 1)), ids(window), `${name} since and until`);
      const mine = whole.filter((x) => x.actor === 'ci-bot');
      assert.ok(mine.length > 0 && mine.length < whole.length, `${name}: ${mine.length} of ${whole.length} rows by ci-bot`);
      assert.deepEqual(ids(await all(`${path}${join}actor=ci-bot`, 2)), ids(mine), `${name} by ci-bot`);
      assert.deepEqual(await all(`${path}${join}actor=nobody-did-this`, 2), [], `${name}: no row of another actor`);
      for (const bad of ['since=yesterday', 'until=-5', 'since=2026-13-01T00:00:00Z']) assert.equal((await api(r, 'GET', `${path}${join}${bad}`)).status, 400, `${name} ${bad}`);
    }
  });

  it('keeps the old answers: no limit is a first page, with the old bound of 1000', async () => {
    for (const [name, path] of Object.entries(LISTS)) {
      assert.equal((await api(r, 'GET', withCursor(path, 1000, null))).status, 200, name);
      const res = await api(r, 'GET', withCursor(path, 1001, null));
      assert.equal(res.status, 400, name);
      assert.match(errorMessage(res.body), /limit/);
    }
    const releases = await r.req(LISTS.releases);
    assert.equal(releases.headers.get('link'), null, 'one page only: no next link');
    assert.ok(((await releases.json()) as unknown[]).length > 7);
  });
});

describe('cursor pages of the configuration lists', () => {
  let r: Registry;
  const engines = new MemoryEngines();
  const CONFIG_APP = 'shop/config';

  async function page(path: string): Promise<{ rows: Record<string, unknown>[]; next: string | null }> {
    const res = await r.req(path);
    const text = await res.text();
    assert.equal(res.status, 200, `${path}: ${text}`);
    const rows = JSON.parse(text) as Record<string, unknown>[];
    assert.ok(Array.isArray(rows), `${path} answers an array`);
    const link = nextLink(res.headers.get('link'));
    if (link === null) return { rows, next: null };
    const to = new URL(link, 'http://x');
    assert.equal(to.pathname, new URL(path, 'http://x').pathname, 'the next page is of the same list');
    for (const [k, v] of new URL(path, 'http://x').searchParams) if (k !== 'cursor') assert.equal(to.searchParams.get(k), v, `the next page keeps ${k}`);
    return { rows, next: to.searchParams.get('cursor') };
  }
  const withCursor = (path: string, limit: number, cursor: string | null) =>
    `${path}${path.includes('?') ? '&' : '?'}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
  async function all(path: string, limit: number, cursor: string | null = null): Promise<Record<string, unknown>[]> {
    const rows: Record<string, unknown>[] = [];
    for (let n = 0; ; n++) {
      assert.ok(n < 100, 'the pages end');
      const p = await page(withCursor(path, limit, cursor));
      rows.push(...p.rows);
      if (p.next === null) return rows;
      assert.equal(p.rows.length, limit, 'only the last page is short');
      cursor = p.next;
    }
  }

  const publicKey = () => generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
  let added = 0;
  /**
   * Each list: its path, a row's identity, and how to add a row whose key sorts first (`head`) and one that sorts
   * last (`tail`) — for the newest-first approvals a new row is always at the head.
   */
  const LISTS: Record<string, { path: string; id: (x: Record<string, unknown>) => unknown; add: (where: 'head' | 'tail') => Promise<void>; newestFirst?: true }> = {
    approvals: {
      path: `/api/v1/apps/${CONFIG_APP}/approvals?all=true`,
      id: (x) => x.id,
      newestFirst: true,
      add: async () => void (await api(r, 'POST', `/api/v1/apps/${CONFIG_APP}/releases`, { environment: 'gated', ref: 'v1' }, 202)),
    },
    environments: {
      path: `/api/v1/apps/${CONFIG_APP}/environments`,
      id: (x) => x.name,
      // made later, so after every other whatever its name
      add: async (where) => void (await api(r, 'POST', `/api/v1/apps/${CONFIG_APP}/environments`, { name: `${where === 'head' ? 'a' : 'z'}-env-${added++}` }, 201)),
    },
    targets: {
      path: '/api/v1/targets',
      id: (x) => x.name,
      add: async (where) => void (await r.wharf.targets.add({ name: `${where === 'head' ? 'a' : 'z'}-host-${added++}`, endpoint: 'unix:///late', apps: ['shop/*'] }, 'admin')),
    },
    secrets: {
      path: `/api/v1/apps/${CONFIG_APP}/secrets`,
      id: (x) => `${String(x.environment)}/${String(x.name)}`,
      add: async (where) => {
        const res = await r.req(`/api/v1/apps/${CONFIG_APP}/secrets/${where === 'head' ? 'aaa' : 'zzz'}/S${added++}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: 'x' }) });
        assert.equal(res.status, 204, await res.text());
      },
    },
    webhooks: {
      path: '/api/v1/webhooks',
      id: (x) => x.id,
      add: async () => void (await r.wharf.webhooks.addSubscription({ url: `http://127.0.0.1:9/late-${added++}`, events: ['*'] })),
    },
    signers: {
      path: '/api/v1/signers',
      id: (x) => x.name,
      add: async (where) => void (await r.wharf.signers.add({ name: `${where === 'head' ? 'a' : 'z'}-bot-${added++}`, publicKey: publicKey(), apps: ['shop/*'], kinds: ['sbom'], environments: ['*'] }, 'admin')),
    },
  };

  before(async () => {
    r = await startRegistry({ engines, env: { WHARF_WEBHOOK_ALLOW_TARGETS: '127.0.0.1' } });
    await pushImage(r, CONFIG_APP, 'v1');
    await api(r, 'POST', `/api/v1/apps/${CONFIG_APP}/environments`, { name: 'gated', requiresApproval: true }, 201);
    for (let i = 0; i < 7; i++) {
      await api(r, 'POST', `/api/v1/apps/${CONFIG_APP}/releases`, { environment: 'gated', ref: 'v1', note: `request ${i}` }, 202);
      await api(r, 'POST', `/api/v1/apps/${CONFIG_APP}/environments`, { name: `env-${i}` }, 201);
      await r.wharf.targets.add({ name: `host-${i}`, endpoint: `unix:///host-${i}`, apps: ['shop/*'] }, 'admin');
      for (const env of ['prod', 'stage']) {
        const res = await r.req(`/api/v1/apps/${CONFIG_APP}/secrets/${env}/KEY_${i}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: `v${i}` }) });
        assert.equal(res.status, 204, await res.text());
      }
      await r.wharf.webhooks.addSubscription({ url: `http://127.0.0.1:9/hook-${i}`, events: ['*'], repository: i % 2 ? 'shop/*' : null });
      await r.wharf.signers.add({ name: `bot-${i}`, publicKey: publicKey(), apps: ['shop/*'], kinds: ['sbom'], environments: ['*'] }, 'admin');
    }
  });
  after(() => r.close());

  it('pages every list to the same rows as one big page, each row once, in a stable order', async () => {
    for (const [name, list] of Object.entries(LISTS)) {
      const whole = (await page(withCursor(list.path, 1000, null))).rows.map(list.id);
      assert.ok(whole.length >= 7, `${name}: ${whole.length} rows`);
      assert.equal(new Set(whole).size, whole.length, `${name}: each row once`);
      for (const limit of [1, 2, 3]) assert.deepEqual((await all(list.path, limit)).map(list.id), whole, `${name} by ${limit}`);
    }
  });

  it('keeps its place while rows are added on both sides of the cursor (keyset, not offset)', async () => {
    for (const [name, list] of Object.entries(LISTS)) {
      const whole = (await page(withCursor(list.path, 1000, null))).rows.map(list.id);
      const first = await page(withCursor(list.path, 3, null));
      assert.ok(first.next, `${name} has a second page`);
      await list.add('head');
      await list.add('tail');
      const seen = [...first.rows.map(list.id), ...(await all(list.path, 3, first.next)).map(list.id)];
      if (list.newestFirst) assert.deepEqual(seen, whole, `${name}: the requests made after the first page are not on later ones`);
      else {
        assert.deepEqual(seen.slice(0, whole.length), whole, `${name}: no row repeated or skipped`);
        // Environments and webhooks are ordered by when they were made: both new rows come last.
        assert.ok(seen.length === whole.length + 1 || (['environments', 'webhooks'].includes(name) && seen.length === whole.length + 2), `${name}: ${seen.slice(whole.length).join(', ')}`);
      }
    }
  });

  it('refuses a cursor of another list, and a forged one, with 400 and a message', async () => {
    const nexts = new Map<string, string>();
    for (const [name, list] of Object.entries(LISTS)) nexts.set(name, (await page(withCursor(list.path, 1, null))).next!);
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    for (const [name, list] of Object.entries(LISTS)) {
      for (const [other, cursor] of nexts) {
        if (other === name) continue;
        const res = await api(r, 'GET', withCursor(list.path, 2, cursor));
        assert.equal(res.status, 400, `${name} with a cursor of ${other}: ${JSON.stringify(res.body)}`);
        assert.match(errorMessage(res.body), /invalid cursor: it pages .+, not /);
      }
      const own = JSON.parse(Buffer.from(nexts.get(name)!, 'base64url').toString('utf8')) as { l: string; p: unknown };
      const wrongType = typeof own.p === 'number' ? 'x' : 5;
      for (const forged of ['nope', '%%%', b64(5), b64({ x: 1 }), b64({ l: own.l, p: wrongType }), b64({ l: own.l, p: { id: 1 } }), b64({ l: own.l }), 'x'.repeat(1100)]) {
        const res = await api(r, 'GET', withCursor(list.path, 2, forged));
        assert.equal(res.status, 400, `${name} with ${forged.slice(0, 40)}: ${JSON.stringify(res.body)}`);
        assert.match(errorMessage(res.body), /cursor/);
      }
      for (const limit of [0, 1001, 'abc']) assert.equal((await api(r, 'GET', `${list.path}${list.path.includes('?') ? '&' : '?'}limit=${limit}`)).status, 400, `${name} limit=${limit}`);
    }
  });

  it('filters: approvals by environment and status, targets, secrets and signers by name prefix, secrets by environment, webhooks by repository', async () => {
    const names = async (path: string, key = 'name') => (await all(path, 2)).map((x) => String(x[key]));
    assert.ok((await all(`/api/v1/apps/${CONFIG_APP}/approvals`, 2)).every((x) => x.status === 'pending'));
    assert.deepEqual(await all(`/api/v1/apps/${CONFIG_APP}/approvals?environment=env-1&all=true`, 2), []);
    assert.ok((await all(`/api/v1/apps/${CONFIG_APP}/approvals?environment=gated`, 2)).length >= 7);
    assert.equal((await api(r, 'GET', `/api/v1/apps/${CONFIG_APP}/approvals?all=yes`)).status, 400);
    assert.deepEqual(await names('/api/v1/targets?prefix=host-'), ['host-0', 'host-1', 'host-2', 'host-3', 'host-4', 'host-5', 'host-6']);
    assert.deepEqual(await names('/api/v1/signers?prefix=bot-'), ['bot-0', 'bot-1', 'bot-2', 'bot-3', 'bot-4', 'bot-5', 'bot-6']);
    const stage = await all(`/api/v1/apps/${CONFIG_APP}/secrets?environment=stage`, 2);
    assert.deepEqual(stage.map((x) => `${String(x.environment)}/${String(x.name)}`), [0, 1, 2, 3, 4, 5, 6].map((i) => `stage/KEY_${i}`));
    assert.ok(stage.every((x) => !('value' in x) && !('sealed' in x)), 'no secret value is listed');
    assert.deepEqual(await names(`/api/v1/apps/${CONFIG_APP}/secrets?prefix=KEY_3`), ['KEY_3', 'KEY_3']);
    const shop = await all('/api/v1/webhooks?repository=shop/*', 2);
    assert.equal(shop.length, 3);
    assert.ok(shop.every((x) => x.repository === 'shop/*'));
  });

  it('documents cursor, limit and the Link header of each in the OpenAPI document', async () => {
    const doc = (await api(r, 'GET', '/api/v1/openapi.json', undefined, 200)).body as { paths: Record<string, { get?: { parameters?: { name: string; in: string }[]; responses: Record<string, { headers?: unknown }> } }> };
    for (const p of ['/api/v1/apps/{app}/approvals', '/api/v1/apps/{app}/environments', '/api/v1/targets', '/api/v1/apps/{app}/secrets', '/api/v1/webhooks', '/api/v1/signers']) {
      const op = doc.paths[p]!.get!;
      const q = (op.parameters ?? []).filter((x) => x.in === 'query').map((x) => x.name);
      assert.ok(q.includes('cursor') && q.includes('limit'), `${p}: ${q.join(' ')}`);
      assert.ok(op.responses['200']!.headers, `${p} documents its Link header`);
    }
  });
});

describe('cursor pages of the token signing keys', () => {
  it('pages the keys oldest first, each once, and refuses a cursor of another list', async () => {
    const hub = await startAuthHub();
    try {
      const auth = basic('admin', ADMIN_PASSWORD);
      const get = async (path: string) => {
        const res = await hub.req(path, { auth });
        const text = await res.text();
        return { status: res.status, body: JSON.parse(text) as { kid: string; createdAt: number }[], next: nextLink(res.headers.get('link')) };
      };
      for (let i = 0; i < 4; i++) assert.equal((await hub.req('/api/v1/keys/rotate', { method: 'POST', auth, headers: { 'content-type': 'application/json' }, body: '{}' })).status, 201);
      const whole = await get('/api/v1/keys?limit=1000');
      assert.equal(whole.status, 200);
      assert.ok(whole.body.length >= 5, `${whole.body.length} keys`);
      const paged: string[] = [];
      for (let next: string | null = '/api/v1/keys?limit=2', n = 0; next !== null; n++) {
        assert.ok(n < 20);
        const p = await get(next);
        assert.equal(p.status, 200);
        paged.push(...p.body.map((k) => k.kid));
        next = p.next;
      }
      assert.deepEqual(paged, whole.body.map((k) => k.kid));
      assert.deepEqual([...whole.body].sort((a, b) => a.createdAt - b.createdAt).map((k) => k.kid), paged, 'oldest first');
      const tokensCursor = Buffer.from(JSON.stringify({ l: 'tokens', p: 'x' })).toString('base64url');
      assert.equal((await hub.req(`/api/v1/keys?cursor=${tokensCursor}`, { auth })).status, 400);
    } finally {
      await hub.close();
    }
  });
});

describe('cursor pages of the admin lists: users, groups, grants, audit, tokens', () => {
  let hub: AuthHub;
  const auth = basic('admin', ADMIN_PASSWORD);
  type Page = { items: Record<string, unknown>[]; next: string | null };

  async function page(path: string): Promise<Page & { status: number }> {
    const res = await hub.req(path, { auth });
    const text = await res.text();
    return { status: res.status, ...(JSON.parse(text) as Page) };
  }
  const withCursor = (path: string, limit: number, cursor: string | null) =>
    `${path}${path.includes('?') ? '&' : '?'}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
  async function all(path: string, limit: number): Promise<Record<string, unknown>[]> {
    const rows: Record<string, unknown>[] = [];
    let cursor: string | null = null;
    for (let n = 0; ; n++) {
      assert.ok(n < 200, 'the pages end');
      const p = await page(withCursor(path, limit, cursor));
      assert.equal(p.status, 200, `${path}: ${JSON.stringify(p)}`);
      assert.ok(p.items.length <= limit);
      rows.push(...p.items);
      if (p.next === null) return rows;
      assert.equal(p.items.length, limit, 'only the last page is short');
      cursor = p.next;
    }
  }

  /** Each list (with a filter where it has one), and a row's identity in it. */
  const LISTS: Record<string, { path: string; id: (x: Record<string, unknown>) => unknown }> = {
    users: { path: '/api/v1/users?prefix=u-', id: (x) => x.name },
    groups: { path: '/api/v1/groups', id: (x) => x.group },
    grants: { path: '/api/v1/grants?subject=@g-1', id: (x) => `${String(x.subject)} ${String(x.pattern)}` },
    audit: { path: '/api/v1/audit', id: (x) => x.id },
    tokens: { path: '/api/v1/tokens', id: (x) => x.id },
  };

  before(async () => {
    hub = await startAuthHub();
    for (let i = 0; i < 7; i++) {
      await hub.accounts.addUser(`u-${i}`, 'member', `password-${i}`);
      await hub.accounts.addToGroup(`g-${i}`, [`u-${i}`]);
      await hub.accounts.grant('@g-1', 'pull', `team-${i}/*`);
      // The same name again and again: revoked tokens keep it.
      await hub.accounts.createToken('robot', ['repository:team/*:pull']);
      if (i < 6) await hub.accounts.revokeToken('robot');
    }
    // Audit rows of another actor (the admin over the API) beside the tester's.
    for (let i = 0; i < 3; i++) {
      const res = await hub.req('/api/v1/grants', { method: 'POST', auth, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ subject: `u-${i}`, actions: 'pull', pattern: `mine-${i}/*` }) });
      assert.equal(res.status, 201, await res.text());
    }
  });
  after(() => hub.close());

  it('pages every list to the same rows as one big page, each row once, and the filters hold on every page', async () => {
    for (const [name, list] of Object.entries(LISTS)) {
      const whole = await page(withCursor(list.path, 500, null));
      assert.equal(whole.status, 200);
      assert.equal(whole.next, null, `${name}: one page holds all`);
      const ids = whole.items.map(list.id);
      assert.ok(ids.length >= 7, `${name}: ${ids.length} rows`);
      assert.equal(new Set(ids).size, ids.length, `${name}: each row once`);
      for (const limit of [1, 2, 3]) assert.deepEqual((await all(list.path, limit)).map(list.id), ids, `${name} by ${limit}`);
    }
    assert.ok((await all(LISTS.users!.path, 2)).every((u) => String(u.name).startsWith('u-')), 'users by prefix');
    assert.deepEqual((await all('/api/v1/users?prefix=u-3', 1)).map((u) => u.name), ['u-3']);
    const grants = await all(LISTS.grants!.path, 2);
    assert.ok(grants.every((g) => g.subject === '@g-1'), 'grants by subject');
    assert.equal(grants.length, 7);
    assert.equal((await all('/api/v1/tokens', 1)).filter((t) => t.name === 'robot').length, 7, 'every token named robot, revoked or not');
  });

  it('refuses a cursor of another list, and a forged one, with 400 and a message', async () => {
    const nexts = new Map<string, string>();
    for (const [name, list] of Object.entries(LISTS)) nexts.set(name, (await page(withCursor(list.path, 1, null))).next!);
    for (const [name, list] of Object.entries(LISTS)) {
      for (const [other, cursor] of nexts) {
        if (other === name) continue;
        const res = await hub.req(withCursor(list.path, 2, cursor), { auth });
        const text = await res.text();
        assert.equal(res.status, 400, `${name} with a cursor of ${other}: ${text}`);
        assert.match(text, /invalid cursor: it pages .+, not /);
      }
      for (const forged of ['nope', Buffer.from(JSON.stringify({ x: 1 })).toString('base64url')]) {
        const res = await hub.req(withCursor(list.path, 2, forged), { auth });
        assert.equal(res.status, 400, `${name} with ${forged}`);
        assert.match(await res.text(), /cursor/);
      }
    }
  });

  it('filters the audit log by actor and by time range (epoch ms and ISO), page by page', async () => {
    const whole = (await page('/api/v1/audit?limit=500')).items as { id: number; at: number; actor: string }[];
    const ids = (rows: Record<string, unknown>[]) => rows.map((x) => x.id);
    const actors = new Set(whole.map((x) => x.actor));
    assert.ok(actors.has('admin') && actors.has('tester'), [...actors].join(' '));
    for (const actor of ['admin', 'tester']) assert.deepEqual(ids(await all(`/api/v1/audit?actor=${actor}`, 2)), ids(whole.filter((x) => x.actor === actor)), actor);
    assert.deepEqual(await all('/api/v1/audit?actor=nobody', 2), []);
    // The admin's rows came last, after the tester's: their first one splits the log in time.
    const pivot = Math.min(...whole.filter((x) => x.actor === 'admin').map((x) => x.at));
    const since = whole.filter((x) => x.at >= pivot);
    const until = whole.filter((x) => x.at < pivot);
    assert.ok(since.length > 0 && until.length > 0);
    assert.deepEqual(ids(await all(`/api/v1/audit?since=${pivot}`, 2)), ids(since), 'since, epoch ms');
    assert.deepEqual(ids(await all(`/api/v1/audit?since=${encodeURIComponent(new Date(pivot).toISOString())}`, 2)), ids(since), 'since, ISO');
    assert.deepEqual(ids(await all(`/api/v1/audit?until=${pivot}`, 3)), ids(until), 'until, epoch ms');
    assert.deepEqual(ids(await all(`/api/v1/audit?until=${encodeURIComponent(new Date(pivot).toISOString().replace('Z', '+00:00'))}`, 3)), ids(until), 'until, ISO with an offset');
    const first = whole[whole.length - 1]!.at;
    assert.deepEqual(ids(await all(`/api/v1/audit?since=${first + 1}&until=${pivot}&actor=tester`, 1)), ids(whole.filter((x) => x.at > first && x.at < pivot && x.actor === 'tester')), 'both ends and the actor');
    for (const bad of ['since=yesterday', 'until=-1', 'since=2026-02-30T25:00:00Z']) assert.equal((await hub.req(`/api/v1/audit?${bad}`, { auth })).status, 400, bad);
  });
});
