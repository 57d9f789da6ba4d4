// First start: a data dir without users gets `admin`, with WHARF_ADMIN_PASSWORD or a generated password
// written to <data>/initial-admin-password (0600) — never into the log.
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit-log.js';
import type { AuthMetadata } from '../metadata/metadata.js';
import { DEFAULT_PASSWORD_COST, generatePassword, hashPassword, scryptParams } from './password.js';

export const ADMIN_USER = 'admin';
export const INITIAL_PASSWORD_FILE = 'initial-admin-password';

export async function ensureAdmin(
  store: AuthMetadata,
  audit: AuditLog,
  dataDir: string,
  log: Logger,
  env: NodeJS.ProcessEnv = process.env,
  /** scrypt's cost (log2 N) for the admin's password: config auth.passwordCost */
  passwordCost: number = DEFAULT_PASSWORD_COST,
): Promise<void> {
  if ((await store.userCount()) > 0) return;
  const fromEnv = env.WHARF_ADMIN_PASSWORD;
  const password = fromEnv !== undefined && fromEnv !== '' ? fromEnv : generatePassword();
  if (!(await store.addUser(ADMIN_USER, 'admin', await hashPassword(password, scryptParams(passwordCost))))) return; // another process was first
  await audit.record({ actor: { name: 'wharf', kind: 'local', address: null }, action: 'user.add', target: ADMIN_USER, result: 'ok', detail: { role: 'admin', initial: true } });
  if (password === fromEnv) {
    log.info({ user: ADMIN_USER }, 'created the admin user with the password from WHARF_ADMIN_PASSWORD');
    return;
  }
  const file = join(dataDir, INITIAL_PASSWORD_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${password}\n`, { mode: 0o600 });
  await rename(tmp, file);
  log.warn({ user: ADMIN_USER, file }, `created the admin user; its password is in ${file} (change it with wharf user passwd admin)`);
}
