// The persistence boundary, read from the imports so it stays true: only metadata/ talks to the database (kysely,
// better-sqlite3, pg), and metadata/ imports no domain folder (only the pure oci/ below it).
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../support/server.js';

const SRC = join(REPO_ROOT, 'src');
const DATABASE_PACKAGES = /^(kysely|better-sqlite3|pg)(\/|$)/;

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(path)));
    else if (e.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Every module a file imports or re-exports, type-only ones included. */
function importsOf(text: string): string[] {
  const specifiers = [...text.matchAll(/^\s*(?:import|export)\b[^'";]*?from\s*['"]([^'"]+)['"]/gm), ...text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm), ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)];
  return specifiers.map((m) => m[1]!);
}

test('only metadata/ imports a database package', async () => {
  const offenders: string[] = [];
  for (const file of await sources(SRC)) {
    const rel = relative(SRC, file);
    if (rel.startsWith('metadata/')) continue;
    for (const spec of importsOf(await readFile(file, 'utf8'))) if (DATABASE_PACKAGES.test(spec)) offenders.push(`${rel} imports ${spec}`);
  }
  assert.deepEqual(offenders, []);
});

test('metadata/ imports no domain folder', async () => {
  const offenders: string[] = [];
  for (const file of await sources(join(SRC, 'metadata'))) {
    for (const spec of importsOf(await readFile(file, 'utf8'))) {
      if (spec.startsWith('../') && !spec.startsWith('../oci/')) offenders.push(`${relative(SRC, file)} imports ${spec}`);
    }
  }
  assert.deepEqual(offenders, []);
});

test('the checks see imports: metadata/ does import kysely', async () => {
  const specs = importsOf(await readFile(join(SRC, 'metadata', 'store.ts'), 'utf8'));
  assert.ok(specs.includes('kysely'), specs.join(', '));
  assert.ok(specs.includes('./registry-store.js'));
});
