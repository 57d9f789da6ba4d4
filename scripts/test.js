#!/usr/bin/env node
// Runs every compiled *.test.js under dist/test (node:test), one file at a time, each under a deadline:
// the suite always finishes. A file whose process outlives its tests fails with its open handles named
// (scripts/open-handles.js); a file that runs past --file-timeout is asked to name them too, then killed with
// every process it started (its own process group).
//
//   node scripts/test.js [--unit] [--reverse] [--jobs=N] [--except=NAME,…] [--file-timeout=SECONDS] [--test-timeout=MS] [FILE|DIR …] [-- node test flags]
//
// `--jobs=N` runs up to N files at once (default 1). Most end-to-end files spend more of their time waiting (on
// Docker, Swarm's monitor windows, health checks, timers) than computing, so CI runs two at a time per suite. A file
// run beside others has its output held back and printed whole when it ends, so that no two files' lines mix. A
// file with the line `// scripts/test.js: alone (why)` near its top runs by itself: the others wait, and it waits
// for them (timing-sensitive files: Swarm's monitor windows, kill -9 at chosen moments, round-trip counts).
//
// `--reverse` runs the files in reverse order: CI runs two suites at once on one machine, and in opposite orders
// they neither meet on the same test (shared engine, fixed names in the README's blocks) nor on the same heavy one.
// `--except=e2e/swarm-record,…` leaves out the files named (the end of their path, without `.test.js`): CI runs those
// in a lane of their own beside the two suites, in both configurations (.ci/run). A name that matches no file (or
// more than one) is an error, so that a renamed file cannot drop out of every lane unnoticed.
// `--unit` leaves out test/e2e (real docker, podman, skopeo, extra dockerd hosts); every other test is pure or
// in-process and runs. Files or directories given (dist/test/… or test/….ts) run alone. Works on Node 20, 22
// and 24 (Node 20 takes no globs).
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const argv = process.argv.slice(2);
const dashDash = argv.indexOf('--');
const own = dashDash < 0 ? argv : argv.slice(0, dashDash);
const passed = dashDash < 0 ? [] : argv.slice(dashDash + 1);
const flag = (name, fallback) => {
  const a = own.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : fallback;
};
const unitOnly = own.includes('--unit');
const reverse = own.includes('--reverse');
const jobs = Math.max(1, flag('jobs', Number(process.env.WHARF_TEST_JOBS ?? 1)));
/** A whole file's deadline: the slowest end-to-end files (crash, gc, deploy, npm-install's native build) take minutes on a busy machine. */
const fileTimeoutS = flag('file-timeout', Number(process.env.WHARF_TEST_FILE_TIMEOUT ?? 1800));
/**
 * One test's deadline (--test-timeout), unless the test sets its own. None by default: on Node 20 the runner applies
 * it to a whole file, and the file's own deadline is --file-timeout.
 */
const testTimeoutMs = flag('test-timeout', undefined);
const exceptArg = own.find((a) => a.startsWith('--except='));
const except = exceptArg ? exceptArg.slice('--except='.length).split(',').map((s) => s.trim()).filter(Boolean) : [];
const unknown = own.filter((a) => a.startsWith('--') && !/^--(unit|reverse|jobs=|except=|file-timeout=|test-timeout=)/.test(a));
if (unknown.length > 0) {
  process.stderr.write(`scripts/test.js: unknown option ${unknown[0]} (node's own test flags go after --)\n`);
  process.exit(2);
}

const distTest = join(root, 'dist', 'test');
const skipped = unitOnly ? [join(distTest, 'e2e')] : [];
function walk(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (!skipped.includes(p)) walk(p, out);
    } else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}
/** test/x/y.test.ts → dist/test/x/y.test.js, so a source path can be given too. */
function compiled(p) {
  const abs = resolve(p);
  if (abs.endsWith('.ts') && abs.startsWith(join(root, 'test'))) return join(root, 'dist', relative(root, abs).replace(/\.ts$/, '.js'));
  if (statSync(abs, { throwIfNoEntry: false })?.isDirectory() && abs.startsWith(join(root, 'test'))) return join(root, 'dist', relative(root, abs));
  return abs;
}
const chosen = own.filter((a) => !a.startsWith('--'));
const files = [];
for (const c of chosen.length > 0 ? chosen.map(compiled) : [distTest]) {
  if (!existsSync(c)) {
    process.stderr.write(`scripts/test.js: ${c} does not exist (run npm run build first)\n`);
    process.exit(2);
  }
  if (statSync(c).isDirectory()) walk(c, files);
  else files.push(c);
}
for (const name of except) {
  const matching = files.filter((f) => f.endsWith(`${sep}${name.split('/').join(sep)}.test.js`));
  if (matching.length !== 1) {
    process.stderr.write(`scripts/test.js: --except names ${name}, which is ${matching.length === 0 ? 'not among the files to run' : `${matching.length} of them`}\n`);
    process.exit(2);
  }
  files.splice(files.indexOf(matching[0]), 1);
}
if (except.length > 0) process.stdout.write(`[scripts/test.js] left out (--except, run elsewhere): ${except.join(', ')}\n`);
if (reverse) files.reverse();

const hook = join(root, 'scripts', 'open-handles.js');
// Run from inside a test (test/scripts/test-runner.test.ts), the files must not think they are that test's children.
const env = { ...process.env };
delete env.NODE_TEST_CONTEXT;
delete env.WHARF_TEST_FILE;
// Node 22.1+ keeps the code it compiled for every module it loads: each file (and every Wharf it spawns) loads most
// of dist/ and node_modules again, so the second load on is much cheaper. Node 20 ignores the variable.
if (env.NODE_COMPILE_CACHE === undefined && env.NODE_DISABLE_COMPILE_CACHE === undefined) env.NODE_COMPILE_CACHE = join(tmpdir(), 'wharf-test-compile-cache');
const reports = mkdtempSync(join(tmpdir(), 'wharf-test-handles-'));
process.on('exit', () => rmSync(reports, { recursive: true, force: true }));

/** The processes whose parent is `pid` (Linux /proc): the runner's per-file processes, which load the hook. */
function childrenOf(pid) {
  const out = [];
  let entries = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

const testBundle = join(root, 'dist', 'bundle', 'test');
/**
 * What runs for a compiled test file: its bundle (scripts/bundle.js, part of `npm run build`) when that is at least as
 * new, else the file itself (after a bare `tsc`, say). The bundle loads in a few files what the file loads in ~1,000
 * modules; WHARF_TEST_BUNDLE=0 runs the files as tsc made them.
 */
function runnable(file) {
  if (process.env.WHARF_TEST_BUNDLE === '0' || !file.startsWith(distTest + sep)) return file;
  const bundle = join(testBundle, relative(distTest, file).split(sep).join('__'));
  const made = statSync(bundle, { throwIfNoEntry: false });
  return made !== undefined && made.mtimeMs >= statSync(file).mtimeMs ? bundle : file;
}

/** Runs one file in its own process group; resolves with how it ended. */
function runFile(file) {
  return new Promise((done) => {
    const started = Date.now();
    const n = reportCount++;
    const report = join(reports, `${n}.txt`);
    // Beside other files, each has its own docker and podman/skopeo client configuration: `docker login` rewrites
    // the whole config.json, so two files logging in at once to their own servers would lose one another's login.
    const clients = {};
    if (jobs > 1) {
      const dir = join(reports, `clients-${n}`);
      mkdirSync(join(dir, 'docker'), { recursive: true });
      writeFileSync(join(dir, 'containers-auth.json'), '{"auths":{}}\n'); // podman refuses a REGISTRY_AUTH_FILE that is missing
      Object.assign(clients, { DOCKER_CONFIG: join(dir, 'docker'), REGISTRY_AUTH_FILE: join(dir, 'containers-auth.json') });
    }
    // The file runs as a script: node:test runs its tests and reports them itself, and exits 1 when one fails. Under
    // `node --test FILE` a second Node process (the test runner) would start, read the file's results and report them
    // again: ~0.45 CPU s a file on Node 20, a tenth of the unit files' whole cost. Node 20 applies --test-timeout only
    // under the runner, so with that flag the file runs under it, as before.
    const underRunner = testTimeoutMs !== undefined;
    const child = spawn(
      process.execPath,
      ['--import', hook, ...(underRunner ? ['--test', '--test-concurrency=1', `--test-timeout=${testTimeoutMs}`] : []), ...passed, runnable(file)],
      { stdio: jobs === 1 ? 'inherit' : ['ignore', 'pipe', 'pipe'], detached: true, env: { ...env, ...clients, WHARF_OPEN_HANDLES_REPORT: report, ...(underRunner ? {} : { WHARF_TEST_FILE: file }) } },
    );
    // Beside other files: the file's output, held until it ends (in order, stdout and stderr as they came).
    const held = [];
    if (jobs > 1) {
      child.stdout.on('data', (c) => held.push(c));
      child.stderr.on('data', (c) => held.push(c));
    }
    let timedOut = false;
    const signalGroup = (sig) => {
      try {
        process.kill(-child.pid, sig);
      } catch {
        // the group is already gone
      }
    };
    const watchdog = setTimeout(() => {
      timedOut = true;
      process.stderr.write(`\n[scripts/test.js] ${relative(root, file)} still running after ${fileTimeoutS} s: naming its open handles, then killing it\n`);
      // Node's test runner itself does not load --import modules: ask the file's own process, it does.
      const asked = [];
      for (const pid of underRunner ? childrenOf(child.pid) : [child.pid]) {
        try {
          process.kill(pid, 'SIGUSR2');
          asked.push(pid);
        } catch {
          // gone meanwhile
        }
      }
      // Each asked process appends its line at once: kill as soon as every one has (or is gone), and after 3 s at
      // the latest, for a process too busy to answer.
      const giveUp = Date.now() + 3_000;
      const collect = setInterval(() => {
        const text = existsSync(report) ? readFileSync(report, 'utf8') : '';
        const alive = underRunner ? childrenOf(child.pid) : child.exitCode === null && child.signalCode === null ? [child.pid] : [];
        const answered = (pid) => new RegExp(`\\(pid ${pid}\\): .*\\n`).test(text) || !alive.includes(pid);
        if (Date.now() < giveUp && !asked.every(answered)) return;
        clearInterval(collect);
        if (text) process.stderr.write(text);
        signalGroup('SIGKILL');
      }, 50);
      collect.unref();
    }, fileTimeoutS * 1000);
    // Ctrl-C or a CI cancel: take the file's processes down too, not only this one, and run no further file.
    const forward = (sig) => {
      interrupted = sig;
      signalGroup(sig);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog);
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      // What the file left behind in its group (a daemon it forgot) goes with it.
      signalGroup('SIGKILL');
      const finish = () => {
        if (held.length > 0) process.stdout.write(Buffer.concat(held));
        done({ file, code, signal, timedOut, seconds: (Date.now() - started) / 1000 });
      };
      // 'exit' may come before the pipes have given everything: wait for them to close (the group is killed above).
      if (jobs === 1) finish();
      else Promise.all([child.stdout, child.stderr].map((s) => (s.readableEnded || s.destroyed ? undefined : new Promise((r) => s.once('close', r))))).then(finish);
    });
  });
}

const results = [];
let reportCount = 0;
/** The signal that stopped the run (Ctrl-C, a CI cancel): the file then running gets it, and no further file runs. */
let interrupted;
/**
 * CPU seconds used so far by this process's waited-for children and theirs (Linux /proc; 0 elsewhere): a file's
 * share is the difference across it. Beside its wall time it tells a file that computes from one that waits (on
 * timers, Docker, Swarm), which is what decides whether running files side by side would shorten a run.
 */
function childrenCpuSeconds() {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[13]) + Number(f[14])) / 100; // cutime + cstime, in clock ticks (USER_HZ = 100 on Linux)
  } catch {
    return 0;
  }
}

/** Whether a file asks to run with no other file of this run beside it (see the top of this file). */
function alone(file) {
  return /^\/\/ scripts\/test\.js: alone\b/m.test(readFileSync(file, 'utf8').slice(0, 4000));
}
const cpuAtStart = childrenCpuSeconds();
let next = 0;
let running = 0;
/** Resolved when no file runs (a file that runs alone waits on it); replaced when one starts. */
let idle = Promise.resolve();
let becameIdle = () => {};
/** Set while a file runs alone: the others wait on it before they start theirs. */
let soloDone;
async function worker() {
  while (next < files.length && !interrupted) {
    while (soloDone) await soloDone;
    if (next >= files.length || interrupted) break;
    const file = files[next++];
    let endSolo;
    if (jobs > 1 && alone(file)) {
      soloDone = new Promise((r) => (endSolo = r));
      await idle;
    }
    if (running++ === 0) idle = new Promise((r) => (becameIdle = r));
    const cpuBefore = childrenCpuSeconds();
    const r = await runFile(file);
    if (--running === 0) becameIdle();
    if (endSolo) {
      soloDone = undefined;
      endSolo();
    }
    // A file's own CPU only when it ran alone: beside others, the difference holds theirs too.
    r.cpu = jobs === 1 ? childrenCpuSeconds() - cpuBefore : undefined;
    results.push(r);
    // One line per file with its time, so that a CI log tells where each minute went (and what ran beside what).
    process.stdout.write(
      `[scripts/test.js] ${r.code === 0 ? 'ok' : 'FAILED'} ${relative(distTest, file)} ${r.seconds.toFixed(1)} s${r.cpu === undefined ? '' : `, cpu ${r.cpu.toFixed(1)} s`} (at ${Math.round(process.uptime())} s)\n`,
    );
  }
}
await Promise.all(Array.from({ length: Math.min(jobs, files.length) }, worker));
if (interrupted) {
  process.stdout.write(`\n[scripts/test.js] stopped by ${interrupted} after ${results.length} of ${files.length} files\n`);
  process.exit(1);
}

const failed = results.filter((r) => r.code !== 0);
const total = results.reduce((s, r) => s + r.seconds, 0);
// The slowest files, where CI's time goes (it has a 25-minute budget): printed last, so a log's tail shows them.
if (results.length > 5) {
  const slowest = [...results].sort((a, b) => b.seconds - a.seconds).slice(0, 12);
  process.stdout.write(`\n[scripts/test.js] slowest: ${slowest.map((r) => `${relative(distTest, r.file).replace(/\.test\.js$/, '')} ${Math.round(r.seconds)} s`).join(', ')}\n`);
}
const cpu = childrenCpuSeconds() - cpuAtStart;
process.stdout.write(`\n[scripts/test.js] ${results.length} files in ${Math.round(process.uptime())} s (files' own times add up to ${Math.round(total)} s; cpu ${Math.round(cpu)} s): ${results.length - failed.length} passed, ${failed.length} failed\n`);
for (const r of failed) {
  const why = r.timedOut ? `killed after ${fileTimeoutS} s` : r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`;
  process.stdout.write(`  FAILED ${relative(root, r.file)} (${why})\n`);
}
process.exit(failed.length === 0 ? 0 : 1);
