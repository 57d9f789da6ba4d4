#!/usr/bin/env node
// The `wharf` command: runs the compiled CLI (built by `npm ci` through the prepare script).
import module from 'node:module';
import v8 from 'node:v8';

// Node 22.1+ keeps the compiled code of the modules it loads (in the system's temp dir; NODE_DISABLE_COMPILE_CACHE=1
// turns it off): a CLI command or a `serve` start then spends far less of its time compiling. Node 20 has no cache.
module.enableCompileCache?.();
// A command that runs for a second or less gains nothing from V8's optimizing compiler: it compiles the module
// loader's and the query builder's hot functions on a second thread for a process about to exit (`wharf user list
// --data DIR` on Node 20: 1.0 → 0.65 CPU s, docs/benchmarks.md). The hub itself, and the commands that work through
// a whole installation (fsck, gc, migrate-db), keep it.
const LONG_RUNNING = new Set(['serve', 'fsck', 'gc', 'migrate-db']);
if (!LONG_RUNNING.has(process.argv[2] ?? '')) v8.setFlagsFromString('--no-opt');
// The CLI bundled into a few files (scripts/bundle.js, made by `npm run build`): far fewer to load at every start.
const { main } = await import('../dist/bundle/cli/main.js');
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
