// What a grant or a token scope may allow: the action vocabulary (`release` optionally narrowed to one
// environment, `release:staging`) and the Docker scope syntax `repository:<pattern>:<action>,<action>`. Pure.
import type { Action } from './access.js';

export const ACTIONS: readonly Action[] = ['pull', 'push', 'delete', 'release', 'admin'];

/**
 * The claim type of registry-wide actions in an access token: `wharf:admin:*` (see registryScope in
 * auth/access.ts). Repository actions are claimed as Distribution does, `repository:<name>:<actions>`.
 */
export const REGISTRY_CLAIM_TYPE = 'wharf';

/** An action as granted: one of ACTIONS, or `release:<environment>`. */
export type GrantedAction = Action | `release:${string}`;

const ENVIRONMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function isGrantedAction(value: string): value is GrantedAction {
  if ((ACTIONS as readonly string[]).includes(value)) return true;
  const [head, env] = splitOnce(value, ':');
  return head === 'release' && env !== undefined && ENVIRONMENT.test(env);
}

/** `release:staging` → release to staging; any other action stands for itself. */
export function splitGrantedAction(a: GrantedAction): { action: Action; environment?: string } {
  return a.startsWith('release:') ? { action: 'release', environment: a.slice('release:'.length) } : { action: a as Action };
}

/** `pull,push` or `*` (every action) → a de-duplicated action list; throws naming the bad action. */
export function parseActionList(list: string): GrantedAction[] {
  const out = new Set<GrantedAction>();
  for (const raw of list.split(',')) {
    const a = raw.trim();
    if (a === '*') ACTIONS.forEach((x) => out.add(x));
    else if (isGrantedAction(a)) out.add(a);
    else throw new Error(`unknown action ${JSON.stringify(a)} (use ${ACTIONS.join(', ')}, release:<environment> or *)`);
  }
  if (out.size === 0) throw new Error('no actions given');
  return [...out];
}

/**
 * Whether a granted action covers a requested one. `admin` covers everything on its pattern; `release`
 * covers every environment, `release:x` only a release to x.
 */
export function covers(granted: string, wanted: Action, environment?: string): boolean {
  if (granted === wanted || granted === 'admin') return true;
  return wanted === 'release' && environment !== undefined && granted === `release:${environment}`;
}

/** Repository globs: the name characters of OCI repository names plus `*` and `?`. */
const REPOSITORY_PATTERN = /^[a-z0-9*?]([a-z0-9._\-/*?]*[a-z0-9*?])?$/;

export function isRepositoryPattern(value: string): boolean {
  return REPOSITORY_PATTERN.test(value) && !value.includes('//');
}

export interface Scope {
  /** a repository name (when requested by a client) or a glob (in a robot token) */
  pattern: string;
  actions: GrantedAction[];
}

/**
 * Parses `repository:myapp/*:pull,push`. Repository names and patterns never contain ':', so the first
 * colon after the name ends it and the actions may themselves contain colons (`release:staging`).
 */
export function parseRepositoryScope(scope: string): Scope {
  const m = /^repository:([^:]+):(.+)$/.exec(scope.trim());
  if (!m || !isRepositoryPattern(m[1]!)) throw new Error(`invalid scope ${JSON.stringify(scope)} (expected repository:<pattern>:<actions>)`);
  return { pattern: m[1]!, actions: parseActionList(m[2]!) };
}

export function formatScope(s: Scope): string {
  return `repository:${s.pattern}:${s.actions.join(',')}`;
}

function splitOnce(value: string, sep: string): [string, string | undefined] {
  const i = value.indexOf(sep);
  return i < 0 ? [value, undefined] : [value.slice(0, i), value.slice(i + 1)];
}
