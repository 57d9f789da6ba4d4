// Printing command results: aligned columns for people, JSON (arrays for lists) with --json for scripts.

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export function printTable(rows: Record<string, unknown>[], columns: [header: string, key: string][]): void {
  const cells = rows.map((r) => columns.map(([, k]) => (r[k] === null || r[k] === undefined ? '-' : String(r[k]))));
  const widths = columns.map(([h], i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === vals.length - 1 ? v : v.padEnd(widths[i]!))).join('  ');
  process.stdout.write(line(columns.map(([h]) => h)) + '\n');
  for (const c of cells) process.stdout.write(line(c) + '\n');
}

export function shortDigest(d: string | null | undefined): string {
  if (!d) return '-';
  const [alg, hex] = d.split(':');
  return `${alg}:${hex!.slice(0, 12)}`;
}
