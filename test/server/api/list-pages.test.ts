// The lists paged since issue 18 (releases, deployments, tag history, webhook deliveries, GC runs, retention
// policies), over a real in-process hub: each keeps its JSON array body and names the next page in a `Link:
// rel="next"` header; pages are keyset positions, so rows added between two pages neither repeat nor hide
// one; a cursor of another list, or one the server never wrote, is a 400 with a message.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startRegistry, type Registry } from '../v2-harness.js';
import { MemoryEngines } from '../../support/memory-host.js';
import { eventually } from '../../webhooks/receiver.js';
import { api, errorMessage, pushImage } from '../../delivery/delivery-harness.js';
import { nextLink } from '../../../src/cli/client.js';

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
