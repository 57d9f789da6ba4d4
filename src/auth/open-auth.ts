// Assembles access control from the config: the policy source, the token service (key in the data dir), the
// authenticator with its cache and login limits, browser sessions and the access decision. server/access-control.ts
// serves them over HTTP. With auth disabled (local development only) everyone may do everything.
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/audit-log.js';
import type { Config } from '../config.js';
import type { AuthMetadata, Metadata } from '../metadata/metadata.js';
import { openAccess, type AccessCheck, type Principal } from './access.js';
import { AccessPolicy, Caller } from './access-policy.js';
import { parseSubject } from './accounts.js';
import { Authenticator } from './authenticator.js';
import { ensureAdmin } from './bootstrap.js';
import { LoginLimiter } from './login-limiter.js';
import type { PolicyGrant } from './policy.js';
import { PolicySource } from './policy-source.js';
import { TokenService } from './token-service.js';
import { Sessions } from './sessions.js';

/** How long a browser session lasts from sign-in. */
const SESSION_TTL_MS = 12 * 3600_000;

export interface Auth {
  access: AccessCheck;
  audit: AuditLog;
  /**
   * A short-lived token that may only pull `repository`, for the engines a deployment drives (sent to them as
   * X-Registry-Auth). Its subject is the user who deploys (or admin for robot- and schedule-triggered deploys),
   * so revoking that user revokes the token; its access claim limits it to pull. Absent when auth is off.
   */
  pullToken?(repository: string, actor: string | null): Promise<string>;
  /** how many passwords were checked with scrypt so far (absent when auth is off) */
  passwordVerifications?(): number;
  /** what the /token endpoint and the management routes of access control work with; absent when auth is off */
  services?: AuthServices;
}

export interface AuthServices {
  store: AuthMetadata;
  policies: PolicySource;
  authn: Authenticator;
  tokens: TokenService;
  sessions: Sessions;
  /** whether a principal may administer the hub (registry-wide admin) */
  isAdmin(principal: Principal): boolean;
}

export function configGrants(auth: Config['auth']): PolicyGrant[] {
  return auth.grants.flatMap((g) => {
    const s = parseSubject(g.to);
    return g.actions.map((action) => ({ subjectKind: s.kind, subject: s.name, pattern: g.repositories, action }));
  });
}

/** What access control is built on: the hub's config, its audit log and its database (a Wharf has all three). */
export interface AuthGround {
  config: Config;
  audit: AuditLog;
  meta: Metadata;
}

export interface OpenAuthOptions {
  /** the clock of login throttling and of remembered credentials (tests move it instead of waiting) */
  now?: () => number;
}

export async function openAuth(wharf: AuthGround, log: Logger, env: NodeJS.ProcessEnv = process.env, options: OpenAuthOptions = {}): Promise<Auth> {
  const { config } = wharf;
  const audit = wharf.audit;
  if (!config.auth.enabled) {
    log.warn('authentication is DISABLED (auth.enabled: false / WHARF_AUTH=off): anyone who can reach this server may push, pull and delete');
    return { access: openAccess, audit };
  }

  const store = wharf.meta.auth;
  await ensureAdmin(store, audit, config.data, log, env);
  const policies = new PolicySource(store, {
    configGrants: configGrants(config.auth),
    anonymousPull: config.auth.anonymousPull,
    refreshMs: config.auth.policyRefresh,
  });
  const tokens = await TokenService.open(config.data, {
    service: config.auth.service,
    issuer: config.auth.issuer,
    accessTtlMs: config.auth.tokenTtl,
    refreshTtlMs: config.auth.refreshTokenTtl,
  });
  const failures = config.auth.loginFailures;
  const limiter = new LoginLimiter(
    {
      perUser: failures.perUser,
      perAddress: failures.perAddress,
      delayMs: failures.delay,
      maxDelayMs: failures.maxDelay,
      maxAddressDelayMs: failures.maxAddressDelay,
      windowMs: failures.window,
    },
    options.now,
  );
  const authn = new Authenticator(policies, tokens, limiter, audit, log, { cacheTtlMs: config.auth.credentialCacheTtl, now: options.now });
  const sessions = new Sessions(wharf.meta.sessions, authn, policies, audit, { ttlMs: SESSION_TTL_MS });
  const access = new AccessPolicy(policies, authn, { service: config.auth.service }, sessions);
  const isAdmin = (p: Principal) => p instanceof Caller && p.policy.allows(p.identity, undefined, 'admin');
  return {
    access,
    services: { store, policies, authn, tokens, sessions, isAdmin },
    audit,
    passwordVerifications: () => authn.passwordVerifications,
    pullToken: async (repository, actor) => {
      const policy = await policies.current();
      const subject = actor !== null && policy.users.has(actor) ? actor : 'admin';
      const generation = policy.users.get(subject)?.tokenGeneration;
      return (await tokens.issueAccess(subject, [{ type: 'repository', name: repository, actions: ['pull'] }], Date.now(), generation)).token;
    },
  };
}
