// README.md's "Five minutes with Wharf", run as written: `npm start` in a clone, then every line of the section's
// shell blocks in one shell session, as a reader types them, with only the port changed (5000 is anyone's). Each
// line's outcome is checked: logins, the push, the pull of the same digest, the container answering, releases,
// both promotions, the rollback of production to the first version, and the web UI the text points to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { holdMachineLock } from '../support/machine-lock.js';
import { needTool } from '../support/tools.js';
import { run } from '../support/command.js';
import { BASE_IMAGE, ensureBaseImage, removeImages } from '../support/images.js';
import { REPO_ROOT } from '../support/server.js';
import { fetchWhenUp, freePort } from '../support/net.js';
import { describeStep, makeClone, npmStart, ShellSession, shellSteps, type StepResult } from '../support/walkthrough.js';

const README = join(REPO_ROOT, 'README.md');

test('README: the walkthrough runs verbatim, rollback included', { timeout: 600_000 }, async (t) => {
  if (!(await needTool(t, 'docker', 'busybox'))) return;
  const steps = await shellSteps(README, '## Five minutes with Wharf');
  // The walkthrough must keep what it promises: a reader who follows it reaches a rollback that works.
  for (const expected of [/^wharf login /, /^docker login /, /^docker push .*:1\.4\.2/, /^wharf rollback myapp --env production/]) {
    assert.ok(steps.some((s) => expected.test(s)), `README's walkthrough lost a step matching ${expected}`);
  }
  assert.equal(steps.filter((s) => /^wharf promote /.test(s)).length, 2, 'production gets two releases before the rollback');
  // The walkthrough's container is named myapp on this machine's engine: one walkthrough at a time on the machine.
  t.after(await holdMachineLock('readme-walkthrough'));
  if ((await run('docker', ['container', 'inspect', 'myapp'])).code === 0) {
    assert.fail('a container named myapp already exists on this Docker engine: the walkthrough creates one (remove it and run again)');
  }
  await ensureBaseImage('docker');

  const home = await mkdtemp(join(tmpdir(), 'wharf-readme-home-'));
  const clone = await makeClone(home, REPO_ROOT);
  const port = await freePort();
  const appPort = await freePort();
  const marker = `readme-${randomBytes(6).toString('hex')}`;
  // The reader's app: any Dockerfile; this one serves a page on a port of its own.
  await mkdir(join(home, 'myapp', 'www'), { recursive: true });
  await writeFile(join(home, 'myapp', 'www', 'index.html'), `<h1>${marker}</h1>\n`);
  await writeFile(join(home, 'myapp', 'Dockerfile'), `FROM ${BASE_IMAGE}\nCOPY www/ /www/\nCMD exec httpd -f -p 127.0.0.1:${appPort} -h /www\n`);

  const env: Record<string, string> = { HOME: home, PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' };
  const hub = npmStart(clone, env, port);
  const session = await ShellSession.start(clone, env);
  let container: string | undefined;
  const images = ['1.4.2', '1.4.3', 'production'].map((tag) => `127.0.0.1:${port}/myapp:${tag}`);
  try {
    await fetchWhenUp(`http://127.0.0.1:${port}/healthz`);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(page.status, 200, 'the web UI the README points to');
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    await page.body?.cancel();

    const digests: Record<string, string> = {};
    const pulls: string[] = [];
    const ok = (r: StepResult) => assert.equal(r.code, 0, describeStep(r));
    for (const original of steps) {
      const command = original.replaceAll('127.0.0.1:5000', `127.0.0.1:${port}`);
      const r = await session.step(command);
      ok(r);
      const out = r.stdout + r.stderr;
      if (/^wharf login /.test(command)) assert.match(out, new RegExp(`Logged in to http://127.0.0.1:${port} as admin`), describeStep(r));
      else if (/^docker login /.test(command)) assert.match(out, /Login Succeeded/, describeStep(r));
      else if (/^docker push /.test(command)) {
        const digest = out.match(/digest: (sha256:[0-9a-f]{64})/)?.[1];
        assert.ok(digest, describeStep(r));
        digests[command.match(/:(\d+\.\d+\.\d+)\s*$/)![1]!] = digest;
      } else if (/^docker pull /.test(command)) {
        const digest = out.match(/Digest: (sha256:[0-9a-f]{64})/)?.[1];
        assert.ok(digest, describeStep(r));
        if (/:1\.4\.2\s*(#|$)/.test(command)) assert.equal(digest, digests['1.4.2'], 'the pull brings back what was pushed');
        if (/:production\s*(#|$)/.test(command)) pulls.push(digest);
      } else if (/^docker run /.test(command)) {
        container = r.stdout.trim().split('\n').pop();
        assert.match(await fetchWhenUp(`http://127.0.0.1:${appPort}/`), new RegExp(marker), 'the container runs the pulled image');
      } else if (/^wharf rollback /.test(command)) assert.match(out, /1\.4\.2|sha256:/, describeStep(r));
      else if (/^wharf releases /.test(command)) {
        assert.match(r.stdout, /production/);
        assert.match(r.stdout, /staging/);
      } else if (/^wharf tags history /.test(command)) assert.match(r.stdout, new RegExp(digests['1.4.2']!.slice(7, 19)), describeStep(r));
    }
    assert.notEqual(digests['1.4.3'], digests['1.4.2'], 'the second version is another image');
    assert.deepEqual(pulls, [digests['1.4.3'], digests['1.4.2']], 'production followed the promotion, then the rollback');
  } catch (e) {
    if (e instanceof Error) e.message += `\n--- npm start's output\n${hub.log().split('\n').slice(-60).join('\n')}`;
    throw e;
  } finally {
    if (container) await run('docker', ['rm', '-f', container]);
    await removeImages('docker', images);
    await hub.stop();
    await session.close();
    await rm(home, { recursive: true, force: true });
  }
});
