// The browse API against a real in-process hub: repositories and tags paged by cursor, filtered, and only what
// the caller may pull; tag summaries; what the caller may do; bad cursors and parameters refused with 400.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_PASSWORD, basic, member, pushImage, startAuthHub, type AuthHub } from '../../auth/auth-harness.js';

interface Page<T> {
  items: T[];
  next: string | null;
}

describe('browse API', () => {
  let hub: AuthHub;
  let admin: string;
  let reader: string;
  before(async () => {
    // Grants made in-process apply to the next request (no policy cache to wait for).
    hub = await startAuthHub('auth:\n  policyRefresh: 0\n');
    admin = basic('admin', ADMIN_PASSWORD);
    for (let i = 0; i < 12; i++) await pushImage(hub, admin, `team-a/app-${String(i).padStart(2, '0')}`, 'v1');
    for (let i = 0; i < 9; i++) await pushImage(hub, admin, `team-b/app-${i}`, 'v1');
    for (let t = 0; t < 23; t++) await pushImage(hub, admin, 'team-a/big', `t${String(t).padStart(2, '0')}`, `big-${t}`);
    reader = await member(hub, 'reader', 'pull', 'team-b/*');
  });
  after(() => hub.close());

  async function all<T>(path: string, auth: string, limit: number): Promise<T[]> {
    const items: T[] = [];
    let next: string | null = null;
    let pages = 0;
    do {
      const res = await hub.req(`${path}${path.includes('?') ? '&' : '?'}limit=${limit}${next ? `&cursor=${next}` : ''}`, { auth });
      assert.equal(res.status, 200, await res.clone().text());
      const page = (await res.json()) as Page<T>;
      assert.ok(page.items.length <= limit);
      items.push(...page.items);
      next = page.next;
      assert.ok(++pages < 100);
    } while (next);
    return items;
  }

  it('pages through every repository once, in name order, with tag count, size and last push', async () => {
    const repos = await all<{ name: string; tagCount: number; size: number; lastPush: number }>('/api/v1/repositories', admin, 5);
    assert.equal(repos.length, 22);
    assert.deepEqual(repos.map((r) => r.name), [...repos.map((r) => r.name)].sort());
    const big = repos.find((r) => r.name === 'team-a/big')!;
    assert.equal(big.tagCount, 23);
    assert.ok(big.size > 0 && big.lastPush > Date.now() - 600_000);
    const prefixed = await all<{ name: string }>('/api/v1/repositories?prefix=team-b/', admin, 4);
    assert.deepEqual(prefixed.map((r) => r.name), Array.from({ length: 9 }, (_, i) => `team-b/app-${i}`));
  });

  it('shows a member only the repositories they may pull, across pages', async () => {
    const repos = await all<{ name: string }>('/api/v1/repositories', reader, 2);
    assert.deepEqual(repos.map((r) => r.name), Array.from({ length: 9 }, (_, i) => `team-b/app-${i}`));
    assert.equal((await hub.req('/api/v1/repositories/team-a/big/tags', { auth: reader })).status, 403);
    assert.equal((await hub.req('/api/v1/repositories')).status, 401);
  });

  it('pages tags by name and by newest push, with digest, size, platform and pusher', async () => {
    const byName = await all<{ name: string; digest: string; size: number; platforms: string[]; pushedBy: string; kind: string }>('/api/v1/repositories/team-a/big/tags', admin, 4);
    assert.deepEqual(byName.map((t) => t.name), Array.from({ length: 23 }, (_, t) => `t${String(t).padStart(2, '0')}`));
    assert.match(byName[0]!.digest, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(byName[0]!.platforms, ['linux/amd64']);
    assert.equal(byName[0]!.pushedBy, 'admin');
    assert.equal(byName[0]!.kind, 'image');
    assert.ok(byName[0]!.size > 0);
    const byPush = await all<{ name: string; pushedAt: number }>('/api/v1/repositories/team-a/big/tags?sort=pushed', admin, 6);
    assert.equal(byPush.length, 23);
    assert.equal(new Set(byPush.map((t) => t.name)).size, 23);
    for (let i = 1; i < byPush.length; i++) assert.ok(byPush[i - 1]!.pushedAt >= byPush[i]!.pushedAt);
    const prefixed = await all<{ name: string }>('/api/v1/repositories/team-a/big/tags?prefix=t1', admin, 50);
    assert.equal(prefixed.length, 10);
  });

  it('refuses a forged cursor and bad parameters with 400 and a message; an unknown repository is 404', async () => {
    for (const q of ['cursor=nope', `cursor=${Buffer.from('{"x":1}').toString('base64url')}`, 'limit=0', 'limit=100000', 'limit=abc']) {
      const res = await hub.req(`/api/v1/repositories?${q}`, { auth: admin });
      assert.equal(res.status, 400, q);
      assert.ok(((await res.json()) as { errors: { message: string }[] }).errors[0]!.message.length > 0);
    }
    assert.equal((await hub.req('/api/v1/repositories/team-a/big/tags?sort=size', { auth: admin })).status, 400);
    assert.equal((await hub.req('/api/v1/repositories/nobody/here/tags', { auth: admin })).status, 404);
  });

  it('tells the caller what they may do, per repository and environment', async () => {
    const mine = async (auth: string, q: string) => ((await (await hub.req(`/api/v1/access?${q}`, { auth })).json()) as { actions: string[] }).actions;
    assert.deepEqual(await mine(reader, 'repository=team-b/app-1'), ['pull']);
    assert.deepEqual(await mine(reader, 'repository=team-a/big'), []);
    assert.deepEqual(await mine(admin, 'repository=team-a/big'), ['pull', 'push', 'delete', 'release', 'admin']);
    await hub.accounts.grant('reader', 'release:staging', 'team-b/*');
    assert.ok((await mine(reader, 'repository=team-b/app-1&environment=staging')).includes('release'));
    assert.ok(!(await mine(reader, 'repository=team-b/app-1&environment=production')).includes('release'));
  });
});
