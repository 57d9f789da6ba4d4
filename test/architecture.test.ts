// The house's rules, read from the code's own imports, so they stay true: each layer imports only the layers below
// it, no files import each other in a loop, and each outside system is reached from exactly one folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const src = join(root, 'src');

/**
 * The floors, from the ground up (docs/architecture.md draws them). A folder may import its own floor's pure
 * modules only where it says so below, and any floor under it; never one above.
 */
const FLOORS: readonly (readonly string[])[] = [
  ['oci', 'units'], // pure knowledge: digests, references, manifests, media types; durations and sizes
  ['storage', 'metadata', 'engine'], // the ports' adapters: blob bytes, every SQL statement, the Docker Engine
  ['registry', 'audit', 'auth', 'webhooks', 'attest', 'delivery', 'app-file', 'deploy', 'pipeline'], // the domain
  ['config'], // one schema for file + env + flags, validated at the boundary with the domain's own rules
  ['hub'], // the type of the assembled hub: the services the server and the CLI are handed
  ['server'], // every HTTP route, inbound and outbound
  ['wharf', 'lost-database'], // the composition root, and its refusal of a lost database (shared with the CLI's local verbs)
  ['cli'], // the wharf command
];
const floorOf = new Map(FLOORS.flatMap((names, floor) => names.map((n) => [n, floor] as const)));

/** Outside systems and the one folder allowed to reach each. */
const GATES: { pattern: RegExp; owner: string[]; what: string }[] = [
  // cli/ is the API's client (cli/client.ts sends the requests the CLI's verbs make, over node:http as it once did
  // over fetch); nothing below the top floor speaks HTTP but server/.
  { pattern: /^node:https?$/, owner: ['server', 'cli'], what: 'HTTP' },
  { pattern: /^(kysely|better-sqlite3|pg)$/, owner: ['metadata'], what: 'SQL' },
  { pattern: /^dockerode$/, owner: ['engine'], what: 'the Docker Engine' },
  { pattern: /^@aws-sdk\//, owner: ['storage'], what: 'S3' },
];

interface Import {
  from: string; // src-relative file
  to: string; // src-relative file, or a package name
  local: boolean;
  /** `import type …`: gone after compilation, a dependency on a shape only */
  typeOnly: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.split('\\').join('/'))
    .sort();
}

/** `import … from 'x'`, `export … from 'x'`, `import 'x'` and `import('x')`, types included: a type is a dependency too. */
function importsOf(file: string): Import[] {
  const text = readFileSync(join(src, file), 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  const found: Import[] = [];
  for (const m of text.matchAll(/(?:^|[;\s])((?:import|export)\s[^'"`;]*?)from\s*['"]([^'"]+)['"]|(?:^|[;\s])import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    const spec = m[2] ?? m[3] ?? m[4]!;
    const typeOnly = m[1] !== undefined && /^(?:import|export)\s+type\s/.test(m[1]);
    if (spec.startsWith('.')) {
      const to = normalize(join(dirname(file), spec)).split('\\').join('/').replace(/\.js$/, '.ts');
      found.push({ from: file, to, local: true, typeOnly });
    } else {
      found.push({ from: file, to: spec, local: false, typeOnly });
    }
  }
  return found;
}

/** A file's folder under src/ (`deploy/rollout.ts` → deploy), or its own name for a file at the top (`wharf.ts` → wharf). */
function place(file: string): string {
  const slash = file.indexOf('/');
  return slash < 0 ? file.replace(/\.ts$/, '') : file.slice(0, slash);
}

const files = sourceFiles(src);
const imports = files.flatMap(importsOf);

test('every file of src/ stands on a known floor', () => {
  const unplaced = [...new Set(files.map(place))].filter((p) => !floorOf.has(p));
  assert.deepEqual(unplaced, [], `place these in FLOORS (and in docs/architecture.md): ${unplaced.join(', ')}`);
});

test('every relative import names a file that exists', () => {
  const known = new Set(files);
  const missing = imports.filter((i) => i.local && !known.has(i.to)).map((i) => `${i.from} -> ${i.to}`);
  assert.deepEqual(missing, []);
});

test('no import runs back up: each floor imports only the floors below it', () => {
  const up = imports
    .filter((i) => i.local && place(i.from) !== place(i.to))
    .filter((i) => (floorOf.get(place(i.to)) ?? Infinity) > (floorOf.get(place(i.from)) ?? -1))
    .map((i) => `${i.from} -> ${i.to}`);
  assert.deepEqual(up, []);
});

test('the adapters floor does not lean on itself: storage, metadata and engine stand apart', () => {
  const sideways = imports
    .filter((i) => i.local && place(i.from) !== place(i.to))
    .filter((i) => floorOf.get(place(i.from)) === 1 && floorOf.get(place(i.to)) === 1)
    .map((i) => `${i.from} -> ${i.to}`);
  assert.deepEqual(sideways, []);
});

test('each outside system is reached from one folder only', () => {
  const breaches: string[] = [];
  for (const gate of GATES) {
    for (const i of imports) {
      if (!i.local && gate.pattern.test(i.to) && !gate.owner.includes(place(i.from))) breaches.push(`${i.from} reaches ${gate.what} (${i.to}); only ${gate.owner.join(', ')}/ may`);
    }
  }
  assert.deepEqual(breaches, []);
});

test('the pipeline runs against a deploy only through the API: it takes nothing from deploy/ but result types', () => {
  const code = imports.filter((i) => i.local && place(i.from) === 'pipeline' && place(i.to) === 'deploy' && !i.typeOnly).map((i) => `${i.from} -> ${i.to}`);
  assert.deepEqual(code, []);
});

/** Tarjan's strongly connected components over a graph given as adjacency lists; a component of two or more is a circle. */
function circles(nodes: string[], edges: Map<string, Set<string>>): string[][] {
  let index = 0;
  const order = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    order.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!order.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, order.get(w)!));
      }
    }
    if (low.get(v) === order.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const n of nodes) if (!order.has(n)) visit(n);
  return found;
}

function graph(key: (file: string) => string): Map<string, Set<string>> {
  const edges = new Map<string, Set<string>>();
  for (const i of imports) {
    if (!i.local) continue;
    const a = key(i.from);
    const b = key(i.to);
    if (a === b) continue;
    if (!edges.has(a)) edges.set(a, new Set());
    edges.get(a)!.add(b);
  }
  return edges;
}

test('no files import each other in a loop', () => {
  assert.deepEqual(circles(files, graph((f) => f)), []);
});

test('no folders import each other in a loop (the domain folders included)', () => {
  assert.deepEqual(circles([...new Set(files.map(place))], graph(place)), []);
});

test('the rules catch what they are written for', () => {
  // A test that cannot fail is worse than none: feed the circle finder and the floor table known-bad shapes.
  const loop = new Map([
    ['a', new Set(['b'])],
    ['b', new Set(['c'])],
    ['c', new Set(['a'])],
  ]);
  assert.deepEqual(circles(['a', 'b', 'c'], loop), [['a', 'b', 'c']]);
  assert.ok(floorOf.get('metadata')! < floorOf.get('delivery')!);
  assert.ok(floorOf.get('delivery')! < floorOf.get('server')!);
  assert.equal(place('deploy/rollout.ts'), 'deploy');
  assert.equal(place('wharf.ts'), 'wharf');
  assert.ok(imports.length > 200, 'the import reader finds the imports');
  assert.ok(imports.some((i) => !i.local && i.to === 'kysely'), 'package imports are read');
  assert.ok(imports.some((i) => i.typeOnly) && imports.some((i) => !i.typeOnly), 'type-only imports are told apart');
});
