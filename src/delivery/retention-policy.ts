// Retention rules, without I/O: given one repository's tags, manifests and protected release digests, which
// tags and untagged manifests go. retention.ts gathers the state and applies the plan.
import { matchesGlob } from '../oci/pattern.js';

import type { ManifestState, RetentionPolicy, TagState } from '../metadata/records.js';

export type { ManifestState, RetentionPolicy, TagState };

export interface RepositoryState {
  repository: string;
  tags: TagState[];
  manifests: ManifestState[];
  /** the current and last K releases of the repository's environments */
  protectedDigests: ReadonlySet<string>;
  /** environment names: those tags follow the current release and are never touched */
  reservedTags: ReadonlySet<string>;
}

export interface PlannedTag {
  repository: string;
  tag: string;
  digest: string;
  reason: string;
}

export interface PlannedManifest {
  repository: string;
  digest: string;
  reason: string;
}

export interface RetentionPlan {
  tags: PlannedTag[];
  /** in a safe deletion order: an index before its children, a referrer before its subject */
  manifests: PlannedManifest[];
}

/** cosign-style tags (`sha256-<hex>.sig`, `.att`, `.sbom`) and the referrers fallback tag follow their subject. */
const REFERRER_TAG = /^(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})(\.[a-z]+)?$/;

export function policiesFor(policies: readonly RetentionPolicy[], repository: string): RetentionPolicy[] {
  return policies.filter((p) => matchesGlob(p.repositories, repository));
}

/**
 * The plan for one repository under `policies` (those matching it). Every matching policy applies:
 * - A tag is governed by the policies with keepLast or keepWithin whose tag glob matches it. A governed tag
 *   stays when any of them keeps it (among its keepLast newest, or pushed within keepWithin); otherwise it
 *   goes — except environment tags, cosign-style tags (they go with their subject), and tags pointing at a
 *   protected release: the known-good tag of a rollback target stays available.
 * - A manifest without tags (after the tag deletions) goes once untagged for the largest untaggedOlderThan
 *   of the matching policies; a tag deleted now makes it untagged as of now. Never a protected release, nor
 *   anything a kept manifest reaches: the children of a kept index, the referrers of a kept manifest.
 */
export function planRetention(state: RepositoryState, policies: readonly RetentionPolicy[], now: number): RetentionPlan {
  const { repository } = state;
  const tagRules = policies.filter((p) => p.keepLast !== undefined || p.keepWithin !== undefined);
  const tags: PlannedTag[] = [];
  if (tagRules.length > 0) {
    const counted = state.tags
      .filter((t) => !state.reservedTags.has(t.name) && !REFERRER_TAG.test(t.name))
      .sort((a, b) => b.pushedAt - a.pushedAt || (a.name < b.name ? -1 : 1));
    const governed = new Map<string, RetentionPolicy>();
    const kept = new Set<string>();
    for (const p of tagRules) {
      const matching = counted.filter((t) => matchesGlob(p.tags, t.name));
      matching.forEach((t, i) => {
        if (!governed.has(t.name)) governed.set(t.name, p);
        if ((p.keepLast !== undefined && i < p.keepLast) || (p.keepWithin !== undefined && now - t.pushedAt <= p.keepWithin)) kept.add(t.name);
      });
    }
    for (const t of counted) {
      const p = governed.get(t.name);
      if (!p || kept.has(t.name) || state.protectedDigests.has(t.digest)) continue;
      tags.push({ repository, tag: t.name, digest: t.digest, reason: tagReason(p) });
    }
  }

  const untaggedRules = policies.filter((p) => p.untaggedOlderThan !== undefined).map((p) => p.untaggedOlderThan!);
  if (untaggedRules.length === 0) return { tags, manifests: [] };
  const threshold = Math.max(...untaggedRules);

  const deletedTags = new Set(tags.map((t) => t.tag));
  const tagged = new Set(state.tags.filter((t) => !deletedTags.has(t.name)).map((t) => t.digest));
  const untaggedNow = new Set(tags.map((t) => t.digest));
  const byDigest = new Map(state.manifests.map((m) => [m.digest, m]));
  const referrers = new Map<string, string[]>();
  for (const m of state.manifests) if (m.subject !== null) referrers.set(m.subject, [...(referrers.get(m.subject) ?? []), m.digest]);

  const age = (m: ManifestState) => now - Math.max(m.createdAt, m.untaggedAt ?? 0, untaggedNow.has(m.digest) ? now : 0);
  const kept = new Set<string>();
  const queue: string[] = [];
  const keep = (digest: string) => {
    if (byDigest.has(digest) && !kept.has(digest)) {
      kept.add(digest);
      queue.push(digest);
    }
  };
  for (const m of state.manifests) {
    if (tagged.has(m.digest) || state.protectedDigests.has(m.digest) || age(m) < threshold) keep(m.digest);
  }
  while (queue.length > 0) {
    const digest = queue.pop()!;
    for (const child of byDigest.get(digest)!.children) keep(child);
    for (const referrer of referrers.get(digest) ?? []) keep(referrer);
  }
  const doomed = state.manifests.filter((m) => !kept.has(m.digest));
  const manifests = deletionOrder(doomed).map((m) => ({
    repository,
    digest: m.digest,
    reason: `untagged for ${formatAge(age(m))} (policy: ${formatDuration(threshold)})`,
  }));

  // A cosign-style tag goes with the manifest it names.
  const going = new Set(manifests.map((m) => m.digest));
  for (const t of state.tags) {
    const m = REFERRER_TAG.exec(t.name);
    if (m && going.has(`${m[1]}:${m[2]}`) && !deletedTags.has(t.name)) tags.push({ repository, tag: t.name, digest: t.digest, reason: `its subject ${m[1]}:${m[2]} is deleted` });
  }
  return { tags, manifests };
}

function tagReason(p: RetentionPolicy): string {
  const rules = [
    p.keepLast !== undefined ? `among the ${p.keepLast} newest tags matching ${p.tags}` : '',
    p.keepWithin !== undefined ? `pushed within ${formatDuration(p.keepWithin)}` : '',
  ].filter(Boolean);
  return rules.length === 1 ? `not ${rules[0]}` : `neither ${rules.join(' nor ')}`;
}

/** Manifests pointing at others (an index at its children, a referrer at its subject) come first. */
function deletionOrder(doomed: ManifestState[]): ManifestState[] {
  const inSet = new Map(doomed.map((m) => [m.digest, m]));
  const targets = (m: ManifestState) => [...m.children, ...(m.subject === null ? [] : [m.subject])].filter((d) => inSet.has(d) && d !== m.digest);
  const pointedAt = new Map<string, number>();
  for (const m of doomed) for (const t of targets(m)) pointedAt.set(t, (pointedAt.get(t) ?? 0) + 1);
  const ready = doomed.filter((m) => !pointedAt.get(m.digest));
  const out: ManifestState[] = [];
  for (let next = 0; next < ready.length; next++) {
    const m = ready[next]!;
    out.push(m);
    for (const t of targets(m)) {
      const n = pointedAt.get(t)! - 1;
      pointedAt.set(t, n);
      if (n === 0) ready.push(inSet.get(t)!);
    }
  }
  // Content addressing rules out cycles; should one appear, its members still go, last.
  const placed = new Set(out.map((m) => m.digest));
  return [...out, ...doomed.filter((m) => !placed.has(m.digest))];
}

const UNITS: [string, number][] = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** Exactly, in the largest unit that divides it: 604800000 → "7d", 90000 → "90s" (config syntax). */
export function formatDuration(ms: number): string {
  for (const [unit, size] of UNITS) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}

/** Roughly, for people: 1.5 days → "1.5d". */
export function formatAge(ms: number): string {
  for (const [unit, size] of UNITS) if (ms >= size) return `${Number((ms / size).toFixed(1))}${unit}`;
  return `${Math.max(0, Math.round(ms))}ms`;
}
