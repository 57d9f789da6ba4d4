// The order and the stops of a pipeline run, with an engine and a server that only record what they are
// asked: tests run in the image just built, and nothing happens after a failed step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestsPredicate } from '../../src/attest/statement.js';
import type { PipelineEngine, PipelineServer, TestRun } from '../../src/pipeline/engine.js';
import { pipelineSchema } from '../../src/pipeline/pipeline-schema.js';
import { runPipeline, type Reporter, type StepResult } from '../../src/pipeline/runner.js';

const IMAGE_ID = `sha256:${'1'.repeat(64)}`;
const DIGEST = `sha256:${'2'.repeat(64)}`;

interface Fakes {
  calls: string[];
  tests: TestRun[];
  attested: TestsPredicate[];
  engine: PipelineEngine;
  server: PipelineServer;
  finished: StepResult[];
  reporter: Reporter;
}

function fakes(opts: { buildFails?: boolean; exitCodes?: number[]; timeouts?: boolean[]; digests?: string[]; releaseFails?: boolean } = {}): Fakes {
  const f = { calls: [] as string[], tests: [] as TestRun[], attested: [] as TestsPredicate[], finished: [] as StepResult[] } as Fakes;
  let pushes = 0;
  f.engine = {
    async build(req, onLog) {
      f.calls.push(`build ${req.tag}`);
      onLog('Step 1/1 : FROM scratch');
      if (opts.buildFails) throw new Error("The command '/bin/sh -c false' returned a non-zero code: 1");
      return { imageId: IMAGE_ID };
    },
    async test(run) {
      const i = f.tests.push(run) - 1;
      f.calls.push(`test ${run.command.join(' ')}`);
      return { exitCode: opts.exitCodes?.[i] ?? 0, timedOut: opts.timeouts?.[i] ?? false };
    },
    async tag(image, repository, tag) {
      f.calls.push(`tag ${image} ${repository}:${tag}`);
    },
    async push(repository, tag) {
      f.calls.push(`push ${repository}:${tag}`);
      return { digest: opts.digests?.[pushes++] ?? DIGEST };
    },
  };
  f.server = {
    registryHost: '127.0.0.1:5000',
    registryAuth: undefined,
    async attest(app, digest, predicate) {
      f.calls.push(`attest ${app}@${digest}`);
      f.attested.push(predicate);
      return { digest: `sha256:${'3'.repeat(64)}` };
    },
    async release(app, environment, digest) {
      f.calls.push(`release ${app}@${digest} to ${environment}`);
      if (opts.releaseFails) throw new Error(`release to ${app}/${environment} refused`);
      return { id: 7, digest };
    },
  };
  f.reporter = { stepStarted() {}, log() {}, progress() {}, stepFinished: (s) => f.finished.push(s) };
  return f;
}

async function run(f: Fakes, spec: unknown) {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-runner-'));
  try {
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n');
    const plan = { app: 'hello', spec: pipelineSchema.parse(spec), contextDir: dir, commit: 'abcdef1234567', runId: 'run-9', ci: { system: 'local' } };
    return await runPipeline(plan, f.engine, f.server, f.reporter);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const SPEC = { build: { tags: ['1.0.0'] }, test: [{ name: 'unit', run: 'make test' }, { name: 'lint', run: ['lint', '--strict'], timeout: '5s' }], deploy: 'staging' };

test('a green run builds, tests in the built image, pushes every tag, attests and releases the pushed digest', async () => {
  const f = fakes();
  const r = await run(f, SPEC);
  assert.equal(r.ok, true);
  assert.deepEqual(f.calls, [
    'build 127.0.0.1:5000/hello:abcdef1234567',
    'test /bin/sh -c make test',
    'test lint --strict',
    `tag ${IMAGE_ID} 127.0.0.1:5000/hello:abcdef1234567`,
    'push 127.0.0.1:5000/hello:abcdef1234567',
    `tag ${IMAGE_ID} 127.0.0.1:5000/hello:1.0.0`,
    'push 127.0.0.1:5000/hello:1.0.0',
    `attest hello@${DIGEST}`,
    `release hello@${DIGEST} to staging`,
  ]);
  assert.ok(f.tests.every((t) => t.image === IMAGE_ID), 'tests run in the image ID, not a tag');
  assert.equal(f.tests[1]!.timeoutMs, 5000);
  assert.deepEqual(f.tests[0]!.labels, { 'dev.wharf.pipeline.run': 'run-9' });
  const p = f.attested[0]!;
  assert.equal(p.commit, 'abcdef1234567');
  assert.equal(p.runId, 'run-9');
  assert.deepEqual(p.image, { id: IMAGE_ID });
  assert.deepEqual(
    p.steps.map((s) => [s.name, s.kind, s.exitCode, s.command]),
    [
      ['build', 'build', undefined, undefined],
      ['unit', 'test', 0, ['/bin/sh', '-c', 'make test']],
      ['lint', 'test', 0, ['lint', '--strict']],
    ],
  );
  assert.deepEqual(r.release, { environment: 'staging', id: 7, digest: DIGEST });
  assert.equal(r.digest, DIGEST);
  assert.deepEqual(r.steps.map((s) => [s.name, s.status]), [
    ['build', 'ok'],
    ['unit', 'ok'],
    ['lint', 'ok'],
    ['push', 'ok'],
    ['attest', 'ok'],
    ['release staging', 'ok'],
  ]);
  assert.deepEqual(f.finished.map((s) => s.name), r.steps.map((s) => s.name), 'the reporter saw every step');
});

test('a failing test stops the run: no later test, no push, no attestation, no release', async () => {
  const f = fakes({ exitCodes: [3] });
  const r = await run(f, SPEC);
  assert.equal(r.ok, false);
  assert.equal(r.failedStep, 'unit');
  assert.equal(r.error, 'unit: exited with 3');
  assert.deepEqual(f.calls, ['build 127.0.0.1:5000/hello:abcdef1234567', 'test /bin/sh -c make test']);
  assert.deepEqual(r.steps.map((s) => [s.name, s.status]), [
    ['build', 'ok'],
    ['unit', 'failed'],
    ['lint', 'skipped'],
    ['push', 'skipped'],
    ['attest', 'skipped'],
    ['release staging', 'skipped'],
  ]);
  assert.equal(r.steps[1]!.exitCode, 3);
  assert.deepEqual(r.notRun, ['lint', 'push', 'attest', 'release staging']);
  assert.equal(r.digest, undefined);
});

test('a test that times out fails its step', async () => {
  const f = fakes({ timeouts: [false, true], exitCodes: [0, 137] });
  const r = await run(f, SPEC);
  assert.equal(r.failedStep, 'lint');
  assert.match(r.error!, /timed out after 5s/);
  assert.ok(!f.calls.some((c) => c.startsWith('push')));
});

test('a failing build stops before any test', async () => {
  const f = fakes({ buildFails: true });
  const r = await run(f, SPEC);
  assert.equal(r.failedStep, 'build');
  assert.match(r.error!, /returned a non-zero code: 1/);
  assert.deepEqual(f.calls, ['build 127.0.0.1:5000/hello:abcdef1234567']);
  assert.ok(r.steps.slice(1).every((s) => s.status === 'skipped'));
});

test('tags that end up as different digests fail the push and nothing is attested', async () => {
  const f = fakes({ digests: [DIGEST, `sha256:${'9'.repeat(64)}`] });
  const r = await run(f, SPEC);
  assert.equal(r.failedStep, 'push');
  assert.match(r.error!, /was pushed as sha256:9{64}/);
  assert.ok(!f.calls.some((c) => c.startsWith('attest') || c.startsWith('release')));
});

test('a refused release fails the run after the attestation', async () => {
  const f = fakes({ releaseFails: true });
  const r = await run(f, SPEC);
  assert.equal(r.ok, false);
  assert.equal(r.failedStep, 'release staging');
  assert.ok(r.attestation);
});

test('without tests nothing is attested; without deploy nothing is released; push: false stops after the tests', async () => {
  let f = fakes();
  let r = await run(f, { test: [] });
  assert.equal(r.ok, true);
  assert.deepEqual(r.steps.map((s) => [s.name, s.status]), [
    ['build', 'ok'],
    ['push', 'ok'],
    ['attest', 'skipped'],
    ['release', 'skipped'],
  ]);
  f = fakes();
  r = await run(f, { test: [{ run: 'true' }], push: false });
  assert.deepEqual(f.calls, ['build 127.0.0.1:5000/hello:abcdef1234567', 'test /bin/sh -c true']);
  assert.equal(r.steps[1]!.name, 'test 1');
});
