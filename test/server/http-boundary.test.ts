// The HTTP boundary of the one-way house (issue 15), read from the source's own imports: only server/ speaks
// HTTP (node:http, node:https), and no domain folder imports server/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { REPO_ROOT } from '../support/server.js';

const SRC = join(REPO_ROOT, 'src');
const DOMAIN = ['auth', 'audit', 'attest', 'delivery', 'deploy', 'pipeline', 'registry', 'webhooks', 'storage', 'metadata', 'oci', 'engine'];

/** Every import and export-from of each source file, as written, by path under src/. */
function imports(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of readdirSync(SRC, { recursive: true }) as string[]) {
    if (!f.endsWith('.ts')) continue;
    const text = readFileSync(join(SRC, f), 'utf8');
    const specs = [...text.matchAll(/(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] ?? m[2]!);
    out.set(f.split('\\').join('/'), specs);
  }
  return out;
}

const folderOf = (path: string) => (path.includes('/') ? path.slice(0, path.indexOf('/')) : path);

test('only server/ imports node:http or node:https', () => {
  const offenders: string[] = [];
  for (const [file, specs] of imports()) {
    if (folderOf(file) === 'server') continue;
    for (const s of specs) if (/^(node:)?https?$/.test(s)) offenders.push(`${file} -> ${s}`);
  }
  assert.deepEqual(offenders, []);
});

test('no domain folder imports server/', () => {
  const offenders: string[] = [];
  const all = imports();
  assert.ok(all.size > 100, 'the source tree was read');
  for (const [file, specs] of all) {
    if (!DOMAIN.includes(folderOf(file))) continue;
    for (const s of specs) {
      if (!s.startsWith('.')) continue;
      const target = relative(SRC, normalize(join(SRC, dirname(file), s))).split('\\').join('/');
      if (folderOf(target) === 'server') offenders.push(`${file} -> ${target}`);
    }
  }
  assert.deepEqual(offenders, []);
});
