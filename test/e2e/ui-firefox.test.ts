// The web UI in Firefox (Debian's firefox-esr, driven by puppeteer-core over WebDriver BiDi) against a real
// Wharf: the main flows of test/e2e/ui.test.ts, leanly — sign in, a new tab stays signed in, a repository →
// an image pushed with docker (layers, platform, attestation), a change made through a form (a user added,
// with the CSRF token the page sends; the same request without it refused), keyboard use, sign out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { IN_TOTO_PAYLOAD_TYPE, signEnvelope } from '../../src/attest/dsse.js';
import { keyIdOf } from '../../src/attest/signers.js';
import { predicateTypeOf, statementFor } from '../../src/attest/statement.js';
import { mustRun, succeeds } from '../support/command.js';
import { BASE_IMAGE, ensureBaseImage } from '../support/images.js';
import { startWharf, withLogsOnFailure, type WharfServer } from '../support/server.js';

const FIREFOX = '/usr/bin/firefox-esr';

async function unavailable(): Promise<string | undefined> {
  const why = !existsSync(FIREFOX) ? `${FIREFOX} is not installed (apt-get install firefox-esr)` : !(await succeeds('docker', ['version'])) ? 'docker is not available' : undefined;
  if (why && process.env.CI === 'true') throw new Error(`CI=true and the Firefox test cannot run: ${why}`);
  return why;
}

// Polled by time, not by animation frame: a tab in the background (the first one, once a second is open) gets no frames.
/** Waits for an element matching `scope` (CSS) whose text contains `text` (a string: in any case) and returns its text. */
async function textOf(page: Page, scope: string, text: string | RegExp): Promise<string> {
  const handle = await page
    .waitForFunction(
    (scope, source, flags) => {
      const re = new RegExp(source, flags);
      return [...document.querySelectorAll(scope)].find((e) => re.test((e as HTMLElement).innerText)) ?? false;
    },
    { timeout: 20_000, polling: 100 },
    scope,
    typeof text === 'string' ? text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : text.source,
    typeof text === 'string' ? 'i' : text.flags, // innerText is as shown: headings are upper-cased by the style sheet
    )
    .catch(async (e: unknown) => {
      const shown = await page.evaluate((scope) => [...document.querySelectorAll(scope)].map((e) => (e as HTMLElement).innerText).join('\n---\n'), scope);
      throw new Error(`${String(e)}: no ${scope} shows ${String(text)} at ${page.url()}; shown:\n${shown.slice(0, 2000)}`);
    });
  return (handle as unknown as { evaluate(f: (e: Element) => string): Promise<string> }).evaluate((e) => (e as HTMLElement).innerText);
}

/** Clicks the first `selector` whose text is `text`. */
async function click(page: Page, selector: string, text: string): Promise<void> {
  const el = await page.waitForFunction((selector, text) => [...document.querySelectorAll(selector)].find((e) => (e as HTMLElement).innerText.trim() === text) ?? false, { timeout: 20_000, polling: 100 }, selector, text);
  await (el as unknown as { click(): Promise<void> }).click();
}

async function signIn(page: Page, url: string, user: string, password: string): Promise<void> {
  await page.goto(url);
  await page.waitForSelector('input[name=username]');
  await page.type('input[name=username]', user);
  await page.type('input[name=password]', password);
  // Enter submits the form: no mouse needed.
  await page.keyboard.press('Enter');
}

test('the web UI in Firefox: sign in, new tab, repository → image, a change with CSRF, keyboard, sign out', { timeout: 180_000 }, async (t) => {
  const why = await unavailable();
  if (why) return t.skip(why);
  // Where the time goes (reported as diagnostics): the test must stay lean in CI.
  const started = Date.now();
  const mark = (what: string) => t.diagnostic(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  let server: WharfServer | undefined;
  let browser: Browser | undefined;
  let launching: Promise<Browser> | undefined;
  const dir = await mkdtemp(join(tmpdir(), 'wharf-ui-firefox-'));
  try {
    // Firefox starts (seconds) while the hub starts and the image is pushed.
    launching = puppeteer.launch({ browser: 'firefox', executablePath: FIREFOX, headless: true, userDataDir: join(dir, 'profile') });
    launching.then((b) => (browser = b)).catch(() => undefined);
    const s = (server = await startWharf());
    await withLogsOnFailure(s, async () => {
      // --- an image pushed with docker, and an SBOM attestation of it --------------------------------------
      await ensureBaseImage('docker');
      await s.login('docker');
      const ref = `${s.host}/fx/web:v1`;
      await mustRun('docker', ['tag', BASE_IMAGE, ref]);
      try {
        await mustRun('docker', ['push', ref], { timeoutMs: 120_000 });
      } finally {
        await mustRun('docker', ['rmi', ref]);
      }
      const head = await fetch(`${s.url}/v2/fx/web/manifests/v1`, { method: 'HEAD', headers: { authorization: s.authorization, accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' } });
      const digest = head.headers.get('docker-content-digest')!;
      const key = generateKeyPairSync('ed25519');
      const api = (path: string, body: unknown) =>
        fetch(`${s.url}${path}`, { method: 'POST', headers: { authorization: s.authorization, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const signer = await api('/api/v1/signers', { name: 'sbom-bot', publicKey: key.publicKey.export({ type: 'spki', format: 'pem' }).toString(), apps: ['fx/*'], kinds: ['sbom'], environments: ['*'] });
      assert.equal(signer.status, 201, await signer.text());
      const statement = statementFor('fx/web', digest, predicateTypeOf('sbom'), { packages: [{ name: 'busybox', version: '1.36' }] });
      const envelope = signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), { keyid: keyIdOf(key.publicKey), privateKey: key.privateKey });
      const attested = await api('/api/v1/apps/fx/web/attestations', { envelope });
      assert.equal(attested.status, 201, await attested.text());

      mark('hub started, image pushed and attested');
      const firefox = (browser = await launching!);
      mark('Firefox ready');
      const version = await firefox.version();
      t.diagnostic(`browser: ${version}`);
      assert.match(version, /^firefox\//i);
      const page = await firefox.newPage();
      await page.setViewport({ width: 1280, height: 860 });

      // --- sign in (a wrong password first); the session cookie is out of scripts' reach ------------------------
      await signIn(page, s.url, 'admin', 'not-the-password');
      await textOf(page, '.error', 'Wrong user name or password.');
      await page.reload();
      await signIn(page, s.url, 'admin', s.admin.password);
      await textOf(page, 'h1', 'Repositories');
      const cookies = await firefox.cookies();
      const session = cookies.find((c) => c.name === 'wharf_session');
      assert.ok(session, cookies.map((c) => c.name).join(' '));
      assert.equal(session.httpOnly, true);
      assert.equal(session.sameSite, 'Strict');
      assert.equal(await page.evaluate(() => document.cookie.includes('wharf_session')), false);

      mark('signed in');
      // --- a new tab is signed in too --------------------------------------------------------------------
      const tab = await firefox.newPage();
      await tab.goto(s.url);
      await textOf(tab, 'header.top', /admin/);
      await textOf(tab, 'a', 'fx/web');
      // Back to the first tab: a background tab's timers and frames are throttled.
      await page.bringToFront();

      // --- repository → image: layers, platform, the verified attestation ------------------------------------
      await click(page, 'a', 'fx/web');
      const tags = await textOf(page, 'table.list', /v1/);
      assert.match(tags, /linux\/amd64/);
      await page.click('table.list tbody tr a');
      await textOf(page, 'h3', 'Layers');
      const image = await textOf(page, 'main', /✔ verified\s+sbom/);
      assert.match(image, /linux\/amd64/);
      assert.match(image, new RegExp(digest.slice(7, 19)));

      mark('image shown');
      // An app without environments says what to run next.
      await page.goto(`${s.url}/#/r/fx%2Fweb/delivery`);
      assert.match(await textOf(page, '.empty', 'No environments yet'), /wharf env create fx\/web staging/);

      // --- a change made in the page (the form sends the CSRF token) and one forged without it ---------------------
      await page.goto(`${s.url}/#/admin/users`);
      await page.waitForSelector('form input[name=name]');
      await page.type('form input[name=name]', 'fx-user');
      await page.type('form input[name=password]', 'fx-user-password');
      await click(page, 'form button[type=submit]', 'Add user');
      await textOf(page, 'table.list tbody tr', 'fx-user');
      const signedIn = await fetch(`${s.url}/api/v1/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'fx-user', password: 'fx-user-password' }) });
      assert.ok(signedIn.status === 200 || signedIn.status === 201, `the user added in Firefox signs in: ${signedIn.status} ${await signedIn.text()}`);
      const forged = await page.evaluate(async () => {
        const res = await fetch('/api/v1/users', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'mallory', password: 'mallory-password' }) });
        return { status: res.status, text: await res.text() };
      });
      assert.equal(forged.status, 403, forged.text);
      assert.match(forged.text, /CSRF/);

      // --- keyboard: Tab reaches the sections and Enter follows a link ------------------------------------------
      await page.goto(`${s.url}/#/`);
      await textOf(page, 'a', 'fx/web');
      let reached = '';
      for (let i = 0; i < 30 && reached !== 'fx/web'; i++) {
        await page.keyboard.press('Tab');
        reached = await page.evaluate(() => (document.activeElement as HTMLElement | null)?.innerText?.trim() ?? '');
      }
      assert.equal(reached, 'fx/web', 'the repository link is reachable with Tab');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => location.hash.startsWith('#/r/'), { timeout: 20_000, polling: 100 });

      mark('user added, forged request refused, keyboard');
      // --- sign out: every tab is signed out, the old cookie is dead ----------------------------------------
      await click(page, 'button', 'Sign out');
      await page.waitForSelector('input[name=username]');
      await tab.bringToFront();
      await tab.reload();
      await tab.waitForSelector('input[name=username]');
      const replay = await fetch(`${s.url}/api/v1/session`, { headers: { cookie: `wharf_session=${session.value}` } });
      assert.equal(replay.status, 401);
      mark('signed out');
    });
  } finally {
    await (browser ?? (await launching?.catch(() => undefined)))?.close();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
