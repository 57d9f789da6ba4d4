// The access-check port the HTTP layer calls before every registry action. The auth module provides the
// real policy; `openAccess` (no auth configured) lets everyone do everything, for tests and local use.
import type { IncomingMessage } from 'node:http';

export type Action = 'pull' | 'push' | 'delete' | 'release' | 'admin';

export interface Principal {
  /** user or token name; null for anonymous */
  name: string | null;
  kind: 'user' | 'token' | 'anonymous';
}

export interface AccessCheck {
  /**
   * Resolves the caller and checks that it may perform `actions` on `repository` (or on the registry when
   * repository is undefined). `environment` narrows a 'release' check to one environment (a CI token may
   * release to staging but not production). Throws RegistryError UNAUTHORIZED (with the challenge) or DENIED.
   * `explicit` (a protected environment): only a grant naming `release:<environment>` counts — neither the admin
   * role nor a grant of `admin` or of plain `release`.
   */
  authorize(req: IncomingMessage, repository: string | undefined, actions: Action[], environment?: string, explicit?: boolean): Promise<Principal>;
  /** Whether the principal may pull `repository` (filters the catalog). */
  canPull(principal: Principal, repository: string): boolean;
}

export const openAccess: AccessCheck = {
  async authorize() {
    return { name: null, kind: 'anonymous' };
  },
  canPull() {
    return true;
  },
};
