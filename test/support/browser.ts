// Debian's chromium driven by playwright-core for the web UI tests: where it is, how it starts, signing in, and
// running an environment card's action through its confirmation dialog.
import { existsSync } from 'node:fs';
import type { Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Why the browser tests cannot run here, or undefined; under CI=true a missing browser throws instead. */
export function browserUnavailable(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  const why = `${CHROMIUM} is not installed (apt-get install chromium)`;
  if (process.env.CI === 'true') throw new Error(`CI=true and the browser tests cannot run: ${why}`);
  return why;
}

export async function signIn(page: Page, url: string, user: string, password: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Repositories' }).waitFor();
}

/** Runs one action of an environment card through its confirmation dialog; returns the dialog's final text. */
export async function act(page: Page, env: string, button: RegExp, opts: { ref?: string; deploy?: boolean } = {}): Promise<string> {
  const card = page.getByRole('article', { name: `Environment ${env}` });
  await card.getByRole('button', { name: button }).click();
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
  return text;
}
