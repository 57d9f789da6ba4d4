// The engine boundary, read from the source's imports so that it stays true: only src/engine/ talks to Docker
// (dockerode), engine/ imports nothing above it (deploy, pipeline, server, …), and pipeline/ reaches engines
// through engine/, never through deploy/'s code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../support/server.js';

const SRC = join(REPO_ROOT, 'src');

function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Every module a file imports (static, dynamic, type-only and re-exports), as written. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"`;]*?\bfrom\s*'([^']+)'|\bimport\s*\(\s*'([^']+)'\s*\)|(?:^|\n)\s*import\s+'([^']+)'/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

const files = sources(SRC).map((f) => ({ path: relative(SRC, f), imports: importsOf(f) }));

test('the import reader sees the imports (this test can fail)', () => {
  const connection = files.find((f) => f.path === join('engine', 'connection.ts'));
  assert.ok(connection, 'src/engine/connection.ts exists');
  assert.ok(connection.imports.includes('dockerode'), connection.imports.join(', '));
  assert.ok(connection.imports.includes('./endpoint.js'));
});

test('only engine/ imports dockerode', () => {
  const outside = files.filter((f) => !f.path.startsWith(`engine/`) && f.imports.some((i) => i === 'dockerode' || i.startsWith('dockerode/')));
  assert.deepEqual(outside.map((f) => f.path), []);
});

test('engine/ imports only node:, dockerode and engine/ itself', () => {
  const above = files
    .filter((f) => f.path.startsWith('engine/'))
    .flatMap((f) => f.imports.filter((i) => !(i.startsWith('node:') || i === 'dockerode' || /^\.\/[^/]+$/.test(i))).map((i) => `${f.path} -> ${i}`));
  assert.deepEqual(above, []);
});

test('pipeline/ takes nothing from deploy/ but its result types', () => {
  const code = files
    .filter((f) => f.path.startsWith('pipeline/'))
    .flatMap((f) => {
      const text = readFileSync(join(SRC, f.path), 'utf8');
      return [...text.matchAll(/^import (?!type )[^;]*from '\.\.\/deploy\/[^']+'/gm)].map((m) => `${f.path}: ${m[0]}`);
    });
  assert.deepEqual(code, []);
});
