#!/usr/bin/env -S node --max-semi-space-size=8 --heap-growing-percent=30
// The `wharf` command: runs the compiled CLI (built by `npm ci` through the prepare script).
//
// The V8 flags above are for `wharf serve`, and can only be given at start-up (they size the heap). A registry
// allocates ~18 KiB per request and keeps little: with V8's defaults the old generation grows 2-4x between
// collections, so 10,000 manifest GETs/s took the server from 100 to 177 MiB resident, all of it garbage. With
// a smaller young generation and 1.3x growth it peaks near 115 MiB at the same throughput. `npm start`, `npx
// wharf` and the benchmark start Wharf through this line; `node bin/wharf.js` works too, with V8's defaults.
import { main } from '../dist/src/cli/main.js';
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
