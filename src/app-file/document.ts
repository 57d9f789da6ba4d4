// The app file written back: as YAML or as plain data in its written form (durations as "30s"), for `wharf get`,
// the stored copy and the dry-run diff. Secrets appear as their sources, never values.
import { stringify } from 'yaml';
import type { AppFile } from './schema.js';

/** The app file as YAML, durations written back as "30s"; secrets appear as their sources, never values. */
export function stringifyAppFile(file: AppFile): string {
  return stringify(appFileDocument(file), { lineWidth: 0 });
}

const DURATION_KEYS = new Set(['delay', 'healthTimeout', 'monitor', 'stopTimeout', 'interval', 'timeout', 'startPeriod', 'drain']);

/** The app file as plain data in its written form (durations as text), for YAML output and diffs. */
export function appFileDocument(file: AppFile): unknown {
  const walk = (v: unknown, key?: string): unknown => {
    if (typeof v === 'number' && key !== undefined && DURATION_KEYS.has(key)) return formatDuration(v);
    if (Array.isArray(v)) return v.map((x) => walk(x));
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, walk(x, k)]));
    }
    return v;
  };
  return walk(file);
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms !== 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return ms === 0 ? '0s' : `${ms}ms`;
}
