// The pipeline section of wharf.yaml: the example app's file loads; mistakes are refused with their location.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppFileError } from '../../src/app-file/parse.js';
import { loadPipeline } from '../../src/pipeline/pipeline-file.js';
import { REPO_ROOT } from '../support/server.js';

test("the example app's pipeline loads with its defaults and resolved paths", async () => {
  const p = await loadPipeline(join(REPO_ROOT, 'examples', 'hello', 'wharf.yaml'));
  assert.equal(p.app, 'hello');
  assert.equal(p.contextDir, join(REPO_ROOT, 'examples', 'hello'));
  assert.equal(p.spec.build.dockerfile, 'Dockerfile');
  assert.deepEqual(p.spec.build.args, { BASE: 'hello-base:1' });
  assert.deepEqual(p.spec.test.map((t) => t.name), ['content', 'serve']);
  assert.equal(p.spec.test[1]!.timeout, 30_000);
  assert.equal(p.spec.push, true);
  assert.deepEqual(p.spec.deploy, { environment: 'staging' });
  assert.deepEqual(p.deployTargets, ['local'], 'staging runs on the registered target local');
});

test('the deploy targets are those of the deploy environment: hosts, a Swarm service, or none', async () => {
  const load = (envs: string) => loadText(`app: hello\nenvironments:\n${envs}pipeline:\n  deploy: staging\n`) as Promise<{ deployTargets: string[] }>;
  assert.deepEqual((await load('  staging:\n    targets: [web-1, web-2]\n  production:\n    targets: [prod-1]\n')).deployTargets, ['web-1', 'web-2']);
  assert.deepEqual((await load('  staging:\n    swarm: { target: manager-1, service: hello_staging }\n')).deployTargets, ['swarm:hello_staging@manager-1']);
  assert.deepEqual((await load('  staging: {}\n')).deployTargets, []);
});

async function loadText(text: string): Promise<unknown> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-pipeline-file-'));
  try {
    await writeFile(join(dir, 'wharf.yaml'), text);
    return await loadPipeline(join(dir, 'wharf.yaml'));
  } catch (e) {
    return e;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const HEAD = 'app: hello\nenvironments:\n  staging: {}\n';

test('mistakes are refused with the path and line', async () => {
  const cases: [string, RegExp][] = [
    [HEAD, /^pipeline: .* has no pipeline section$/],
    [`${HEAD}pipeline:\n  test:\n    - name: unit\n`, /^pipeline\.test\[0\]\.run: /],
    [`${HEAD}pipeline:\n  test:\n    - run: make\n      timeout: soon\n`, /^pipeline\.test\[0\]\.timeout: invalid duration/],
    [`${HEAD}pipeline:\n  deploy: production\n`, /^pipeline\.deploy\.environment: no environment named 'production'/],
    [`${HEAD}pipeline:\n  push: false\n  deploy: staging\n`, /^pipeline\.deploy: deploy needs push/],
    [`${HEAD}pipeline:\n  build:\n    tags: ['bad tag']\n`, /^pipeline\.build\.tags\[0\]: not a valid tag/],
    [`${HEAD}pipeline:\n  build:\n    dockerfile: ../Dockerfile\n`, /^pipeline\.build\.dockerfile: the Dockerfile must be inside the build context/],
    [`${HEAD}pipeline:\n  biuld: {}\n`, /^pipeline: unknown key 'biuld'/],
  ];
  for (const [text, expected] of cases) {
    const e = await loadText(text);
    assert.ok(e instanceof AppFileError, `expected an AppFileError for:\n${text}\ngot ${String(e)}`);
    assert.match(e.message, expected, text);
  }
  const located = (await loadText(`${HEAD}pipeline:\n  test:\n    - run: make\n      timeout: soon\n`)) as AppFileError;
  assert.equal(located.issues[0]!.line, 7);
});
