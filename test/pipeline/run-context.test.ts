// Where a run comes from: the commit from CI variables or git, and the run id.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ciInfo, detectCommit, runIdOf } from '../../src/pipeline/run-context.js';
import { mustRun } from '../support/command.js';

test('the commit comes from CI_COMMIT_SHA, then GITHUB_SHA, then git; a bad value is refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-commit-'));
  try {
    const a = 'a'.repeat(40);
    assert.equal(await detectCommit(dir, { CI_COMMIT_SHA: a, GITHUB_SHA: 'b'.repeat(40) }), a);
    assert.equal(await detectCommit(dir, { GITHUB_SHA: 'B'.repeat(40) }), 'b'.repeat(40));
    await assert.rejects(detectCommit(dir, { CI_COMMIT_SHA: 'main' }), /CI_COMMIT_SHA="main" is not a commit SHA/);
    await assert.rejects(detectCommit(dir, {}), /no commit to tag the image with/);
    const git = (...args: string[]) => mustRun('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.invalid', ...args], { cwd: dir });
    await git('init', '-q');
    await writeFile(join(dir, 'f'), 'x');
    await git('add', 'f');
    await git('commit', '-qm', 'first');
    const head = (await git('rev-parse', 'HEAD')).stdout.trim();
    assert.equal(await detectCommit(dir, {}), head);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the run id and CI description come from the CI system when there is one', () => {
  assert.equal(runIdOf({ GITHUB_RUN_ID: '42', GITHUB_RUN_ATTEMPT: '2' }), 'github-42-2');
  assert.equal(runIdOf({ CI_PIPELINE_ID: '7', CI_JOB_ID: '9' }), 'gitlab-7-9');
  assert.match(runIdOf({}), /^[0-9a-f-]{36}$/);
  const gh = ciInfo({ GITHUB_ACTIONS: 'true', GITHUB_SERVER_URL: 'https://github.com', GITHUB_REPOSITORY: 'o/r', GITHUB_RUN_ID: '42' });
  assert.equal(gh.system, 'github-actions');
  assert.equal(gh.url, 'https://github.com/o/r/actions/runs/42');
  assert.equal(ciInfo({}).system, 'local');
});
