// Debian's chromium driven by playwright-core for the web UI tests: where it is, how it starts, the hub a browser
// test drives (a real Wharf, an extra dockerd as the deploy target, chromium, started side by side and cleaned up
// after), signing in, requests forged from a signed-in page, and running an environment card's action through
// its confirmation dialog.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { daemonsUnavailable, startDaemons, type DaemonSet, type TestDaemon } from './dockerd.js';
import { runWharf, startWharf, withLogsOnFailure, type WharfServer } from './server.js';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const DESKTOP = { width: 1280, height: 860 };

/** Why the browser tests cannot run here, or undefined; under CI=true a missing browser throws instead. */
export function browserUnavailable(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const why = `${CHROMIUM} is not installed (apt-get install chromium)`;
  if (process.env.CI === 'true') throw new Error(`CI=true and the browser tests cannot run: ${why}`);
  return why;
}

/** What a browser test drives: the hub, its deploy target, chromium, and the `wharf` CLI signed in as admin. */
export interface BrowserHub {
  server: WharfServer;
  host: TestDaemon;
  browser: Browser;
  /** the test's temp dir (removed afterwards) */
  dir: string;
  /** runs `wharf …` as the signed-in admin; fails the test on a non-zero exit */
  wharf(args: string[], input?: string): Promise<string>;
  /**
   * Registers the deploy target as `host-1` for `app` and applies its app file: `environments` (YAML, the
   * block under `environments:`) after the rollout settings that suit the test images (quick stop and health).
   */
  applyApp(app: string, environments: string): Promise<void>;
  /** a new browser context (its own cookies) with a page signed in as `user` */
  signedIn(user: string, password: string): Promise<Page>;
  /** `Basic …` of a user, for raw HTTP requests */
  basic(user: string, password: string): string;
}

/**
 * Starts the hub, one extra dockerd and chromium at once, logs docker and the CLI in as admin, runs `body`, and
 * stops everything afterwards (the server's logs are added to a failure). Skips when the browser or the daemons
 * cannot run here.
 */
export async function withBrowserHub(t: TestContext, name: string, body: (hub: BrowserHub) => Promise<void>): Promise<void> {
  const why = browserUnavailable() ?? (await daemonsUnavailable());
  if (why) return t.skip(why);
  let daemons: DaemonSet | undefined;
  let server: WharfServer | undefined;
  let browser: Browser | undefined;
  const dir = await mkdtemp(join(tmpdir(), `wharf-${name}-`));
  try {
    let launched: Browser;
    [daemons, server, launched] = await Promise.all([startDaemons(1), startWharf(), chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true })]);
    browser = launched;
    const s = server;
    const host = daemons.daemons[0]!;
    await withLogsOnFailure(s, async () => {
      await s.login('docker');
      const env = { ...process.env, WHARF_SERVER: s.url, WHARF_CONFIG_DIR: join(dir, 'config') };
      const wharf = async (args: string[], input?: string) => {
        const r = await runWharf(args, { env, input, timeoutMs: 120_000 });
        assert.equal(r.code, 0, `wharf ${args.join(' ')}: ${r.stdout}\n${r.stderr}`);
        return r.stdout;
      };
      await wharf(['login', s.url, '-u', 'admin', '--password-stdin'], s.admin.password);
      await body({
        server: s,
        host,
        browser: launched,
        dir,
        wharf,
        async applyApp(app, environments) {
          const file = join(dir, `${app.replace(/\W/g, '-')}.yaml`);
          await writeFile(file, `app: ${app}\ncontainer: { stopTimeout: 2s }\nrollout: { parallelism: 1, healthTimeout: 20s, monitor: 300ms }\nenvironments:\n${environments}`);
          await wharf(['target', 'add', 'host-1', host.endpoint, '--apps', app]);
          await wharf(['apply', '-f', file]);
        },
        async signedIn(user, password) {
          const page = await (await launched.newContext({ viewport: DESKTOP })).newPage();
          await signIn(page, s.url, user, password);
          return page;
        },
        basic: (user, password) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
      });
    });
  } finally {
    await browser?.close();
    await daemons?.teardown();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function signIn(page: Page, url: string, user: string, password: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Repositories' }).waitFor();
}

/** A state-changing request from the page itself: the session cookie goes along, the CSRF header only if asked. */
export function forge(page: Page, path: string, body: unknown, withCsrf: boolean): Promise<{ status: number; text: string }> {
  return page.evaluate(
    async ({ path, body, withCsrf }) => {
      const csrf = /(?:^|;\s*)wharf_csrf=([^;]+)/.exec(document.cookie)?.[1] ?? '';
      const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', ...(withCsrf ? { 'x-csrf-token': csrf } : {}) }, body: JSON.stringify(body) });
      return { status: res.status, text: await res.text() };
    },
    { path, body, withCsrf },
  );
}

/** Runs one action of an environment card through its confirmation dialog; returns the dialog's final text. */
export async function act(page: Page, env: string, button: RegExp, opts: { ref?: string; deploy?: boolean } = {}): Promise<string> {
  const card = page.getByRole('article', { name: `Environment ${env}` });
  // A click is made at the button's place on the page: when the page reloaded by the previous action lays out anew
  // between Playwright's check and the press (a card grows by a line), the press lands beside the button and no
  // dialog opens (seen once in CI, the staging card clicked as the production card's deployment view came in).
  // A user clicks again, and so does this.
  for (let attempt = 1; ; attempt++) {
    await card.getByRole('button', { name: button }).click();
    try {
      await page.locator('dialog[open]').waitFor({ timeout: 5_000 });
      break;
    } catch (e) {
      if (attempt === 3) throw e;
    }
  }
  return confirmDialog(page, opts);
}

/** Confirms the open action dialog (a release's tag typed in first) and waits for its outcome; returns its text. */
export async function confirmDialog(page: Page, opts: { ref?: string; deploy?: boolean } = {}): Promise<string> {
  const dialog = page.locator('dialog[open]');
  if (opts.ref) await dialog.getByLabel('Tag or digest').fill(opts.ref);
  // The confirmation shows the digest change and the gates before the click.
  await dialog.getByRole('list', { name: 'Gates' }).waitFor();
  const deploy = dialog.getByLabel(/Deploy to \d+ target/);
  if (opts.deploy !== undefined && (await deploy.count()) > 0) await deploy.setChecked(opts.deploy);
  await dialog.locator('.buttons button:not(.secondary)').click();
  await dialog.getByRole('button', { name: 'Close', exact: true }).waitFor({ timeout: 120_000 });
  const text = await dialog.innerText();
  await dialog.getByRole('button', { name: 'Close', exact: true }).click();
  // Gone before the next action looks for its own dialog.
  await dialog.waitFor({ state: 'detached' });
  return text;
}
