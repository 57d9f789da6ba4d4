// The account verbs (user, group, grant, audit) against a running hub's admin API (--server), with the same
// method names as the local Accounts, so each verb is written once for both modes.
import type { AuditRecord } from '../audit/audit-log.js';
import type { GrantInfo, UserInfo } from '../auth/accounts.js';
import type { Role } from '../metadata/metadata.js';
import { ApiError, clientFor, type ApiClient } from './client.js';
import { CliError } from './cli-error.js';

const enc = encodeURIComponent;

/** Every page of a cursor-paginated list. */
const all = <T>(client: ApiClient, path: string): Promise<T[]> => client.items<T>(path);

export class RemoteAccounts {
  constructor(private readonly client: ApiClient) {}

  async addUser(name: string, role: Role, password: string): Promise<void> {
    await this.client.request('POST', '/api/v1/users', { name, role, password });
  }
  async setPassword(name: string, password: string): Promise<void> {
    await this.client.request('PATCH', `/api/v1/users/${enc(name)}`, { password });
  }
  async removeUser(name: string): Promise<void> {
    await this.client.request('DELETE', `/api/v1/users/${enc(name)}`);
  }
  users(): Promise<UserInfo[]> {
    return all(this.client, '/api/v1/users');
  }
  async addToGroup(group: string, users: string[]): Promise<string[]> {
    return (await this.client.request<{ added: string[] }>('POST', `/api/v1/groups/${enc(group)}/members`, { users })).added;
  }
  async removeFromGroup(group: string, users: string[]): Promise<number> {
    if (users.length === 0) {
      const g = (await this.groups()).find((x) => x.group === group);
      await this.client.request('DELETE', `/api/v1/groups/${enc(group)}`);
      return g?.members.length ?? 0;
    }
    let n = 0;
    for (const u of users) {
      try {
        await this.client.request('DELETE', `/api/v1/groups/${enc(group)}/members/${enc(u)}`);
        n++;
      } catch (e) {
        if (!(e instanceof ApiError && e.status === 404)) throw e;
      }
    }
    return n;
  }
  groups(): Promise<{ group: string; members: string[] }[]> {
    return all(this.client, '/api/v1/groups');
  }
  async grant(subject: string, actions: string, pattern: string): Promise<string[]> {
    return (await this.client.request<{ added: string[] }>('POST', '/api/v1/grants', { subject, actions, pattern })).added;
  }
  async revoke(subject: string, actions: string | undefined, pattern: string): Promise<number> {
    const before = (await this.grants()).find((g) => g.subject === subject && g.pattern === pattern)?.actions.length ?? 0;
    const q = new URLSearchParams({ subject, pattern, ...(actions === undefined ? {} : { actions }) });
    await this.client.request('DELETE', `/api/v1/grants?${q}`);
    const after = (await this.grants()).find((g) => g.subject === subject && g.pattern === pattern)?.actions.length ?? 0;
    return before - after;
  }
  async endSessions(): Promise<void> {
    throw new CliError('wharf user logout acts on the local data dir (--data); the API has no route for it yet', 2);
  }
  grants(): Promise<GrantInfo[]> {
    return all(this.client, '/api/v1/grants');
  }

  /** The newest `limit` rows, oldest first (as the local log lists them). */
  async audit(q: { repository?: string; since?: number; action?: string; limit: number }): Promise<AuditRecord[]> {
    const rows: AuditRecord[] = [];
    let cursor: string | null = null;
    do {
      const params = new URLSearchParams({ limit: String(Math.min(500, q.limit - rows.length)) });
      if (q.repository) params.set('repository', q.repository);
      if (q.since !== undefined) params.set('since', String(q.since));
      if (q.action) params.set('action', q.action);
      if (cursor) params.set('cursor', cursor);
      const page: { items: AuditRecord[]; next: string | null } = await this.client.request('GET', `/api/v1/audit?${params}`);
      rows.push(...page.items);
      cursor = page.next;
    } while (cursor && rows.length < q.limit);
    return rows.reverse();
  }
}

/** The admin client of `--server URL` (credentials from `wharf login` or WHARF_TOKEN). */
export function remoteAccounts(server: string): RemoteAccounts {
  if (server === '') throw new CliError('--server needs a URL', 2);
  return new RemoteAccounts(clientFor(server));
}
