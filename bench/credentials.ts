// How the bench's clients authenticate to a registry with authentication on, as docker and skopeo do: HTTP Basic
// with a user's password, or a Bearer token fetched from the registry's /token with those credentials.
import type { RawConnection } from './rawhttp.js';

export type Headers = Record<string, string>;

/** A user of the registry under test; absent for a registry without authentication. */
export interface Login {
  user: string;
  password: string;
}

/** How a figure's clients prove who they are. */
export type Scheme = 'bearer' | 'basic';

export function basicAuthorization(login: Login): Headers {
  return { Authorization: `Basic ${Buffer.from(`${login.user}:${login.password}`).toString('base64')}` };
}

function tokenPath(repo: string, actions: string[]): string {
  return `/token?service=wharf&scope=${encodeURIComponent(`repository:${repo}:${actions.join(',')}`)}`;
}

function tokenOf(status: number, body: Buffer | undefined, what: string): Headers {
  const text = body?.toString('utf8') ?? '';
  if (status !== 200) throw new Error(`${what}: HTTP ${status}: ${text.slice(0, 300)}`);
  const { token } = JSON.parse(text) as { token?: string };
  if (!token) throw new Error(`${what}: no token in the answer`);
  return { Authorization: `Bearer ${token}` };
}

/** A Bearer token for `actions` on `repo` over a connection of the caller's (timed with the work it belongs to). */
export async function bearerOver(connection: RawConnection, login: Login, repo: string, actions: string[]): Promise<Headers> {
  const res = await connection.request('GET', tokenPath(repo, actions), basicAuthorization(login), true);
  return tokenOf(res.status, res.body, `GET /token for ${repo}`);
}

/**
 * The Authorization header for `actions` on `repo`: none without a login, the Basic credentials, or a fresh Bearer
 * token (fetched on a connection of its own, outside whatever is timed).
 */
export async function authorization(url: string, login: Login | undefined, scheme: Scheme, repo: string, actions: string[]): Promise<Headers> {
  if (!login) return {};
  if (scheme === 'basic') return basicAuthorization(login);
  const res = await fetch(`${url}${tokenPath(repo, actions)}`, { headers: basicAuthorization(login) });
  return tokenOf(res.status, Buffer.from(await res.arrayBuffer()), `GET /token for ${repo}`);
}
