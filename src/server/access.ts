// The access-check port the HTTP layer calls before every registry and management action. The auth module
// provides the real policy; `openAccess` (no auth configured) lets everyone do everything, for tests and local use.
import type { IncomingMessage } from 'node:http';

export type Action = 'pull' | 'push' | 'delete' | 'release' | 'admin';

export interface Principal {
  /** user or token name; null for anonymous */
  name: string | null;
  kind: 'user' | 'token' | 'anonymous';
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
   * Resolves the caller and checks that it may perform `actions` on `repository`, or registry-wide when
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
  authorize(req: IncomingMessage, repository: string | undefined, actions: Action[], environment?: string, explicit?: boolean): Promise<Principal>;
  /** Whether the principal may pull `repository` (filters the catalog). */
  canPull(principal: Principal, repository: string): boolean;
  /** Whether the principal may do `action` (for showing only what the server would allow); absent: yes. */
  allowed?(principal: Principal, repository: string | undefined, action: Action, environment?: string): boolean;
}

export const openAccess: AccessCheck = {
  async authorize() {
    return { name: null, kind: 'anonymous' };
  },
  canPull() {
    return true;
  },
};
