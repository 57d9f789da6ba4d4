// Whether what a command names exists on the server: an empty answer for an app, tag or environment that is not
// there is a typo to report (exit 1), not an empty table.
import type { Environment } from '../delivery/releases.js';
import { ApiError, type ApiClient } from './client.js';
import { CliError } from './cli-error.js';

/** Whether the registry has the repository (its tag list answers); unknown when the caller may not look. */
export async function repositoryExists(client: ApiClient, repo: string): Promise<boolean | undefined> {
  try {
    await client.request('GET', `/v2/${repo.split('/').map(encodeURIComponent).join('/')}/tags/list?n=1`);
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return false;
    return undefined;
  }
}

/** Fails with "no app named …" when the app has neither a repository nor environments. */
export async function requireApp(client: ApiClient, app: string, environments?: Environment[]): Promise<void> {
  if (environments && environments.length > 0) return;
  if ((await repositoryExists(client, app)) === false) throw new CliError(`no app named ${app} on ${client.server} (nothing pushed to ${app}, no environments)`);
}

/** Fails naming the app's environments when `env` is not one of them. */
export function requireEnvironment(app: string, env: string, environments: Environment[]): Environment {
  const found = environments.find((e) => e.name === env);
  if (found) return found;
  const names = environments.map((e) => e.name);
  throw new CliError(`${app} has no environment ${env}${names.length ? ` (it has ${names.join(', ')})` : " (create one with 'wharf env create')"}`);
}

/**
 * The environments a promotion into `env` must come through, nearest first (requiresPromotionFrom, followed
 * upstream): staging → production gives [staging] for production.
 */
export function upstreamOf(env: string, environments: Environment[]): string[] {
  const byName = new Map(environments.map((e) => [e.name, e]));
  const chain: string[] = [];
  for (let e = byName.get(env)?.requiresPromotionFrom; e && !chain.includes(e); e = byName.get(e)?.requiresPromotionFrom) chain.push(e);
  return chain;
}
