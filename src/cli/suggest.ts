// "Did you mean": the known word closest to what was typed, when it is close enough to be a typo.

/** Damerau-free edit distance (insert, delete, substitute), small words only. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

/** The closest of `known` to `typed`, if few enough letters differ (two, or a third of a long word); or one it starts. */
export function closest(typed: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = distance(typed, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  if (best !== undefined && bestDistance <= (typed.length >= 3 ? Math.max(2, Math.floor(typed.length / 3)) : 1)) return best;
  for (const k of known) if (typed.length >= 3 && k.startsWith(typed)) return k;
  return undefined;
}
