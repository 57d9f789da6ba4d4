// An in-process Wharf with authentication on, wired as `wharf serve` wires it (audit, /token, access
// policy), over a temp data dir; plus fixtures: users and tokens made through Accounts, an image pushed.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { AuditLog, AuditQuery, AuditRecord } from '../../src/audit/audit-log.js';
import { RegistryAudit } from '../../src/server/registry-audit.js';
import { Accounts } from '../../src/auth/accounts.js';
import { ensureAdmin } from '../../src/auth/bootstrap.js';
import { serveAuth } from '../../src/server/access-control.js';
import { TokenService } from '../../src/auth/token-service.js';
import { TEST_PASSWORD_COST } from '../support/server.js';
import { loadConfig } from '../../src/config.js';
import { digestOf } from '../../src/oci/digest.js';
import { OCI_MANIFEST } from '../../src/oci/media-types.js';
import { listen, serveHub, startingServer } from '../../src/server/server.js';
import type { ApiRoute } from '../../src/server/api.js';
import { openWharf, type Wharf } from '../../src/wharf.js';
import { databaseEnv, forgetDatabase } from '../support/database.js';

export const ADMIN_PASSWORD = 'admin-password-for-tests';

export interface AuthHub {
  url: string;
  dataDir: string;
  wharf: Wharf;
  accounts: Accounts;
  audit: AuditLog;
  /** the management routes of access control the hub serves beside hubRoutes (session, users, groups, grants, audit, tokens, keys) */
  authRoutes: ApiRoute[];
  /** a token service over the hub's own key, for minting tokens the tests need (expired, other service …) */
  tokens(options?: Partial<{ service: string; issuer: string }>): Promise<TokenService>;
  req(path: string, init?: RequestInit & { auth?: string }): Promise<Response>;
  /** how many passwords the server has checked with scrypt so far */
  passwordVerifications(): number;
  close(): Promise<void>;
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/**
 * `config` is the YAML of a config file (auth settings); the data dir and listen address are the harness's.
 * `now` is the clock of login throttling and remembered credentials, for tests that move time rather than wait.
 */
export async function startAuthHub(config = '', options: { now?: () => number } = {}): Promise<AuthHub> {
  const dataDir = await mkdtemp(join(tmpdir(), 'wharf-auth-'));
  const configFile = join(dataDir, 'wharf.yaml');
  await writeFile(configFile, config);
  const cfg = loadConfig({ flags: { data: dataDir, config: configFile }, env: { WHARF_PASSWORD_COST: String(TEST_PASSWORD_COST), ...(await databaseEnv(dataDir)) } });
  const log = pino({ level: 'silent' });
  const registryAudit = new RegistryAudit();
  const server = startingServer(log);
  const running = await listen(server, '127.0.0.1', 0);
  const wharf = await openWharf(cfg, registryAudit.events, undefined, { log, now: options.now, registryHost: new URL(running.url).host });
  const auth = wharf.auth;
  if (auth.services) await ensureAdmin(auth.services.store, auth.audit, cfg.data, log, { WHARF_ADMIN_PASSWORD: ADMIN_PASSWORD }, cfg.auth.passwordCost);
  const served = serveAuth(auth, cfg, log);
  registryAudit.attach(auth.audit, served.actorOf, log);
  serveHub(server, {
    wharf,
    log,
    access: served.access,
    tokenEndpoint: served.tokenEndpoint,
    authRoutes: served.routes,
    onResponse: registryAudit.observe,
    audit: { log: auth.audit, actorOf: served.actorOf },
  });
  const audit = wharf.audit;
  return {
    url: running.url,
    dataDir,
    wharf,
    audit,
    authRoutes: served.routes,
    passwordVerifications: () => auth.passwordVerifications!(),
    accounts: new Accounts(wharf.meta.auth, audit, { name: 'tester', kind: 'local', address: null }, cfg.auth.passwordCost),
    tokens: (o = {}) => TokenService.open(wharf.meta.signingKeys, dataDir, { service: cfg.auth.service, issuer: cfg.auth.issuer, accessTtlMs: cfg.auth.tokenTtl, refreshTtlMs: cfg.auth.refreshTokenTtl, ...o }),
    req: (path, init = {}) => {
      const { auth: authorization, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (authorization !== undefined) headers.set('authorization', authorization);
      return fetch(running.url + path, { ...rest, headers });
    },
    close: async () => {
      await running.close();
      await wharf.close();
      await rm(dataDir, { recursive: true, force: true });
      await forgetDatabase(dataDir);
    },
  };
}

export interface PushedImage {
  manifest: Buffer;
  digest: string;
  layer: string;
  config: string;
}

/** Pushes a one-layer image to `repo:tag` with the given credentials; asserts every step succeeds. */
export async function pushImage(hub: AuthHub, auth: string, repo: string, tag: string, seed = repo): Promise<PushedImage> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const layer = Buffer.from(`layer ${seed}`);
  for (const blob of [config, layer]) {
    const res = await hub.req(`/v2/${repo}/blobs/uploads/?digest=${digestOf(blob)}`, { method: 'POST', body: blob, auth });
    assert.equal(res.status, 201, await res.text());
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length }],
    }),
  );
  const res = await hub.req(`/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': OCI_MANIFEST }, auth });
  assert.equal(res.status, 201, await res.text());
  return { manifest, digest: digestOf(manifest), layer: digestOf(layer), config: digestOf(config) };
}

/** A Bearer token from the hub's /token endpoint, for `scope`, with Basic credentials. */
export async function bearer(hub: AuthHub, credentials: string | undefined, ...scopes: string[]): Promise<string> {
  const q = new URLSearchParams({ service: 'wharf' });
  for (const s of scopes) q.append('scope', s);
  const res = await hub.req(`/token?${q}`, credentials === undefined ? {} : { auth: credentials });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return `Bearer ${(JSON.parse(text) as { token: string }).token}`;
}

/** A member user (password `<name>-password`) with one grant; returns its Basic credentials. */
export async function member(hub: AuthHub, name: string, actions: string, pattern: string): Promise<string> {
  await hub.accounts.addUser(name, 'member', `${name}-password`);
  await hub.accounts.grant(name, actions, pattern);
  return basic(name, `${name}-password`);
}

/**
 * The audit rows of `query` that `keep` keeps, once there are `n` of them: a request's row is written after
 * its response, so this polls briefly (and returns what there is after a second).
 */
export async function auditRows(hub: AuthHub, query: AuditQuery, n: number, keep: (r: AuditRecord) => boolean = () => true): Promise<AuditRecord[]> {
  for (let i = 0; i < 50; i++) {
    const rows = (await hub.audit.list(query)).filter(keep);
    if (rows.length >= n) return rows;
    await new Promise((r) => setTimeout(r, 20));
  }
  return (await hub.audit.list(query)).filter(keep);
}
