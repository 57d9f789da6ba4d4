// The web UI's delivery states in a real browser (Debian's chromium, driven by playwright-core) against a real
// Wharf and an extra dockerd as the deploy target: a fresh hub's repositories page tells what to run; a release whose health check fails ends, live in the
// deployment dialog, in the automatic rollback with its reason; the deployments page shows per target the intended
// against the actual digest; a container removed by hand shows as drift; the repositories page searches and pages
// ("Load more"); a repository's tags filter and sort; a confirmation whose targets have not come yet cannot be
// confirmed; in an environment that requires approval a release waits, its requester cannot approve it, a user
// without the explicit grant is refused (in the page and by the server), a second person approves it in the
// browser and the release goes through, and a request denied in the browser never does; an environment whose
// newest deployment needs an operator says so on its card.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import { act, confirmDialog, forge, withBrowserHub } from '../support/browser.js';
import { HEALTH_FAILURE, pushTestReleases } from '../support/deploy-images.js';
import { pushImage } from '../support/registry-client.js';
import { onDatabase } from '../support/database.js';

/** Repositories seeded besides `web`: more than the page of 50 the repositories page asks for. */
const SEEDED = 55;

/** Waits until the cells `selector` show exactly `expected`, in order; fails with what they showed. */
async function cellsAre(page: Page, selector: string, expected: string[]): Promise<void> {
  await page
    .waitForFunction(({ selector, expected }) => JSON.stringify([...document.querySelectorAll(selector)].map((e) => (e as HTMLElement).innerText.trim())) === JSON.stringify(expected), { selector, expected }, { timeout: 20_000 })
    .catch(async (e: unknown) => {
      const shown = await page.locator(selector).allInnerTexts();
      throw new Error(`${String(e)}\n${selector} shows ${JSON.stringify(shown)}, expected ${JSON.stringify(expected)}`);
    });
}

test('the web UI: automatic rollback shown live, intended vs actual digest, drift, repository search and pages, tag filter and sort, a confirmation waiting for its checks, approvals', { timeout: 300_000 }, async (t) => {
  // Where the time goes (reported as diagnostics): the test must stay lean in CI.
  const started = Date.now();
  const mark = (what: string) => t.diagnostic(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  await withBrowserHub(t, 'ui-states', async (hub) => {
    const { server: s, host } = hub;
    // --- a fresh hub: the repositories page says what to run first (signed in now: the page is read again below) --
    const page = await hub.signedIn('admin', s.admin.password);
    const empty = page.locator('main .empty');
    await empty.getByText('Nothing pushed yet. Push your first image:').waitFor();
    assert.equal(await empty.locator('pre').innerText(), `docker login ${s.host}\ndocker tag myapp:latest ${s.host}/myapp:1.0.0\ndocker push ${s.host}/myapp:1.0.0`);
    mark('empty state');

    // --- fixtures: a good and a bad release pushed with docker, the app file applied, many small repositories --
    const layer = Buffer.from('a tiny layer');
    const seeded = Array.from({ length: SEEDED }, (_, i) => `seed-${String(i).padStart(3, '0')}`);
    const [rel] = await Promise.all([
      pushTestReleases(s.host, 'web', ['v1', 'bad']),
      (async () => {
        for (let i = 0; i < seeded.length; i += 8) await Promise.all(seeded.slice(i, i + 8).map((name) => pushImage(s.url, name, '1.0', layer)));
      })(),
    ]);
    const digestOf = (v: string) => rel.releases[v]!.digest;
    // Tags moved in a known order (newest push last), on the pushed manifests: for the filter and the sort.
    const manifestOf = async (digest: string) => {
      const got = await fetch(`${s.url}/v2/web/manifests/${digest}`, { headers: { authorization: s.authorization, accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
      return { type: got.headers.get('content-type')!, body: Buffer.from(await got.arrayBuffer()) };
    };
    const good = await manifestOf(digestOf('v1'));
    for (const tag of ['v3', 'v10', 'alpha']) {
      await sleep(15); // a push time of its own, so "newest push" has one order
      const put = await fetch(`${s.url}/v2/web/manifests/${tag}`, { method: 'PUT', headers: { authorization: s.authorization, 'content-type': good.type }, body: good.body });
      assert.equal(put.status, 201, await put.text());
    }
    // vault: protected, and a release there waits for a second person's approval (no targets: nothing to deploy).
    await hub.applyApp(
      'web',
      `  production:
    replicas: 1
    targets: [host-1]
  vault:
    protected: true
    requiresApproval: true
`,
    );
    mark('fixtures');
    await page.reload();

    // --- repositories: "Load more" brings the rest by cursor; search by name prefix narrows the list -----------
    const repoCells = 'table.list tbody td[data-label="Repository"]';
    const all = [...seeded, 'web'];
    await page.getByRole('button', { name: 'Load more' }).waitFor();
    await cellsAre(page, repoCells, all.slice(0, 50));
    await page.getByRole('button', { name: 'Load more' }).click();
    await cellsAre(page, repoCells, all);
    assert.equal(await page.getByRole('button', { name: 'Load more' }).count(), 0, 'no more pages');
    await page.getByLabel('Search repositories by name').fill('seed-01');
    await cellsAre(page, repoCells, seeded.filter((n) => n.startsWith('seed-01')));
    await page.getByLabel('Search repositories by name').fill('w');
    await cellsAre(page, repoCells, ['web']);
    await page.getByLabel('Search repositories by name').fill('nothing-here');
    await page.getByText('No repository starts with “nothing-here”.').waitFor();
    mark('repositories');

    // --- a repository's tags: sorted by newest push (the default) or by name, filtered by prefix ----------------
    await page.getByLabel('Search repositories by name').fill('web');
    await page.getByRole('link', { name: 'web', exact: true }).click();
    const tagCells = 'table.list tbody td[data-label="Tag"]';
    await page.getByRole('button', { name: 'Show pull commands for alpha' }).waitFor();
    const newest = await page.locator(tagCells).allInnerTexts();
    assert.deepEqual(newest.slice(0, 3), ['alpha', 'v10', 'v3'], 'newest push first');
    assert.deepEqual([...newest].sort(), ['alpha', 'bad', 'v1', 'v10', 'v3']);
    await page.getByLabel('Sort').selectOption('name');
    await cellsAre(page, tagCells, ['alpha', 'bad', 'v1', 'v10', 'v3']);
    await page.getByLabel('Filter tags by prefix').fill('v1');
    await cellsAre(page, tagCells, ['v1', 'v10']);
    await page.getByLabel('Sort').selectOption('pushed');
    await cellsAre(page, tagCells, ['v10', 'v1']);
    await page.getByLabel('Filter tags by prefix').fill('zz');
    await page.getByText('No tag starts with “zz”.').waitFor();
    mark('tags');

    // --- the confirmation waits for what it shows: while the environment's status is held back, it cannot be confirmed
    let letStatusThrough!: () => void;
    const held = new Promise<void>((resolve) => (letStatusThrough = resolve));
    const statusRoute = '**/api/v1/apps/web/status*';
    await page.route(statusRoute, async (route) => {
      await held;
      await route.continue();
    });
    await page.goto(`${s.url}/#/r/web/delivery`);
    const card = page.getByRole('article', { name: 'Environment production' });
    await card.getByRole('button', { name: /Release tag/ }).click();
    assert.equal(await card.locator('.target').count(), 0, 'the card’s status has not come');
    const dialog = page.locator('dialog[open]');
    const gatesChecked = page.waitForResponse((res) => res.url().includes(`/attestations/${digestOf('v1')}`));
    await dialog.getByLabel('Tag or digest').fill('v1');
    await gatesChecked;
    const confirm = dialog.getByRole('button', { name: 'Release', exact: true });
    await dialog.getByRole('status', { name: 'Checking' }).waitFor();
    assert.equal(await confirm.isDisabled(), true, 'the gates are in but the targets are not: nothing to confirm yet');
    assert.equal(await dialog.getByRole('list', { name: 'Gates' }).count(), 0);
    letStatusThrough();
    await dialog.getByRole('list', { name: 'Gates' }).waitFor();
    await dialog.getByLabel(/Deploy to 1 target/).waitFor();
    assert.equal(await confirm.isDisabled(), false, 'enabled once the checks are in');
    await page.unroute(statusRoute);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    mark('confirmation waits');

    // --- a good release deployed, then a bad one: the dialog streams the progress and ends in the rollback -----
    // The card's targets come with its status.
    await card.locator('.target').waitFor();
    const first = await act(page, 'production', /Release tag/, { ref: 'v1', deploy: true });
    assert.match(first, /Deployment succeeded/, first);
    const running = async () => (await host.mustDocker(['ps', '-a', '--no-trunc', '--filter', 'label=wharf.app=web', '--format', '{{.ID}} {{.Image}}'])).stdout.split('\n').filter(Boolean);
    assert.deepEqual((await running()).map((l) => l.split(' ')[1]), [`${rel.image}@${digestOf('v1')}`]);

    await card.getByRole('button', { name: /Release tag/ }).click();
    await dialog.getByLabel('Tag or digest').fill('bad');
    await dialog.getByRole('list', { name: 'Gates' }).waitFor();
    await dialog.getByLabel(/Deploy to 1 target/).setChecked(true);
    await dialog.getByRole('button', { name: 'Release', exact: true }).click();
    // Live: progress lines are shown while the deployment still runs (before any outcome).
    await page.waitForFunction(() => {
      const progress = document.querySelector('dialog[open] ol.progress');
      return !!progress && progress.querySelectorAll('li:not(.muted)').length > 0 && (progress.textContent ?? '').includes('working…') && !document.querySelector('dialog[open] .outcome');
    });
    const outcome = dialog.locator('.outcome');
    await outcome.waitFor({ timeout: 60_000 });
    const ended = await outcome.innerText();
    assert.match(ended, /Rolled back automatically/, ended);
    assert.match(ended, new RegExp(`Reason: .*${HEALTH_FAILURE}`), ended);
    assert.match(await dialog.getByRole('list', { name: 'Progress' }).innerText(), new RegExp(HEALTH_FAILURE), 'the failing check is among the progress lines');
    await dialog.getByRole('button', { name: 'Close', exact: true }).click();
    const afterRollback = await running();
    assert.deepEqual(afterRollback.map((l) => l.split(' ')[1]), [`${rel.image}@${digestOf('v1')}`], 'v1 runs again');
    // The card names v1 again, in sync.
    await page.reload();
    await card.getByText('in sync').waitFor();
    assert.match(await card.locator('.version').innerText(), /^v1$/);
    mark('rollback');

    // --- deployments: the rolled-back one with its reason; per target intended and actual digest ---------------
    await page.getByRole('link', { name: 'Deployments' }).click();
    const targets = page.getByRole('list', { name: 'Targets of production' });
    // The one target of production (status names it by its endpoint).
    const targetRow = targets.getByRole('listitem').filter({ hasText: host.endpoint.replace('unix://', '') });
    await targetRow.getByText('in sync').waitFor();
    const digests = () => targetRow.locator('code.digest').evaluateAll((codes) => codes.map((c) => c.getAttribute('title')));
    assert.deepEqual(await digests(), [digestOf('v1'), digestOf('v1')], 'intended and actual: v1');
    const rows = page.locator('table.list tbody tr');
    await rows.nth(1).waitFor();
    const history = await rows.allInnerTexts();
    assert.equal(history.length, 2, history.join('\n'));
    assert.match(history[0]!, /rolled back/);
    assert.match(history[0]!, new RegExp(HEALTH_FAILURE));
    assert.match(history[1]!, /succeeded/);
    mark('deployments');

    // --- drift: the container removed by hand; the page read again shows it ------------------------------------
    const id = afterRollback[0]!.split(' ')[0]!;
    await host.mustDocker(['rm', '-f', id]);
    await page.reload();
    await targetRow.getByText('drift', { exact: true }).waitFor();
    assert.match(await targetRow.innerText(), /nothing runs/);
    assert.match(await targetRow.innerText(), /0 of 1 replica/);
    assert.deepEqual(await digests(), [digestOf('v1')], 'intended v1, nothing actual');
    await page.getByRole('link', { name: 'Delivery' }).click();
    await card.locator('.badges').getByText('drift', { exact: true }).waitFor();
    assert.match(await card.locator('.drift').innerText(), /0 of 1 replica/);
    mark('drift');

    // --- approvals: alice asks for a release to vault, bob (explicitly granted) approves it in the browser -------
    const passwords: Record<string, string> = { alice: 'alice-password', bob: 'bob-password' };
    const admin = async (path: string, body: unknown) => {
      const res = await fetch(`${s.url}${path}`, { method: 'POST', headers: { authorization: s.authorization, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.ok(res.ok, `${path}: ${res.status} ${await res.text()}`);
    };
    for (const [name, password] of Object.entries(passwords)) await admin('/api/v1/users', { name, role: 'member', password });
    await admin('/api/v1/grants', { subject: 'alice', actions: 'pull,release:vault', pattern: 'web' });
    await admin('/api/v1/grants', { subject: 'bob', actions: 'pull,release:vault', pattern: 'web' });
    const vaultOf = async () => (await (await fetch(`${s.url}/api/v1/apps/web/environments/vault`, { headers: { authorization: s.authorization } })).json()) as { current: { digest: string; actor: string; note: string } | null };
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((u) => hub.signedIn(u, passwords[u]!)));
    await alice.goto(`${s.url}/#/r/web/delivery`);
    const asked = await act(alice, 'vault', /Release tag/, { ref: 'v1' });
    const asking = Number(/Request #(\d+) waits for approval/.exec(asked)?.[1]);
    assert.ok(asking > 0, asked);
    assert.equal((await vaultOf()).current, null, 'nothing is released before the approval');
    mark('asked for approval');
    const request = (p: Page, n = asking) => p.getByRole('listitem', { name: `Approval request #${n}` });
    const approve = (p: Page, n = asking) => request(p, n).getByRole('button', { name: 'Approve…' });
    const deny = (p: Page, n = asking) => request(p, n).getByRole('button', { name: 'Deny' });
    // The requester sees it on the card and in the list, and cannot approve it: in the page, nor by a forged request.
    await alice.getByRole('article', { name: 'Environment vault' }).getByText('1 request waiting for approval').waitFor();
    await request(alice).waitFor();
    assert.match(await request(alice).innerText(), /release v1 → vault[\s\S]*asked by alice/);
    assert.equal(await approve(alice).isDisabled(), true);
    assert.match((await approve(alice).getAttribute('title')) ?? '', /alice asked for it: a second person must approve it/);
    const byAlice = await forge(alice, `/api/v1/apps/web/approvals/${asking}`, {}, true);
    assert.equal(byAlice.status, 403, byAlice.text);
    // Without the explicit grant (the global admin: the role is not enough on a protected environment): disabled
    // with the reason, and refused.
    await page.reload(); // read before the request was made
    await request(page).waitFor();
    for (const b of [approve(page), deny(page)]) {
      assert.equal(await b.isDisabled(), true);
      assert.match((await b.getAttribute('title')) ?? '', /web\/vault is protected: only users and tokens granted release:vault/);
    }
    const vaultCard = page.getByRole('article', { name: 'Environment vault' });
    assert.equal(await vaultCard.getByRole('button', { name: /Release tag/ }).isDisabled(), true, 'the admin role is not enough on a protected environment');
    assert.match((await vaultCard.getByRole('button', { name: /Release tag/ }).getAttribute('title')) ?? '', /protected/);
    for (const path of [`/api/v1/apps/web/approvals/${asking}`, `/api/v1/apps/web/approvals/${asking}/deny`]) {
      const byAdmin = await forge(page, path, {}, true);
      assert.equal(byAdmin.status, 403, `${path}: ${byAdmin.text}`);
      assert.match(byAdmin.text, /protected/);
    }
    // bob approves through the confirmation (the digest change and gates first): the release goes through.
    await bob.goto(`${s.url}/#/r/web/delivery`);
    await request(bob).waitFor();
    await approve(bob).click();
    const approved = await confirmDialog(bob);
    assert.match(approved, /Release #\d+ recorded: vault is now v1/, approved);
    await request(bob).waitFor({ state: 'detached' });
    const released = await vaultOf();
    assert.equal(released.current?.digest, digestOf('v1'));
    assert.equal(released.current?.actor, 'alice', 'the requester’s release');
    assert.match(released.current?.note ?? '', new RegExp(`approved by bob \\(request #${asking}\\)`));
    assert.match(await bob.getByRole('article', { name: 'Environment vault' }).locator('.version').innerText(), /^v1$/);
    mark('approved');

    // --- a second request denied in the browser: it is gone, nothing is released, and it cannot be approved ------
    const again = await act(alice, 'vault', /Release tag/, { ref: 'bad' });
    const second = Number(/Request #(\d+) waits for approval/.exec(again)?.[1]);
    await bob.reload();
    await request(bob, second).waitFor();
    bob.once('dialog', (d) => void d.accept());
    await deny(bob, second).click();
    await request(bob, second).waitFor({ state: 'detached' });
    const decided = (await (await fetch(`${s.url}/api/v1/apps/web/approvals?all=true`, { headers: { authorization: s.authorization } })).json()) as { id: number; status: string; deniedBy: string | null }[];
    const denied = decided.find((a) => a.id === second);
    assert.deepEqual([denied?.status, denied?.deniedBy], ['denied', 'bob']);
    assert.equal((await vaultOf()).current?.digest, digestOf('v1'), 'the denied release never happened');
    const late = await forge(bob, `/api/v1/apps/web/approvals/${second}`, {}, true);
    assert.equal(late.status, 409, late.text);
    assert.match(late.text, /denied by bob/);
    mark('denied');

    // --- needs an operator: the card says so, with the deployment and its reason -------------------------------
    // A deployment whose rollback failed too is recorded so by rollout.ts; staged here in the store (making a real
    // rollback fail takes an engine failing on cue), as the newest deployment of vault.
    const reason = 'host-1: health check failed; rollback failed on host-1: image gone; an operator must restore it';
    const stuck = await onDatabase(s.dataDir, async (db) => {
      const env = await db
        .selectFrom('environments as e')
        .innerJoin('repositories as r', 'r.id', 'e.repository_id')
        .select('e.id')
        .where('r.name', '=', 'web')
        .where('e.name', '=', 'vault')
        .executeTakeFirstOrThrow();
      const now = Date.now();
      const row = await db
        .insertInto('deployments')
        .values({ environment_id: Number(env.id), release_id: null, digest: digestOf('bad'), image: rel.image, kind: 'docker', trigger: 'deploy', status: 'needs_operator', reason, actor: 'bob', started_at: now - 1000, finished_at: now })
        .returning('id')
        .executeTakeFirstOrThrow();
      return Number(row.id);
    });
    await bob.reload();
    const vaultOfBob = bob.getByRole('article', { name: 'Environment vault' });
    await vaultOfBob.locator('.badges').getByText('needs operator', { exact: true }).waitFor();
    assert.equal(await vaultOfBob.locator('.badges').getByText('no targets').count(), 0, 'the attention replaces the sync badge');
    assert.equal(await vaultOfBob.getByLabel('Needs attention').innerText(), `⚠ Deployment #${stuck} needs an operator: ${reason}. What runs may match no release: look at the targets, then deploy or roll back.`);
    mark('needs operator');
  });
});
