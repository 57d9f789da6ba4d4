#!/usr/bin/env node
// Runs every compiled *.test.js under dist/test with Node's test runner.
// `--unit` leaves out test/e2e and test/deploy (real docker, podman, skopeo, extra dockerd hosts). Works on Node 20, 22 and 24
// (Node 20 takes no globs, so the file list is built here).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const unitOnly = process.argv.includes('--unit');
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (unitOnly && (p === join('dist', 'test', 'e2e') || p === join('dist', 'test', 'deploy'))) continue;
      walk(p);
    } else if (name.endsWith('.test.js')) files.push(p);
  }
}
walk(join('dist', 'test'));
const extra = process.argv.slice(2).filter((a) => a !== '--unit');
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', ...extra, ...files], { stdio: 'inherit' });
process.exit(r.status ?? 1);
