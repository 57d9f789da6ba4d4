// Opens the local data dir (--data / WHARF_DATA, --config) for the account verbs — user, group, token,
// grant, audit — which act on the database directly, beside a running server if there is one.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import type { Actor, AuditLog } from '../audit/audit-log.js';
import type { Accounts } from '../auth/accounts.js';
import { CliError } from './cli-error.js';
import { remoteAccounts } from './remote-accounts.js';

export const DATA_FLAGS = {
  data: { type: 'string' },
  config: { type: 'string' },
} as const;

/** The account verbs also administer a running hub over its API: --server URL instead of --data. */
export const ADMIN_FLAGS = { ...DATA_FLAGS, server: { type: 'string' } } as const;

export const ADMIN_HELP = `  --server URL   administer a running hub over its API (credentials of 'wharf login', or WHARF_TOKEN)
`;

export const DATA_HELP = `  --data DIR     the data directory (env WHARF_DATA, default ./data); the server may be running
  --config FILE  YAML config file (env WHARF_CONFIG)`;

/** The operator at this terminal, as the audit log names them. */
export function localActor(): Actor {
  let name = 'unknown';
  try {
    name = userInfo().username;
  } catch {
    // no passwd entry (some containers)
  }
  return { name, kind: 'local', address: null };
}

/** The accounts of --server's hub, or of the local data dir. */
export async function withAccounts<T>(flags: { data?: string; config?: string; server?: string }, fn: (accounts: AccountsPort) => Promise<T>): Promise<T> {
  if (flags.server !== undefined) {
    if (flags.data !== undefined) throw new CliError('pass --server or --data, not both', 2);
    return fn(remoteAccounts(flags.server));
  }
  return withLocalData(flags, ({ accounts }) => fn(accounts));
}

/** What user, group and grant need, served by the local Accounts and by RemoteAccounts alike. */
export type AccountsPort = Pick<Accounts, 'addUser' | 'setPassword' | 'removeUser' | 'users' | 'addToGroup' | 'removeFromGroup' | 'groups' | 'grant' | 'revoke' | 'grants' | 'endSessions'>;

export async function withLocalData<T>(
  flags: { data?: string; config?: string },
  fn: (ctx: { accounts: Accounts; audit: AuditLog }) => Promise<T>,
): Promise<T> {
  // Loaded here, not above: the same verbs with --server need none of it (the config schema, the database driver
  // and the account services were most of such a command's start-up).
  const [{ loadConfig }, { openMetadataStore }, { AuditLog }, { AccountError, Accounts }] = await Promise.all([
    import('../config.js'),
    import('../metadata/open.js'),
    import('../audit/audit-log.js'),
    import('../auth/accounts.js'),
  ]);
  let config;
  try {
    config = loadConfig({ flags: { data: flags.data, config: flags.config } });
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
  requireDataDir(config.data);
  // As `wharf serve` does: a lost SQLite database beside stored blobs is refused before anything writes to it.
  if (!config.db && !config.storage.s3) {
    const { EmptyDatabaseError, refuseLostSqlite } = await import('../lost-database.js');
    await refuseLostSqlite(config.data).catch((e: unknown) => {
      throw e instanceof EmptyDatabaseError ? new CliError(`refusing to open the data: ${e.message}`) : e;
    });
  }
  // The database alone, not the whole hub (wharf.ts): these verbs read and write accounts and the audit log only.
  const meta = await openMetadataStore(config);
  try {
    const audit = new AuditLog(meta.audit);
    return await fn({ accounts: new Accounts(meta.auth, audit, localActor(), config.auth.passwordCost), audit });
  } catch (e) {
    if (e instanceof AccountError) throw new CliError(e.message);
    throw e;
  } finally {
    await meta.close();
  }
}

/** Local verbs act on an existing data directory: a mistyped --data must not "pass" on a new empty one. */
export function requireDataDir(dir: string, database = false): void {
  if (!existsSync(dir) || (database && !existsSync(join(dir, 'wharf.db')))) {
    throw new CliError(`no Wharf data at ${dir} (pass --data or set WHARF_DATA)`, 2);
  }
}

/** The whole of stdin, without the final line break (for --password-stdin). */
export async function readStdinSecret(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function formatTime(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
