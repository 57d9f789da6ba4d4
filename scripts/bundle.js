#!/usr/bin/env node
// Bundles the compiled CLI (dist/src, from tsc) into dist/bundle/cli/, what bin/wharf.js runs.
//
// Why: a Wharf process spends most of its start-up in Node's ES module loader, not in Wharf. `wharf serve` loads
// ~950 files (kysely alone is 289, zod 99, yaml 84), each resolved, stat-ed, read and compiled on its own. In a few
// files (a chunk per command, split at the CLI's lazy `import()`s, and shared chunks) a `serve` start and stop costs
// ~40 % less CPU on Node 20 and ~35 % less on Node 24, and so does a CLI command (docs/benchmarks.md, "Start-up").
// A command loads only its chunks: the S3 SDK, for one, only where the S3 store is configured.
// tsc still type-checks and emits dist/src, which the in-process tests import; the bundle is made from that output,
// so both run the same JavaScript.
//
// Paths that code finds from its own location keep working because the bundle sits as deep as the files it was made
// from (dist/bundle/cli/X.js, like dist/src/cli/X.js): web/ and package.json are `../../../` from either. The upload
// worker is an entry point of its own, beside the chunk that starts it (`new URL('./upload-worker.js', …)`).
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const outdir = join(root, 'dist', 'bundle', 'cli');

rmSync(join(root, 'dist', 'bundle'), { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { main: 'dist/src/cli/main.js', 'upload-worker': 'dist/src/storage/upload-worker.js' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Error names and `constructor.name` stay what the sources say when two modules' identifiers collide.
  keepNames: true,
  // node --enable-source-maps maps stack traces back to dist/src (and tsc's maps on to src/, when present).
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'none',
  logLevel: 'warning',
  external: [
    // Native addons, found by their packages at run time: better-sqlite3 (through `bindings`), and dockerode's
    // optional ssh2 → cpu-features. dockerode is loaded only by commands that reach an engine.
    'better-sqlite3',
    'dockerode',
    // pg's optional native driver, which Wharf never asks for.
    'pg-native',
  ],
  // CommonJS packages inside an ES module bundle still call require() for Node's built-ins.
  banner: { js: "import { createRequire as __wharfRequire } from 'node:module'; const require = __wharfRequire(import.meta.url);" },
});

