// The fingerprint of what an environment's plan asks the engines to run (container spec, replicas), kept as a
// label on every container and Swarm service Wharf starts: a deploy of the release that already runs is a no-op
// only while the running containers were made from the same plan. Secret values are not part of it (only names).
import { createHash } from 'node:crypto';
import type { EnvironmentPlan } from '../app-file/plan.js';

export function specFingerprint(plan: EnvironmentPlan): string {
  const wanted = { container: plan.container, replicas: plan.replicas, swarm: plan.swarm?.service ?? null, proxy: plan.proxy };
  return createHash('sha256').update(canonical(wanted)).digest('hex').slice(0, 20);
}

/** JSON with object keys sorted, so that the same plan always gives the same text. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
