// The access decision: may this caller (proved by these credentials) do these actions on this repository?
// Plain values in, a principal or a refusal out; server/ reads the credentials off each request (see
// server/access.ts). `openAccess` (no auth configured) lets everyone do everything, for tests and local use.

export type Action = 'pull' | 'push' | 'delete' | 'release' | 'admin';

export interface Principal {
  /** user or token name; null for anonymous */
  name: string | null;
  kind: 'user' | 'token' | 'anonymous';
  /**
   * How the caller proved who it is: no credential, Basic (password or token secret), a Bearer access token
   * (which carries claims), or the browser session cookie. Absent when nothing was checked (open access).
   */
  credential?: 'none' | 'basic' | 'bearer' | 'session';
}

/**
 * The browser session a request claims: its cookie's id and, for a request that changes something, the CSRF
 * token it sent (header) and the one in its readable cookie (double submit). See auth/sessions.ts.
 */
export interface SessionClaim {
  id: string;
  /** a method other than GET, HEAD or OPTIONS: the CSRF token must match */
  changes: boolean;
  csrfHeader: string | undefined;
  csrfCookie: string | undefined;
}

/**
 * What a caller presented, as plain values. The costly parts are asked for only when needed: the session
 * claim only without an Authorization header, the address for throttling and logins, the realm for a refusal.
 */
export interface Credentials {
  /** the Authorization header as sent (`Basic …`, `Bearer …`), if any */
  readonly authorization: string | undefined;
  /** the session cookie's claim, undefined when the request carries none */
  session(): SessionClaim | undefined;
  /** the client's address (through trusted proxies) */
  address(): string;
  /** where clients fetch access tokens (`<external url>/token`): the realm of the challenge */
  realm(): string;
  /** set by the check as soon as it knows who is calling, whether it then allows or refuses (the audit names both) */
  caller?: Principal;
}

/**
 * The scope a Bearer access token must carry for a registry-wide action (`authorize` with no repository):
 * `wharf:admin:*` for registry-wide administration (webhooks, retention, garbage collection, accounts …).
 * The /token endpoint issues it only when asked for it by name, and only to a caller who holds the
 * action registry-wide (the admin role, or a grant on `*`).
 */
export function registryScope(action: Action): string {
  return `wharf:${action}:*`;
}

export interface AccessCheck {
  /**
   * Resolves the caller from `credentials` and checks that it may perform `actions` on `repository`, or registry-wide when
   * repository is undefined. `environment` narrows a 'release' check to one environment (a CI token may
   * release to staging but not production). Throws RegistryError UNAUTHORIZED (with the challenge) or DENIED.
   *
   * Two things must both allow each action:
   * - the caller's grants (its role, its own and its groups' grants, a robot token's scope), and
   * - when the caller came with a Bearer access token, that token's claims: a token never grants more than it
   *   was issued for. A repository action needs `repository:<name>:<action>` (or `release:<environment>`), a
   *   registry-wide one `registryScope(action)`. A token lacking the claim gets 401 insufficient_scope with
   *   a challenge naming the scope to fetch, when the caller could get it; otherwise 403.
   * Basic credentials (a password, a robot token's secret) carry no claims: their grants alone decide.
   *
   * `actions: []` asks only "is this a caller who proved who it is?": it is for reads that show nothing a
   * signed-in caller may not see. A route that changes anything must name the action it needs.
   *
   * `explicit` (a protected environment): only a grant naming `release:<environment>` counts — neither the admin
   * role nor a grant of `admin` or of plain `release`.
   */
  authorize(credentials: Credentials, repository: string | undefined, actions: Action[], environment?: string, explicit?: boolean): Promise<Principal>;
  /**
   * `GET /v2/_catalog`: a caller who proved who it is, as for `authorize(…, undefined, [])`; one that came with a
   * Bearer token needs the token to claim `registry:catalog:*` (as Distribution asks), so a token issued to pull one
   * repository does not list the others. The listing is then filtered by `canPull`.
   */
  authorizeCatalog(credentials: Credentials): Promise<Principal>;
  /** Whether the principal may pull `repository` (filters the catalog). */
  canPull(principal: Principal, repository: string): boolean;
  /**
   * Whether the principal may do `action` (for showing only what the server would allow); absent: yes.
   * `explicit` as for authorize: a protected environment counts only a grant naming `release:<environment>`.
   */
  allowed?(principal: Principal, repository: string | undefined, action: Action, environment?: string, explicit?: boolean): boolean;
}

export const openAccess: AccessCheck = {
  async authorize() {
    return { name: null, kind: 'anonymous' };
  },
  async authorizeCatalog() {
    return { name: null, kind: 'anonymous' };
  },
  canPull() {
    return true;
  },
};
