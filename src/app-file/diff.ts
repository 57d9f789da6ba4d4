// What `wharf apply` would change: a located diff between the stored app file and a new one (for --dry-run).
import { appFileDocument } from './document.js';
import { formatPath } from './parse.js';
import type { AppFile } from './schema.js';

export interface AppFileChange {
  /** e.g. `environments.production.replicas` */
  path: string;
  kind: 'added' | 'removed' | 'changed';
  before?: unknown;
  after?: unknown;
}

/** Changes from `before` (undefined: the app is new) to `after`, in document order. */
export function diffAppFiles(before: AppFile | undefined, after: AppFile): AppFileChange[] {
  const changes: AppFileChange[] = [];
  walk(before === undefined ? {} : appFileDocument(before), appFileDocument(after), [], changes);
  return changes;
}

/** One line per change: `+ path: value`, `- path: value`, `~ path: old → new`. */
export function formatChanges(changes: AppFileChange[]): string {
  if (changes.length === 0) return 'no changes';
  return changes
    .map((c) =>
      c.kind === 'added' ? `+ ${c.path}: ${show(c.after)}` : c.kind === 'removed' ? `- ${c.path}: ${show(c.before)}` : `~ ${c.path}: ${show(c.before)} → ${show(c.after)}`,
    )
    .join('\n');
}

function walk(a: unknown, b: unknown, path: PropertyKey[], out: AppFileChange[]): void {
  if (a === undefined && b === undefined) return;
  if (a === undefined) return void out.push({ path: formatPath(path), kind: 'added', after: b });
  if (b === undefined) return void out.push({ path: formatPath(path), kind: 'removed', before: a });
  if (path[path.length - 1] === 'targets' && isNameList(a) && isNameList(b)) return diffTargets(a, b, path, out);
  if (isMapping(a) && isMapping(b)) {
    const keys = [...Object.keys(b), ...Object.keys(a).filter((k) => !(k in b))];
    for (const k of keys) walk(a[k], b[k], [...path, k], out);
    return;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path: formatPath(path), kind: 'changed', before: a, after: b });
}

/** Targets are matched by name, so removing the first of three hosts reads as one removal, not three edits. */
function diffTargets(a: string[], b: string[], path: PropertyKey[], out: AppFileChange[]): void {
  b.forEach((t, i) => walk(a.find((x) => x === t), t, [...path, i], out));
  a.forEach((t, i) => {
    if (!b.includes(t)) out.push({ path: formatPath([...path, i]), kind: 'removed', before: t });
  });
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isNameList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((t) => typeof t === 'string');
}

function show(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}
