// examples/hello/README.md's "Run it", as written: in a clone with the hub started by `npm start`, every line of the
// block in one shell session — the base image made by the example's own first step, the CI key made and trusted by
// the admin, the app applied, the pipeline run signing with that key, staging answering, the attestation verified
// with its signer, the promotion deploying production, the status — with only the ports changed (the hub's 5000,
// and the example's 8080 and 8081 in the commands and in its wharf.yaml).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { holdMachineLock } from '../support/machine-lock.js';
import { needTool } from '../support/tools.js';
import { mustRun, run } from '../support/command.js';
import { REPO_ROOT } from '../support/server.js';
import { fetchWhenUp, freePort } from '../support/net.js';
import { describeStep, makeClone, npmStart, ShellSession, shellSteps } from '../support/walkthrough.js';

const EXAMPLE = join(REPO_ROOT, 'examples', 'hello');

test('examples/hello: the README block runs verbatim, from the base image to production', { timeout: 600_000 }, async (t) => {
  if (!(await needTool(t, 'docker', 'busybox'))) return;
  const steps = await shellSteps(join(EXAMPLE, 'README.md'), '## Run it');
  assert.ok(steps.some((s) => /^sh make-base\.sh/.test(s)), 'the example makes its own base image');
  assert.ok(!steps.some((s) => /< password\b/.test(s)), 'no password file that does not exist');
  // The app is named hello on this machine's engine, and hello-base:1 is shared: one run of the block at a time.
  t.after(await holdMachineLock('hello-example'));
  const baseExisted = (await run('docker', ['image', 'inspect', 'hello-base:1'])).code === 0;

  const home = await mkdtemp(join(tmpdir(), 'wharf-hello-home-'));
  const clone = await makeClone(home, REPO_ROOT);
  const port = await freePort();
  const staging = await freePort();
  const production = await freePort();
  // The clone's copy of the example, with its two ports moved to free ones, in a git checkout (the pipeline
  // tags the image with the commit).
  const example = join(clone, 'examples', 'hello');
  await cp(EXAMPLE, example, { recursive: true });
  const yaml = await readFile(join(example, 'wharf.yaml'), 'utf8');
  assert.match(yaml, /port: 8080/);
  assert.match(yaml, /port: 8081/);
  await writeFile(join(example, 'wharf.yaml'), yaml.replace('port: 8080', `port: ${staging}`).replace('port: 8081', `port: ${production}`));
  const git = (...args: string[]) => mustRun('git', ['-c', 'user.name=Reader', '-c', 'user.email=reader@wharf.invalid', ...args], { cwd: clone });
  await git('init', '-q');
  await git('add', 'examples');
  await git('commit', '-qm', 'the example');

  const env: Record<string, string> = { HOME: home, PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' };
  const hub = npmStart(clone, env, port);
  const session = await ShellSession.start(clone, env);
  const ours = async () => {
    const ids = (await run('docker', ['ps', '-aq', '--filter', 'label=wharf.app=hello'])).stdout.split('\n').filter(Boolean);
    const mine: string[] = [];
    for (const id of ids) {
      const image = (await run('docker', ['inspect', '--format', '{{.Config.Image}}', id])).stdout.trim();
      if (image.startsWith(`127.0.0.1:${port}/`)) mine.push(id);
    }
    return mine;
  };
  try {
    await fetchWhenUp(`http://127.0.0.1:${port}/healthz`);
    for (const original of steps) {
      const command = original
        .replaceAll('127.0.0.1:5000', `127.0.0.1:${port}`)
        .replaceAll('127.0.0.1:8080', `127.0.0.1:${staging}`)
        .replaceAll('127.0.0.1:8081', `127.0.0.1:${production}`);
      const r = await session.step(command, 300_000);
      assert.equal(r.code, 0, describeStep(r) + `\n--- npm start's output\n${hub.log().split('\n').slice(-40).join('\n')}`);
      if (/^sh make-base\.sh/.test(command)) assert.match(r.stdout, /made hello-base:1/);
      else if (/^wharf apply /.test(command)) assert.match(r.stdout + r.stderr, /app hello applied/, describeStep(r));
      else if (/^curl /.test(command)) assert.match(r.stdout, /Hello from Wharf/, describeStep(r));
      else if (/^wharf pipeline run /.test(command)) assert.match(r.stdout, /tests attested/, describeStep(r));
      else if (/^wharf verify /.test(command)) assert.match(r.stdout, /^tests\s+yes\s+\S+\s+signed by ci \(sha256:/m, describeStep(r));
      else if (/^wharf status /.test(command)) {
        assert.match(r.stdout, /staging/, describeStep(r));
        assert.match(r.stdout, /production/, describeStep(r));
      }
    }
    assert.equal((await ours()).length, 2, 'one container per environment');
  } finally {
    const containers = await ours();
    if (containers.length > 0) await run('docker', ['rm', '-f', ...containers]);
    const images = (await run('docker', ['images', '--format', '{{.Repository}}:{{.Tag}}', `127.0.0.1:${port}/hello`])).stdout.split('\n').filter(Boolean);
    if (images.length > 0) await run('docker', ['rmi', '-f', ...images]);
    if (!baseExisted) await run('docker', ['rmi', 'hello-base:1']);
    await hub.stop();
    await session.close();
    await rm(home, { recursive: true, force: true });
  }
});
