#!/usr/bin/env node
// Bundles the compiled CLI (dist/src, from tsc) into dist/bundle/cli/, what bin/wharf.js runs; and, in a checkout,
// the compiled tests into dist/bundle/test/ (below).
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
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const outdir = join(root, 'dist', 'bundle', 'cli');

/** What both bundles share: ES modules for Node 20 and later, split into shared chunks. */
const common = {
  absWorkingDir: root,
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
  // CommonJS packages inside an ES module bundle still call require() for Node's built-ins.
  banner: { js: "import { createRequire as __wharfRequire } from 'node:module'; const require = __wharfRequire(import.meta.url);" },
};
const external = [
  // Native addons, found by their packages at run time: better-sqlite3 (through `bindings`), and dockerode's
  // optional ssh2 → cpu-features. dockerode is loaded only by commands that reach an engine.
  'better-sqlite3',
  'dockerode',
  // pg's optional native driver, which Wharf never asks for.
  'pg-native',
];

rmSync(join(root, 'dist', 'bundle'), { recursive: true, force: true });
await build({
  ...common,
  entryPoints: { main: 'dist/src/cli/main.js', 'upload-worker': 'dist/src/storage/upload-worker.js' },
  outdir,
  external,
});

// The tests, where they were compiled (a checkout; the image's build stage has none): every dist/test/**/*.test.js
// is an entry point of one bundle with shared chunks in dist/bundle/test/, which scripts/test.js runs in place of the
// file when it is at least as new. A test file otherwise loads Wharf and its packages module by module, up to ~1,000
// of them, in each of the ~150 processes of a suite: on Node 20 the bundle takes ~0.2 CPU s off a file (60 small unit
// files, A/B: 70 → 58 CPU s; docs/benchmarks.md, "CI time, fourteenth session").
//
// Every output file sits in that one directory (entries named by their path, `e2e__crash.test.js`), so code that
// finds things from its own location is given its original file's URL, relative to the bundle's: the same in any
// checkout (CI copies the tree for its Node 24 suite). The upload worker then starts from dist/src, as tsc made it.
const distTest = join(root, 'dist', 'test');
if (existsSync(distTest)) {
  const testOut = join(root, 'dist', 'bundle', 'test');
  const entryPoints = {};
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.test.js')) entryPoints[testBundleName(relative(distTest, p))] = relative(root, p);
    }
  };
  walk(distTest);
  const ownLocation = {
    name: 'own-location',
    setup(b) {
      b.onLoad({ filter: /[/\\]dist[/\\](src|test)[/\\].*\.js$/ }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        if (/import\.meta\.(dirname|filename)\b/.test(text)) {
          throw new Error(`${relative(root, args.path)}: use import.meta.url (the test bundle rewrites only that)`);
        }
        if (!text.includes('import.meta.url')) return undefined;
        const rel = relative(testOut, args.path).split(sep).join('/');
        return { contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`), loader: 'js', resolveDir: dirname(args.path) };
      });
    },
  };
  await build({
    ...common,
    entryPoints,
    outdir: testOut,
    plugins: [ownLocation],
    // Browsers' drivers and the compiler besides: big, few files use them, and they find their own files at run time.
    external: [...external, 'playwright-core', 'puppeteer-core', 'typescript'],
  });
}

/** dist/test/e2e/crash.test.js → e2e__crash.test (scripts/test.js finds the bundle by the same rule). */
function testBundleName(relativeToDistTest) {
  return relativeToDistTest.split(sep).join('__').replace(/\.js$/, '');
}
