// Access control as the hub holds it: the access decision and, with authentication on, the services behind it
// (policies, authenticator, tokens, sessions). The composition root (wharf.ts) builds it; server/access-control.ts
// serves it over HTTP. With auth disabled (local development only) everyone may do everything.
import type { AuditLog } from '../audit/audit-log.js';
import type { AuthMetadata } from '../metadata/metadata.js';
import type { AccessCheck, Principal } from './access.js';
import type { Authenticator } from './authenticator.js';
import type { PolicySource } from './policy-source.js';
import type { TokenService } from './token-service.js';
import type { Sessions } from './sessions.js';

export interface Auth {
  access: AccessCheck;
  audit: AuditLog;
  /**
   * A short-lived token that may only pull `repository`, for the engines a deployment drives (sent to them as
   * X-Registry-Auth). Its subject is the user who deploys (or admin for robot- and schedule-triggered deploys),
   * so revoking that user revokes the token; its access claim limits it to pull. Absent when auth is off.
   */
  pullToken?: PullToken;
  /** how many passwords were checked with scrypt so far (absent when auth is off) */
  passwordVerifications?(): number;
  /** what the /token endpoint and the management routes of access control work with; absent when auth is off */
  services?: AuthServices;
}

export type PullToken = (repository: string, actor: string | null) => Promise<string>;

export interface AuthServices {
  store: AuthMetadata;
  policies: PolicySource;
  authn: Authenticator;
  tokens: TokenService;
  sessions: Sessions;
  /** whether a principal may administer the hub (registry-wide admin) */
  isAdmin(principal: Principal): boolean;
}

/** Pull tokens signed by `tokens`, their subject the deploying user if the current policy knows them, else admin. */
export function pullTokens(policies: PolicySource, tokens: TokenService): PullToken {
  return async (repository, actor) => {
    const policy = await policies.current();
    const subject = actor !== null && policy.users.has(actor) ? actor : 'admin';
    const generation = policy.users.get(subject)?.tokenGeneration;
    return (await tokens.issueAccess(subject, [{ type: 'repository', name: repository, actions: ['pull'] }], Date.now(), generation)).token;
  };
}
