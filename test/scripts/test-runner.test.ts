// scripts/test.js: a test file that leaves a handle open, or runs past its deadline, fails with what it left
// named, and the suite goes on to the next file instead of hanging.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../support/command.js';

const RUNNER = fileURLToPath(new URL('../../../scripts/test.js', import.meta.url));

// Files run as scripts (the default), or under `node --test` (which Node 20 needs for --test-timeout): both catch them.
for (const [mode, flags] of [['as scripts', []], ['under node --test', ['--test-timeout=600000']]] as const) {
  test(`a leaked worker, a file past its deadline and a passing file: two fail by name, the suite finishes (${mode})`, { timeout: 120_000 }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-runner-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(
      join(dir, 'a-leak.test.js'),
      `import test from 'node:test';\nimport { Worker } from 'node:worker_threads';\nimport net from 'node:net';\n` +
        `test('leaves a worker and a server behind', () => { new Worker('setInterval(() => {}, 1000)', { eval: true }); net.createServer().listen(0, '127.0.0.1'); });\n`,
    );
    await writeFile(join(dir, 'b-slow.test.js'), `import test from 'node:test';\ntest('never ends', () => new Promise(() => setInterval(() => {}, 1000)));\n`);
    await writeFile(join(dir, 'c-fine.test.js'), `import test from 'node:test';\ntest('passes', () => {});\n`);
    const began = Date.now();
    // The deadline holds for each file: a-leak needs its start and the 1.5 s grace within it (about 3 s on a loaded
    // machine), and b-slow spends all of it, twice per CI suite.
    const r = await run(process.execPath, [RUNNER, '--file-timeout=5', ...flags, dir], {
      // Node 24's test runner gives its files --report-signal=SIGUSR2, so the watchdog's SIGUSR2 may also write a
      // diagnostic report into the working directory: the temp dir's, not the checkout's.
      cwd: dir,
      timeoutMs: 100_000,
      env: { ...process.env, WHARF_TEST_EXIT_GRACE_MS: '1500' },
    });
    const out = r.stdout + r.stderr;
    assert.equal(r.code, 1, out);
    assert.ok(Date.now() - began < 90_000, 'the runner waited for the hanging files');
    assert.match(out, /every test finished 1.5 s ago but the process is still running; open: .*Worker\(/);
    assert.match(out, /a-leak\.test\.js[\s\S]*Server\(127\.0\.0\.1:\d+\)|Server\(127\.0\.0\.1:\d+\)[\s\S]*a-leak/);
    assert.match(out, /b-slow\.test\.js still running after 5 s: naming its open handles/);
    assert.match(out, /\[open handles\] test file .*b-slow\.test\.js .*Timeout/);
    assert.match(out, /3 files in \d+ s \(files. own times add up to \d+ s; cpu \d+ s\): 1 passed, 2 failed/);
    assert.match(out, /FAILED .*a-leak\.test\.js \(exit code 1\)/);
    assert.match(out, /FAILED .*b-slow\.test\.js \(killed after 5 s\)/);
  });
}

test('--reverse runs the files last to first (CI runs its second suite so)', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-runner-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const name of ['a', 'b', 'c']) {
    await writeFile(join(dir, `${name}.test.js`), `import test from 'node:test';\ntest('${name} ran', () => { process.stdout.write('# ran ${name}\\n'); });\n`);
  }
  const order = async (...flags: string[]) => {
    const r = await run(process.execPath, [RUNNER, ...flags, dir], { timeoutMs: 50_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return [...r.stdout.matchAll(/# ran (\w)/g)].map((m) => m[1]).join('');
  };
  // Two runs over the same files, neither writing anything: side by side.
  const [forward, backward] = await Promise.all([order(), order('--reverse')]);
  assert.equal(forward, 'abc');
  assert.equal(backward, 'cba');
});

test('--except leaves the files named out (CI runs them in a lane of their own), and refuses a name that matches none', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-runner-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'sub'));
  for (const name of ['a', 'b', 'sub/c']) {
    await writeFile(join(dir, `${name}.test.js`), `import test from 'node:test';\ntest('${name} ran', () => { process.stdout.write('# ran ${name}\\n'); });\n`);
  }
  const left = await run(process.execPath, [RUNNER, '--except=sub/c,a', dir], { timeoutMs: 50_000 });
  assert.equal(left.code, 0, left.stdout + left.stderr);
  assert.deepEqual([...left.stdout.matchAll(/# ran ([\w/]+)/g)].map((m) => m[1]), ['b']);
  assert.match(left.stdout, /left out \(--except, run elsewhere\): sub\/c, a/);
  assert.match(left.stdout, /1 files in \d+ s .*: 1 passed, 0 failed/);
  // A renamed file must not drop out of every lane: a name with no file stops the run before any file.
  const typo = await run(process.execPath, [RUNNER, '--except=sub/d', dir], { timeoutMs: 50_000 });
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /--except names sub\/d, which is not among the files to run/);
  assert.doesNotMatch(typo.stdout, /# ran/);
});

test('--jobs=2 runs two files at once, each one\'s output whole, and the failures still by name', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-runner-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // a waits for b's mark: it passes only when both run at the same time.
  const mark = join(dir, 'b-started');
  await writeFile(
    join(dir, 'a.test.js'),
    `import test from 'node:test';\nimport { existsSync } from 'node:fs';\n` +
      `test('a meets b', async () => { process.stdout.write('# a line 1\\n'); for (let i = 0; i < 200 && !existsSync(${JSON.stringify(mark)}); i++) await new Promise((r) => setTimeout(r, 50)); if (!existsSync(${JSON.stringify(mark)})) throw new Error('b never ran beside a'); process.stdout.write('# a line 2\\n'); });\n`,
  );
  await writeFile(
    join(dir, 'b.test.js'),
    `import test from 'node:test';\nimport { writeFileSync } from 'node:fs';\n` +
      `test('b', async () => { process.stdout.write('# b line 1\\n'); writeFileSync(${JSON.stringify(mark)}, ''); await new Promise((r) => setTimeout(r, 300)); process.stdout.write('# b line 2\\n'); });\n`,
  );
  await writeFile(join(dir, 'c.test.js'), `import test from 'node:test';\ntest('c fails', () => { throw new Error('c broke'); });\n`);
  const r = await run(process.execPath, [RUNNER, '--jobs=2', dir], { timeoutMs: 50_000 });
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 1, out);
  const lines = [...out.matchAll(/# ([ab]) line (\d)/g)].map((m) => m[1]! + m[2]!);
  // Each file's two lines are next to each other, though the files ran at once.
  assert.ok(lines.join(' ') === 'b1 b2 a1 a2' || lines.join(' ') === 'a1 a2 b1 b2', lines.join(' '));
  assert.match(out, /\[scripts\/test\.js\] ok .*a\.test\.js/);
  assert.match(out, /c broke/);
  assert.match(out, /3 files in \d+ s .*: 2 passed, 1 failed/);
  assert.match(out, /FAILED .*c\.test\.js \(exit code 1\)/);
});

test('a file marked alone runs with no other file beside it, under --jobs=2', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-runner-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // Every file leaves a mark while it runs; the alone one fails if it sees another's, before or after its wait.
  const busy = (name: string, check = '') =>
    `import test from 'node:test';\nimport { readdirSync, rmSync, writeFileSync } from 'node:fs';\n` +
    `const others = () => readdirSync(${JSON.stringify(dir)}).filter((f) => f.endsWith('.running') && f !== '${name}.running');\n` +
    `test('${name}', async () => { writeFileSync(${JSON.stringify(dir)} + '/${name}.running', ''); ${check} await new Promise((r) => setTimeout(r, 400)); ${check} rmSync(${JSON.stringify(dir)} + '/${name}.running'); });\n`;
  const check = `if (others().length > 0) throw new Error('ran beside ' + others().join(', '));`;
  for (const name of ['a', 'b', 'd', 'e']) await writeFile(join(dir, `${name}.test.js`), busy(name));
  await writeFile(join(dir, 'c.test.js'), `// scripts/test.js: alone (this test's own)\n${busy('c', check)}`);
  const r = await run(process.execPath, [RUNNER, '--jobs=2', dir], { timeoutMs: 50_000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /5 files in \d+ s .*: 5 passed, 0 failed/);
});

test('--jobs=2 gives each file its own docker and podman client configuration (a login rewrites the whole file)', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-runner-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const name of ['a', 'b']) {
    await writeFile(
      join(dir, `${name}.test.js`),
      `import test from 'node:test';\nimport { readFileSync } from 'node:fs';\n` +
        `test('${name}', () => { process.stdout.write('# ${name} ' + process.env.DOCKER_CONFIG + ' ' + readFileSync(process.env.REGISTRY_AUTH_FILE, 'utf8').trim() + '\\n'); });\n`,
    );
  }
  const r = await run(process.execPath, [RUNNER, '--jobs=2', dir], { timeoutMs: 50_000, env: { ...process.env, DOCKER_CONFIG: '/shared/docker', REGISTRY_AUTH_FILE: '/shared/auth.json' } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const seen = Object.fromEntries([...r.stdout.matchAll(/# ([ab]) (\S+) (.*)/g)].map((m) => [m[1]!, { config: m[2]!, auth: m[3]! }]));
  assert.equal(seen.a?.auth, '{"auths":{}}', 'podman finds an empty auth file');
  assert.ok(seen.a && seen.b && seen.a.config !== seen.b.config && !seen.a.config.startsWith('/shared'), JSON.stringify(seen));
});
