// Loaded into every test process by scripts/test.js (--import): names what keeps a test file's process alive.
// In a file's process, once its last test has finished, a process still running after the grace period prints its
// open handles and exits 1, so the file fails with its leak named instead of holding up the suite. On SIGUSR2 (the
// watchdog in scripts/test.js, before it kills a file that ran out of time) any test process prints them too.
import { appendFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { after } from 'node:test';
import workerThreads from 'node:worker_threads';

const GRACE_MS = Number(process.env.WHARF_TEST_EXIT_GRACE_MS ?? 20_000);

// Node lists neither workers nor their message ports among its active resources: count them here.
const liveWorkers = new Map();
const NativeWorker = workerThreads.Worker;
class TrackedWorker extends NativeWorker {
  constructor(filename, options) {
    super(filename, options);
    const entry = { name: String(filename instanceof URL ? filename.pathname : filename).split('/').slice(-2).join('/'), ref: true };
    liveWorkers.set(this, entry);
    this.once('exit', () => liveWorkers.delete(this));
  }
  ref() {
    const e = liveWorkers.get(this);
    if (e) e.ref = true;
    return super.ref();
  }
  unref() {
    const e = liveWorkers.get(this);
    if (e) e.ref = false;
    return super.unref();
  }
}
workerThreads.Worker = TrackedWorker;
syncBuiltinESMExports();

/** One line naming each open handle: sockets with their peer, servers with their address, timers, workers. */
export function openHandles() {
  const named = [];
  for (const h of process._getActiveHandles()) {
    const kind = h?.constructor?.name ?? typeof h;
    // The process's own stdio (pipes to the test runner) is always there.
    if ((kind === 'Socket' || kind === 'WriteStream' || kind === 'ReadStream') && (h.fd === 0 || h.fd === 1 || h.fd === 2 || h._isStdio)) continue;
    if (kind === 'Socket' && h.remoteAddress) named.push(`Socket(${h.remoteAddress}:${h.remotePort})`);
    else if (kind === 'Server' && typeof h.address === 'function' && h.address()) {
      const a = h.address();
      named.push(`Server(${typeof a === 'string' ? a : `${a.address}:${a.port}`})`);
    } else if (kind === 'ChildProcess') named.push(`ChildProcess(pid ${h.pid}: ${h.spawnfile})`);
    else if (kind !== 'Socket' || !h._isStdio) named.push(kind);
  }
  const resources = process.getActiveResourcesInfo().filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap' && r !== 'TCPSocketWrap' && r !== 'TCPServerWrap' && r !== 'ProcessWrap');
  for (const [, w] of liveWorkers) named.push(`Worker(${w.name}${w.ref ? '' : ', unref'})`);
  const counts = new Map();
  for (const n of [...named, ...resources]) counts.set(n, (counts.get(n) ?? 0) + 1);
  return [...counts].map(([n, c]) => (c > 1 ? `${n} x${c}` : n)).join(', ') || '(none listed)';
}

// A test file's own process: run as a script by scripts/test.js (WHARF_TEST_FILE), or as the child of `node --test`.
const inTestFile = Boolean(process.env.NODE_TEST_CONTEXT || process.env.WHARF_TEST_FILE);
const role = inTestFile ? `test file ${process.argv[1] ?? ''}` : 'test runner';
process.on('SIGUSR2', () => {
  const line = `[open handles] ${role} (pid ${process.pid}): ${openHandles()}\n`;
  // The runner relays this process's stderr only once it ends, and it is about to be killed: the watchdog reads the file.
  if (process.env.WHARF_OPEN_HANDLES_REPORT) appendFileSync(process.env.WHARF_OPEN_HANDLES_REPORT, line);
  else process.stderr.write(`\n${line}`);
});

if (inTestFile) {
  after(() => {
    setTimeout(() => {
      process.stderr.write(
        `\n[open handles] ${role}: every test finished ${GRACE_MS / 1000} s ago but the process is still running; open: ${openHandles()}\n`,
      );
      process.exit(1);
    }, GRACE_MS).unref();
  });
}
