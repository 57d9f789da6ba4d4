#!/usr/bin/env node
// The `wharf` command: runs the compiled CLI (built by `npm ci` through the prepare script).
import module from 'node:module';

// Node 22.1+ keeps the compiled code of the modules it loads (in the system's temp dir; NODE_DISABLE_COMPILE_CACHE=1
// turns it off): a CLI command or a `serve` start then spends far less of its time compiling. Node 20 has no cache.
module.enableCompileCache?.();
const { main } = await import('../dist/src/cli/main.js');
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
