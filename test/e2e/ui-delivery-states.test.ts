// The web UI's delivery states in a real browser (Debian's chromium, driven by playwright-core) against a real
// Wharf and an extra dockerd as the deploy target: a release whose health check fails ends, live in the
// deployment dialog, in the automatic rollback with its reason; the deployments page shows per target the intended
// against the actual digest; a container removed by hand shows as drift; the repositories page searches and pages
// ("Load more"); a repository's tags filter and sort.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type Browser, type Page } from 'playwright-core';
import { act, browserUnavailable, CHROMIUM, CHROMIUM_ARGS, signIn } from '../support/browser.js';
import { daemonsUnavailable, startDaemons, type DaemonSet } from '../support/dockerd.js';
import { HEALTH_FAILURE, pushTestReleases } from '../support/deploy-images.js';
import { pushImage } from '../support/registry-client.js';
import { runWharf, startWharf, withLogsOnFailure, type WharfServer } from '../support/server.js';

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

test('the web UI: automatic rollback shown live, intended vs actual digest, drift, repository search and pages, tag filter and sort', { timeout: 300_000 }, async (t) => {
  const why = browserUnavailable() ?? (await daemonsUnavailable());
  if (why) return t.skip(why);
  // Where the time goes (reported as diagnostics): the test must stay lean in CI.
  const started = Date.now();
  const mark = (what: string) => t.diagnostic(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  let daemons: DaemonSet | undefined;
  let server: WharfServer | undefined;
  let browser: Browser | undefined;
  const dir = await mkdtemp(join(tmpdir(), 'wharf-ui-states-'));
  try {
    let launched: Browser;
    [daemons, server, launched] = await Promise.all([startDaemons(1), startWharf(), chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })]);
    browser = launched;
    const s = server;
    const host = daemons.daemons[0]!;
    await withLogsOnFailure(s, async () => {
      // --- fixtures: a good and a bad release pushed with docker, the app file applied, many small repositories --
      await s.login('docker');
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
      const env = { ...process.env, WHARF_SERVER: s.url, WHARF_CONFIG_DIR: join(dir, 'config') };
      const wharf = async (args: string[], input?: string) => {
        const r = await runWharf(args, { env, input, timeoutMs: 60_000 });
        assert.equal(r.code, 0, `wharf ${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
        return r.stdout;
      };
      await wharf(['login', s.url, '-u', 'admin', '--password-stdin'], s.admin.password);
      const appFile = join(dir, 'wharf.yaml');
      await writeFile(
        appFile,
        `app: web
container: { stopTimeout: 2s }
rollout: { parallelism: 1, healthTimeout: 20s, monitor: 300ms }
environments:
  production:
    replicas: 1
    targets: [host-1]
`,
      );
      await wharf(['target', 'add', 'host-1', host.endpoint, '--apps', 'web']);
      await wharf(['apply', '-f', appFile]);
      mark('fixtures');

      const page = await (await browser!.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
      await signIn(page, s.url, 'admin', s.admin.password);

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

      // --- a good release deployed, then a bad one: the dialog streams the progress and ends in the rollback -----
      await page.goto(`${s.url}/#/r/web/delivery`);
      const card = page.getByRole('article', { name: 'Environment production' });
      // The card's targets come with its status: until then its dialogs offer no deploy.
      await card.locator('.target').waitFor();
      const first = await act(page, 'production', /Release tag/, { ref: 'v1', deploy: true });
      assert.match(first, /Deployment succeeded/, first);
      const running = async () => (await host.mustDocker(['ps', '-a', '--no-trunc', '--filter', 'label=wharf.app=web', '--format', '{{.ID}} {{.Image}}'])).stdout.split('\n').filter(Boolean);
      assert.deepEqual((await running()).map((l) => l.split(' ')[1]), [`${rel.image}@${digestOf('v1')}`]);

      await card.getByRole('button', { name: /Release tag/ }).click();
      const dialog = page.locator('dialog[open]');
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
    });
  } finally {
    await browser?.close();
    await daemons?.teardown();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
