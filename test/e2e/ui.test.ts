// The web UI in a real browser (Debian's chromium, driven by playwright-core) against a real Wharf, real docker
// and an extra dockerd as the deploy target: sign in, a new tab stays signed in, an image pushed with docker
// (layers, platform, attestation), release → promote staging → production with deploy (the gates shown first) →
// roll back → deploy → roll back to a release from the timeline, a promotion waiting for approval,
// a pull-only user without actions whose forged request is refused, CSRF refused, sign out; the admin pages:
// users, groups, grants (the user's access follows), tokens, webhooks, retention policies and garbage collection
// (a dry run, then a real run, applying the policy); an image's config (entrypoint, env names, labels, ports,
// created) for an image built with them. Takes the screenshots in docs/screenshots/ at desktop and phone width.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import type { BrowserContext, Page } from 'playwright-core';
import { IN_TOTO_PAYLOAD_TYPE, signEnvelope } from '../../src/attest/dsse.js';
import { keyIdOf } from '../../src/attest/signers.js';
import { predicateTypeOf, statementFor } from '../../src/attest/statement.js';
import { act, confirmDialog, DESKTOP, forge, signIn, withBrowserHub } from '../support/browser.js';
import { mustRun } from '../support/command.js';
import { pushTestReleases } from '../support/deploy-images.js';
import { BASE_IMAGE, ensureBaseImage, removeImages } from '../support/images.js';
import { REPO_ROOT } from '../support/server.js';
import { startReceiver } from '../webhooks/receiver.js';

/** The README's screenshots are rewritten only when asked (WHARF_UPDATE_SCREENSHOTS=1); otherwise they go to the test's temp dir. */
const UPDATE_SHOTS = process.env.WHARF_UPDATE_SCREENSHOTS === '1';
let SHOTS = join(REPO_ROOT, 'docs', 'screenshots');
const PHONE = { width: 390, height: 844 };

/** Screenshots at desktop and phone width; at phone width nothing may be wider than the screen (no sideways scroll). */
async function shoot(page: Page, name: string): Promise<void> {
  await page.setViewportSize(DESKTOP);
  await page.waitForTimeout(150);
  await page.screenshot({ path: join(SHOTS, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.waitForTimeout(150);
  const overflow = await page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > width + 1 && !e.closest('dialog:not([open])'));
    return { scroll: document.documentElement.scrollWidth, width, wide: wide.slice(0, 5).map((e) => `${e.tagName.toLowerCase()}.${e.className}`) };
  });
  assert.ok(overflow.scroll <= overflow.width, `${name} at phone width scrolls sideways (${overflow.scroll} > ${overflow.width}): ${overflow.wide.join(', ')}`);
  await page.screenshot({ path: join(SHOTS, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
}

/**
 * `tools:1` and `tools:2`, one image built with docker whose config carries what an image page shows (entrypoint,
 * cmd, env, labels, exposed ports); the local copies are removed. Answers its digest.
 */
async function pushConfiguredImage(registry: string, dir: string): Promise<string> {
  await ensureBaseImage('docker');
  const context = join(dir, 'tools');
  await mkdir(context);
  await writeFile(
    join(context, 'Dockerfile'),
    [
      `FROM ${BASE_IMAGE}`,
      'ENTRYPOINT ["/bin/env"]',
      'CMD ["/bin/sh", "-c", "echo ready"]',
      'ENV GREETING=not-shown-value LOG_LEVEL=debug',
      'LABEL org.opencontainers.image.source="https://example.com/tools" team=platform',
      'EXPOSE 8080/tcp 9090/udp',
      '',
    ].join('\n'),
  );
  const tags = [`${registry}/tools:1`, `${registry}/tools:2`];
  try {
    // --no-cache as test/support/images.ts builds: the cache lookup walks the base image's children, which fails
    // when the other CI suite removes one of them at that moment (and this Dockerfile is the same in both).
    await mustRun('docker', ['build', '--no-cache', '--network', 'host', '-q', '-t', tags[0]!, '-t', tags[1]!, context], { timeoutMs: 120_000 });
    const push = await mustRun('docker', ['push', tags[0]!]);
    await mustRun('docker', ['push', tags[1]!]);
    const digest = /digest: (sha256:[0-9a-f]{64})/.exec(push.stdout)?.[1];
    assert.ok(digest, `docker push printed no digest:\n${push.stdout}`);
    return digest;
  } finally {
    await removeImages('docker', tags);
  }
}

test('the web UI: sign in, browse an image, release, promote, roll back, deploy, permissions, CSRF, admin pages, sign out', { timeout: 600_000 }, async (t) => {
  await withBrowserHub(t, 'ui', async (hub) => {
    // Where the time goes (reported as diagnostics): the test must stay lean in CI.
    const started = Date.now();
    const mark = (what: string) => t.diagnostic(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const { server: s, host, browser, dir, wharf } = hub;
    if (!UPDATE_SHOTS) SHOTS = join(dir, 'screenshots');
    await mkdir(SHOTS, { recursive: true });
    // --- fixtures, made the way a user makes them: docker push, wharf apply, wharf user/grant ---------------
    const [rel, tools] = await Promise.all([pushTestReleases(s.host, 'web', ['v1', 'v2']), pushConfiguredImage(s.host, dir)]);
    // The host is a registered deploy target (global admin); the app file names it.
    await hub.applyApp(
      'web',
      `  staging: {}
  production:
    requiresPromotionFrom: staging
    requires: [sbom]
    replicas: 1
    targets: [host-1]
  vault:
    requiresPromotionFrom: production
    requiresApproval: true
`,
    );
    // An SBOM signer trusted by the global admin, and an SBOM it signed for each release.
    const sbomKey = generateKeyPairSync('ed25519');
    await writeFile(join(dir, 'sbom.pub'), sbomKey.publicKey.export({ type: 'spki', format: 'pem' }));
    await wharf(['signer', 'add', 'sbom-bot', '--public-key', join(dir, 'sbom.pub'), '--apps', 'web', '--kinds', 'sbom', '--env', '*']);
    for (const v of ['v1', 'v2']) {
      const statement = statementFor('web', rel.releases[v]!.digest, predicateTypeOf('sbom'), { packages: [{ name: 'busybox', version: '1.36' }] });
      const envelope = signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), { keyid: keyIdOf(sbomKey.publicKey), privateKey: sbomKey.privateKey });
      const res = await fetch(`${s.url}/api/v1/apps/web/attestations`, {
        method: 'POST',
        headers: { authorization: s.authorization, 'content-type': 'application/json' },
        body: JSON.stringify({ envelope }),
      });
      assert.equal(res.status, 201, await res.text());
    }
    // `latest` moved by hand from v1 to v2 (the same manifests, re-tagged over /v2): a tag to restore later.
    for (const v of ['v1', 'v2']) {
      const got = await fetch(`${s.url}/v2/web/manifests/${rel.releases[v]!.digest}`, { headers: { authorization: s.authorization, accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
      const type = got.headers.get('content-type')!;
      const put = await fetch(`${s.url}/v2/web/manifests/latest`, { method: 'PUT', headers: { authorization: s.authorization, 'content-type': type }, body: Buffer.from(await got.arrayBuffer()) });
      assert.equal(put.status, 201, await put.text());
    }
    await wharf(['user', 'add', 'viewer', '--password-stdin', '--server', s.url], 'viewer-password');
    await wharf(['grant', 'viewer', 'pull', 'web', '--server', s.url]);

    mark('fixtures');
    const admin: BrowserContext = await browser.newContext({ viewport: DESKTOP });
    const page = await admin.newPage();

    // --- sign in; a new tab is signed in too ---------------------------------------------------------------
    await page.goto(s.url);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await shoot(page, 'sign-in');
    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Wrong user name or password.').waitFor();
    await signIn(page, s.url, 'admin', s.admin.password);
    const cookies = await admin.cookies();
    const session = cookies.find((c) => c.name === 'wharf_session')!;
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(await page.evaluate(() => document.cookie.includes('wharf_session')), false, 'scripts cannot read the session cookie');
    const tab = await admin.newPage();
    await tab.goto(s.url);
    await tab.getByRole('link', { name: 'web' }).waitFor();
    assert.match(await tab.locator('header.top').innerText(), /admin/);
    // Back to the first tab, as a user would (the new one stays open for the sign-out below): a tab left in the
    // background gets a frame about once a second, and every click waits for two frames to see the element still.
    await page.bringToFront();

    // --- repositories → tags → image ----------------------------------------------------------------------
    const row = page.getByRole('row', { name: /web/ });
    await row.waitFor();
    assert.match(await row.innerText(), /\b3\b/, 'three tags: v1, v2, latest');
    await shoot(page, 'repositories');
    // Light and dark follow the system.
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const light = await background();
    await page.emulateMedia({ colorScheme: 'dark' });
    const dark = await background();
    assert.notEqual(dark, light, 'the page turns dark with the system');
    const luminance = (rgb: string) => rgb.match(/\d+/g)!.slice(0, 3).reduce((sum, v) => sum + Number(v), 0);
    assert.ok(luminance(dark) < luminance(light), `${dark} is darker than ${light}`);
    await shoot(page, 'repositories-dark');
    await page.emulateMedia({ colorScheme: 'light' });
    await page.getByRole('link', { name: 'web' }).click();
    await page.getByRole('button', { name: 'Show pull commands for v2' }).waitFor();
    const tags = await page.locator('table.list').innerText();
    assert.match(tags, /v1/);
    assert.match(tags, /linux\/amd64/);
    assert.match(tags, /by admin/);
    // The pull commands of the tag chosen: by tag and by its digest, as they are typed.
    await page.getByRole('button', { name: 'Show pull commands for v2' }).click();
    const pulls = page.getByRole('region', { name: 'Pull commands' });
    await pulls.getByText(`docker pull ${s.host}/web:v2`, { exact: true }).waitFor();
    assert.equal(await pulls.getByText(`docker pull ${s.host}/web@${rel.releases.v2!.digest}`, { exact: true }).count(), 1, await pulls.innerText());
    await shoot(page, 'repository');
    await page.getByRole('row', { name: /v2/ }).getByRole('link').click();
    await page.getByRole('heading', { name: 'Layers' }).waitFor();
    const image = await page.locator('main').innerText();
    assert.match(image, /linux\/amd64/);
    assert.match(image, /✔ verified\s+sbom/);
    assert.match(image, /\/bin\/sh/, 'the config’s cmd');
    assert.ok((await page.locator('table.list tbody tr').count()) >= 2, 'layers are listed');
    await shoot(page, 'image');
    mark('image');
    // An image's config as built: entrypoint, cmd, env names (not their values), labels, exposed ports, created.
    await page.goto(`${s.url}/#/r/tools/image/${tools}`);
    const fact = (name: string) => page.locator(`dl.facts > dt:text-is("${name}") + dd`).innerText();
    await page.getByRole('heading', { name: 'Labels' }).waitFor(); // the web image before it has none
    assert.equal(await fact('Entrypoint'), '["/bin/env"]');
    assert.equal(await fact('Cmd'), '["/bin/sh","-c","echo ready"]');
    assert.match(await fact('Env'), /GREETING[\s\S]*LOG_LEVEL/);
    assert.equal(await page.getByText('not-shown-value').count(), 0, 'env values are not shown');
    assert.match(await fact('Ports'), /8080\/tcp[\s\S]*9090\/udp/);
    assert.match(await fact('Created'), /ago|just now/);
    assert.equal(await fact('org.opencontainers.image.source'), 'https://example.com/tools');
    assert.equal(await fact('team'), 'platform');
    await page.goto(`${s.url}/#/r/web`);
    mark('image config');

    // --- tag history: restore latest to where it pointed before ----------------------------------------------
    await page.getByRole('link', { name: 'Tag history' }).click();
    await page.getByRole('button', { name: 'Restore' }).first().waitFor();
    await shoot(page, 'tag-history');
    await page.locator('ol.timeline li', { hasText: 'latest' }).filter({ has: page.getByRole('button', { name: 'Restore' }) }).getByRole('button', { name: 'Restore' }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Restore tag' }).click();
    await page.locator('dialog[open]').waitFor({ state: 'detached' });
    const latest = await fetch(`${s.url}/v2/web/manifests/latest`, { method: 'HEAD', headers: { authorization: s.authorization, accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    assert.equal(latest.headers.get('docker-content-digest'), rel.releases.v1!.digest, 'latest points at v1 again');

    // --- delivery: release v1 to staging, promote with deploy, v2 the same, roll back, deploy ---------------
    await page.getByRole('link', { name: 'Delivery' }).click();
    await page.getByRole('article', { name: 'Environment production' }).waitFor();
    let done = await act(page, 'staging', /Release tag/, { ref: 'v1' });
    assert.match(done, /Release #\d+ recorded: staging is now v1/);
    mark('released v1');
    done = await act(page, 'production', /Promote staging → production/, { deploy: true });
    assert.match(done, /Deployment succeeded/, done);
    assert.match(done, /pull|start|health|switch/i, 'progress lines were shown');
    // The confirmation listed production's gates, each passed: the SBOM verified, and a promotion from staging.
    assert.match(done, /✔ attestation: sbom — verified/, done);
    assert.match(done, /✔ promotion from staging — promoted from there/, done);
    assert.doesNotMatch(done, /✘/, done);
    mark('promoted v1, deployed');
    // A tag released to production directly fails its promotion gate: shown before the click, the button marked
    // dangerous with the reason; cancelled, nothing changes.
    const prodCard = page.getByRole('article', { name: 'Environment production' });
    await prodCard.getByRole('button', { name: /Release tag/ }).click();
    const direct = page.locator('dialog[open]');
    await direct.getByLabel('Tag or digest').fill('v2');
    const gates = direct.getByRole('list', { name: 'Gates' });
    await gates.waitFor();
    assert.match(await gates.innerText(), /✘ promotion from staging — only what staging runs may come here: promote instead/);
    assert.match(await gates.innerText(), /✔ attestation: sbom/);
    const release = direct.getByRole('button', { name: 'Release', exact: true });
    assert.match((await release.getAttribute('class')) ?? '', /\bdanger\b/);
    assert.match((await release.getAttribute('title')) ?? '', /a gate fails/);
    await direct.getByRole('button', { name: 'Cancel' }).click();
    await direct.waitFor({ state: 'detached' });
    done = await act(page, 'staging', /Release tag/, { ref: 'v2' });
    done = await act(page, 'production', /Promote staging → production/, { deploy: true });
    assert.match(done, /Deployment succeeded/, done);
    mark('promoted v2, deployed');
    const running = async () => (await host.mustDocker(['ps', '--no-trunc', '--filter', 'label=wharf.app=web', '--format', '{{.Image}}'])).stdout.trim();
    assert.equal(await running(), `${rel.image}@${rel.releases.v2!.digest}`);

    // The confirmation of a rollback names both digests before anything happens.
    const prod = page.getByRole('article', { name: 'Environment production' });
    await prod.getByRole('button', { name: 'Roll back' }).click();
    await page.locator('dialog[open]').getByRole('list', { name: 'Gates' }).waitFor();
    const change = await page.locator('dialog[open]').getByLabel('Digest change').innerText();
    assert.match(change, new RegExp(`${rel.releases.v2!.digest.slice(7, 19)}[\\s\\S]*→[\\s\\S]*${rel.releases.v1!.digest.slice(7, 19)}`));
    await shoot(page, 'confirm-rollback');
    // Keyboard: the dialog has the focus, and Escape cancels it.
    assert.equal(await page.evaluate(() => !!document.activeElement?.closest('dialog[open]')), true, 'the focus is in the dialog');
    await page.keyboard.press('Escape');
    await page.locator('dialog[open]').waitFor({ state: 'detached' });
    done = await act(page, 'production', /^Roll back$/, { deploy: true });
    assert.match(done, /Deployment succeeded/, done);
    mark('rolled back, deployed');
    assert.equal(await running(), `${rel.image}@${rel.releases.v1!.digest}`);
    done = await act(page, 'production', /^Deploy$/);
    assert.match(done, /Deployment succeeded/, done);
    mark('deployed again');
    // Back to an older release from the timeline: production's promotion of v2, its digest change shown first.
    const olderV2 = page.locator('ol.timeline li').filter({ hasText: '→ production' }).filter({ hasText: 'v2' }).filter({ has: page.getByRole('button', { name: 'Roll back to this' }) });
    await olderV2.getByRole('button', { name: 'Roll back to this' }).click();
    const back = page.locator('dialog[open]');
    await back.getByRole('heading', { name: 'Roll back production to v2' }).waitFor();
    await back.getByRole('list', { name: 'Gates' }).waitFor();
    assert.match(await back.getByLabel('Digest change').innerText(), new RegExp(`${rel.releases.v1!.digest.slice(7, 19)}[\\s\\S]*→[\\s\\S]*${rel.releases.v2!.digest.slice(7, 19)}`));
    done = await confirmDialog(page, { deploy: true });
    assert.match(done, /Deployment succeeded/, done);
    assert.equal(await running(), `${rel.image}@${rel.releases.v2!.digest}`, 'v2 runs again');
    mark('rolled back to v2 from the timeline');
    // A promotion to vault waits for a second person's approval: the page lists the request (and the screenshot shows it).
    const asked = await fetch(`${s.url}/api/v1/apps/web/promote`, { method: 'POST', headers: { authorization: s.authorization, 'content-type': 'application/json' }, body: JSON.stringify({ from: 'production', to: 'vault' }) });
    assert.equal(asked.status, 202, await asked.text());
    await page.reload();
    const waiting = page.getByRole('list', { name: 'Approval requests' }).getByRole('listitem');
    await waiting.first().waitFor();
    assert.match(await waiting.innerText(), /promote from production → vault[\s\S]*asked by admin/);
    await page.getByRole('article', { name: 'Environment vault' }).getByText('1 request waiting for approval').waitFor();
    await prod.getByText('in sync').waitFor();
    assert.match(await prod.locator('.version').innerText(), /^v2$/);
    assert.match(await prod.locator('.current').innerText(), /rollback by admin/);
    await shoot(page, 'delivery');
    // The image page of v2 names where it is current and every release of it.
    await page.goto(`${s.url}/#/r/web/image/${rel.releases.v2!.digest}`);
    await page.getByRole('heading', { name: 'Environments' }).waitFor();
    await page.locator('.env-chip').first().waitFor();
    assert.deepEqual((await page.locator('.env-chip').allInnerTexts()).sort(), ['production', 'staging']);
    const releasesOfV2 = await page.locator('h3:text-is("Releases") + ul.plain > li').allInnerTexts();
    assert.deepEqual(
      releasesOfV2.map((r) => /^#\d+ (\S+) (\S+) (\w+) by/.exec(r)?.slice(1).join(' ')),
      ['production v2 rollback', 'production v2 promote', 'staging v2 release'],
      releasesOfV2.join('\n'),
    );
    await page.goto(`${s.url}/#/r/web/delivery`);
    await page.getByRole('link', { name: 'Deployments' }).click();
    await page.getByRole('heading', { name: 'production' }).waitFor();
    // promote v1, promote v2, roll back, deploy, roll back to v2: five, newest first, all succeeded
    await page.locator('table.list tbody tr').nth(4).waitFor();
    const deployments = await page.locator('table.list tbody tr').allInnerTexts();
    assert.equal(deployments.length, 5);
    assert.ok(deployments.every((d) => /succeeded/.test(d)), deployments.join('\n'));
    assert.match(deployments[0]!, /rollback/, deployments[0]);
    await shoot(page, 'deployments');
    mark('delivery');

    // --- admin pages ----------------------------------------------------------------------------------
    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByRole('cell', { name: 'viewer' }).waitFor();
    // A user added in the browser signs in; removed in the browser, no more.
    await page.getByLabel('Name').fill('carol');
    await page.getByLabel('Role').selectOption('member');
    await page.getByLabel('Password').fill('carol-password');
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.getByRole('cell', { name: 'carol' }).waitFor();
    const signInAs = (username: string, password: string) =>
      fetch(`${s.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
    assert.equal((await signInAs('carol', 'carol-password')).status, 201);
    await shoot(page, 'admin-users');
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('row').filter({ hasText: 'carol' }).getByRole('button', { name: 'Remove' }).click();
    await page.getByRole('cell', { name: 'carol' }).waitFor({ state: 'detached' });
    assert.equal((await signInAs('carol', 'carol-password')).status, 401);
    // Groups: viewer joins @readers in the browser, then the group goes.
    await page.getByRole('link', { name: 'Groups' }).click();
    await page.getByLabel('Group').fill('readers');
    await page.getByLabel('Users').fill('viewer');
    await page.getByRole('button', { name: 'Add to group' }).click();
    await page.getByRole('cell', { name: '@readers', exact: true }).waitFor();
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Remove group' }).click();
    await page.getByRole('cell', { name: '@readers', exact: true }).waitFor({ state: 'detached' });
    mark('users, groups');
    // Grants: viewer may push to we* once granted in the browser, and no more once revoked (as the server answers).
    const viewerMay = async () => {
      const res = await fetch(`${s.url}/api/v1/access?repository=web`, { headers: { authorization: hub.basic('viewer', 'viewer-password') } });
      return ((await res.json()) as { actions: string[] }).actions;
    };
    assert.deepEqual(await viewerMay(), ['pull']);
    await page.getByRole('link', { name: 'Grants' }).click();
    await page.getByLabel('User or @group').fill('viewer');
    await page.getByLabel('Actions').fill('pull,push');
    await page.getByLabel('Repositories').fill('we*');
    await page.getByRole('button', { name: 'Grant', exact: true }).click();
    const grantRow = page.getByRole('row').filter({ hasText: 'we*' });
    await grantRow.waitFor();
    assert.match(await grantRow.innerText(), /^viewer\s+pull\s*push\s+we\*/);
    assert.deepEqual(await viewerMay(), ['pull', 'push']);
    page.once('dialog', (d) => void d.accept());
    await grantRow.getByRole('button', { name: 'Revoke' }).click();
    await grantRow.waitFor({ state: 'detached' });
    assert.deepEqual(await viewerMay(), ['pull'], 'the grant on web itself is left');
    mark('users, groups, grants');
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('cell', { name: 'tag.move' }).first().waitFor();
    await shoot(page, 'admin-audit');
    // The audit log filtered by action: only the user changes made above.
    await page.getByLabel('Action').fill('user.');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByRole('cell', { name: 'tag.move' }).first().waitFor({ state: 'detached' });
    const audited = await page.locator('table.list tbody td[data-label="Action"]').allInnerTexts();
    assert.ok(audited.length >= 2 && audited.every((a) => a.startsWith('user.')), audited.join(', '));
    // And by actor and time (the form's local time, as the browser reads it): since before this test began, the
    // admin's rows among those (as a user or through a token of theirs); since an hour from now, none.
    const whoAll = await page.locator('table.list tbody td[data-label="Who"]').allInnerTexts();
    const admins = whoAll.filter((w) => /^(token:)?admin\b/.test(w));
    // (No named function inside: the bundle's keepNames would wrap it in a helper the page does not have.)
    const localMinute = (ms: number) => page.evaluate((ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 16), ms);
    await page.getByLabel('Actor').fill('admin');
    await page.getByLabel('Since').fill(await localMinute(started - 60_000));
    const filtered = page.waitForResponse((res) => res.url().includes('/api/v1/audit?') && res.url().includes('actor=admin'));
    await page.getByRole('button', { name: 'Filter' }).click();
    await filtered;
    await page.waitForFunction((n) => document.querySelectorAll('table.list tbody tr').length === n, admins.length);
    assert.deepEqual(await page.locator('table.list tbody td[data-label="Who"]').allInnerTexts(), admins, whoAll.join(', '));
    await page.getByLabel('Since').fill(await localMinute(Date.now() + 3_600_000));
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByText('No audit rows match.').waitFor();

    // --- tokens: made in the browser, the secret shown once and working, listed, revoked --------------------
    const basicOf = (user: string, secret: string) => `Basic ${Buffer.from(`${user}:${secret}`).toString('base64')}`;
    await page.getByRole('link', { name: 'Tokens' }).click();
    await page.getByLabel('Name').fill('ci-deploy');
    await page.getByLabel('Expires').fill('30d');
    await page.getByRole('button', { name: 'Create token' }).click();
    const notice = page.getByRole('status').filter({ hasText: 'ci-deploy' });
    await notice.waitFor();
    const secret = (await notice.locator('code[data-copy]').innerText()).trim();
    assert.ok(secret.length >= 20, `a secret is shown: ${secret}`);
    const tokenRow = page.getByRole('row').filter({ hasText: 'ci-deploy' });
    await tokenRow.waitFor();
    assert.match(await tokenRow.innerText(), /acts as admin[\s\S]*active/);
    // A personal token acts as its maker: it reads what admin reads.
    const asToken = await fetch(`${s.url}/api/v1/repositories`, { headers: { authorization: basicOf('admin', secret) } });
    assert.equal(asToken.status, 200, await asToken.text());
    // A robot token with a scope: the scope is listed as given.
    await page.getByLabel('Name').fill('web-puller');
    await page.getByLabel('Scope').fill('repository:web:pull');
    await page.getByRole('button', { name: 'Create token' }).click();
    await page.getByRole('row').filter({ hasText: 'web-puller' }).getByText('repository:web:pull').waitFor();
    await shoot(page, 'admin-tokens');
    // Shown once: after a reload the secret is nowhere on the page.
    await page.reload();
    await page.getByRole('row').filter({ hasText: 'ci-deploy' }).waitFor();
    assert.equal(await page.getByText(secret).count(), 0, 'the secret is not shown again');
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('row').filter({ hasText: 'ci-deploy' }).getByRole('button', { name: 'Revoke' }).click();
    await page.getByRole('row').filter({ hasText: 'ci-deploy' }).getByText('revoked').waitFor();
    assert.equal(await page.getByRole('row').filter({ hasText: 'ci-deploy' }).getByRole('button', { name: 'Revoke' }).count(), 0);
    const revoked = await fetch(`${s.url}/api/v1/repositories`, { headers: { authorization: basicOf('admin', secret) } });
    assert.equal(revoked.status, 401, 'a revoked token no longer signs in');

    // --- webhooks: added in the browser, its deliveries listed, one redelivered, then removed --------------------
    const receiver = await startReceiver();
    try {
      await page.getByRole('link', { name: 'Webhooks' }).click();
      await page.getByLabel('URL').fill(receiver.url);
      await page.getByLabel('Events').fill('tag.moved');
      await page.getByRole('button', { name: 'Add webhook' }).click();
      await page.getByRole('status').filter({ hasText: 'Signing secret' }).waitFor();
      await page.getByRole('row').filter({ hasText: receiver.url }).waitFor();
      // A tag moves (latest back to v2): the receiver hears of it, and the log shows it delivered.
      const restored = await fetch(`${s.url}/api/v1/repositories/web/tags/latest/restore`, { method: 'POST', headers: { authorization: s.authorization, 'content-type': 'application/json' }, body: JSON.stringify({ to: rel.releases.v2!.digest }) });
      assert.equal(restored.status, 200, await restored.text());
      await receiver.waitFor(1, 30_000);
      await page.reload();
      const delivered = page.getByRole('row').filter({ hasText: 'tag.moved' });
      await delivered.getByText('succeeded').waitFor();
      await shoot(page, 'admin-webhooks');
      await delivered.getByRole('button', { name: 'Redeliver' }).click();
      const [first, again] = await receiver.waitFor(2, 30_000);
      assert.equal(again!.body.id ?? again!.raw.toString(), first!.body.id ?? first!.raw.toString(), 'the same event again');
      page.once('dialog', (d) => void d.accept());
      await page.getByRole('row').filter({ hasText: receiver.url }).getByRole('button', { name: 'Remove' }).click();
      await page.getByRole('row').filter({ hasText: receiver.url }).waitFor({ state: 'detached' });
    } finally {
      await receiver.close();
    }

    // --- a list longer than a page: "Load more" brings the next page by cursor ------------------------------
    for (let i = 0; i < 51; i++) {
      const gc = await fetch(`${s.url}/api/v1/gc`, { method: 'POST', headers: { authorization: s.authorization, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(gc.status, 200, await gc.text());
    }
    await page.getByRole('link', { name: 'Garbage collection' }).click();
    const runRows = page.locator('table.list tbody tr');
    await page.getByRole('button', { name: 'Load more' }).waitFor();
    assert.equal(await runRows.count(), 50);
    await page.getByRole('button', { name: 'Load more' }).click();
    await page.waitForFunction(() => document.querySelectorAll('table.list tbody tr').length === 51);
    assert.equal(await page.getByRole('button', { name: 'Load more' }).count(), 0, 'no more pages');
    const ids = await runRows.locator('td[data-label="#"]').allInnerTexts();
    mark('runs paged');
    assert.equal(new Set(ids).size, 51, 'each run once');

    // --- retention and garbage collection: a policy made in the browser, a dry run, a real run, the policy removed
    const toolsTags = async () => {
      const res = await fetch(`${s.url}/api/v1/repositories/tools/tags`, { headers: { authorization: s.authorization } });
      return ((await res.json()) as { items: { name: string }[] }).items.map((t) => t.name).sort();
    };
    const policies = async () => (await (await fetch(`${s.url}/api/v1/retention/policies`, { headers: { authorization: s.authorization } })).json()) as { id: number; repositories: string; tags: string; keepLast?: number }[];
    await page.getByRole('link', { name: 'Retention' }).click();
    await page.getByText('No retention policies: every tag is kept.').waitFor();
    await page.getByLabel('Repositories').fill('tools');
    await page.getByLabel('Keep last').fill('1');
    await page.getByRole('button', { name: 'Add policy' }).click();
    const policyRow = page.getByRole('row').filter({ hasText: 'keep last 1' });
    await policyRow.waitFor();
    assert.match(await policyRow.innerText(), /tools\s+\*\s+keep last 1\s+api/);
    assert.deepEqual((await policies()).map((p) => [p.repositories, p.tags, p.keepLast]), [['tools', '*', 1]]);
    mark('retention policy added');
    await page.getByRole('link', { name: 'Garbage collection' }).click();
    await page.getByRole('button', { name: 'Dry run' }).click();
    const wouldReclaim = page.getByRole('status').filter({ hasText: 'Would reclaim' });
    await wouldReclaim.waitFor();
    assert.match(await wouldReclaim.innerText(), /: 1 tags, 0 manifests/, 'one of the two tools tags would go');
    assert.deepEqual(await toolsTags(), ['1', '2'], 'a dry run deletes nothing');
    mark('dry run');
    await page.getByRole('button', { name: 'Collect garbage now' }).click();
    const reclaimed = page.getByRole('status').filter({ hasText: /^Reclaimed/ });
    await reclaimed.waitFor();
    assert.match(await reclaimed.innerText(), /: 1 tags/);
    assert.equal((await toolsTags()).length, 1, 'the real run applied the policy');
    mark('real run');
    // The run heads the list, by admin, with what it deleted.
    const newest = Math.max(...ids.map(Number));
    await page.locator('table.list tbody tr').first().getByRole('cell', { name: String(newest + 1), exact: true }).waitFor();
    assert.match(await page.locator('table.list tbody tr').first().innerText(), /api by admin\s+1\s/);
    await page.getByRole('link', { name: 'Retention' }).click();
    page.once('dialog', (d) => void d.accept());
    await policyRow.getByRole('button', { name: 'Remove' }).click();
    await page.getByText('No retention policies: every tag is kept.').waitFor();
    assert.deepEqual(await policies(), []);
    mark('retention and gc');

    // --- CSRF: the session cookie without the token is refused; with it, accepted ----------------------------
    const noToken = await forge(page, '/api/v1/users', { name: 'mallory', password: 'mallory-password' }, false);
    assert.equal(noToken.status, 403, noToken.text);
    assert.match(noToken.text, /CSRF/);
    const withToken = await forge(page, '/api/v1/users', { name: 'trent', password: 'trent-password' }, true);
    assert.equal(withToken.status, 201, withToken.text);

    // --- a pull-only user: no usable actions, no admin, and a forged release refused ------------------------
    const viewerContext = await browser.newContext({ viewport: DESKTOP });
    const viewer = await viewerContext.newPage();
    await signIn(viewer, s.url, 'viewer', 'viewer-password');
    assert.equal(await viewer.getByRole('link', { name: 'Admin' }).count(), 0);
    await viewer.goto(`${s.url}/#/r/web/delivery`);
    await viewer.getByRole('article', { name: 'Environment production' }).waitFor();
    const actions = viewer.locator('.env .actions button');
    assert.ok((await actions.count()) > 0);
    for (const b of await actions.all()) {
      assert.equal(await b.isDisabled(), true, `${await b.innerText()} is usable by a pull-only user`);
      assert.match((await b.getAttribute('title')) ?? '', /may not release|no earlier release|no release/);
    }
    assert.equal(await viewer.getByRole('button', { name: 'Roll back to this' }).count(), 0);
    await shoot(viewer, 'delivery-pull-only');
    await viewer.goto(`${s.url}/#/r/web/history`);
    await viewer.getByRole('button', { name: 'Restore' }).first().waitFor();
    for (const b of await viewer.getByRole('button', { name: 'Restore' }).all()) assert.equal(await b.isDisabled(), true, 'a pull-only user cannot restore a tag');
    const forgedRestore = await forge(viewer, '/api/v1/repositories/web/tags/latest/restore', { to: rel.releases.v1!.digest }, true);
    assert.equal(forgedRestore.status, 403, forgedRestore.text);
    const forged = await forge(viewer, '/api/v1/apps/web/releases', { environment: 'staging', ref: 'v2' }, true);
    assert.equal(forged.status, 403, forged.text);
    await viewerContext.close();

    // --- sign out: the session ends on the server, for every tab ------------------------------------------
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await tab.reload();
    await tab.getByRole('button', { name: 'Sign in' }).waitFor();
    const replay = await fetch(`${s.url}/api/v1/session`, { headers: { cookie: `wharf_session=${session.value}` } });
    assert.equal(replay.status, 401, 'the old cookie no longer works');
    await admin.close();
  });
});
