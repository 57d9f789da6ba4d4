// The order and the stops of a pipeline run, with an engine and a server that only record what they are
// asked: tests run in the image just built, nothing happens after a failed step, and the deploy step follows
// the deployment of the release and fails the run unless the engines run the digest tested.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { parseEnvelope, verifyEnvelope } from '../../src/attest/dsse.js';
import { keyIdOf } from '../../src/attest/signers.js';
import { parseStatement, predicateTypeOf, type TestsPredicate } from '../../src/attest/statement.js';
import type { DeployOutcome } from '../../src/deploy/service.js';
import type { EnvironmentStatus } from '../../src/deploy/status.js';
import type { PipelineEngine, TestRun } from '../../src/engine/pipeline-engine.js';
import type { PipelineServer } from '../../src/pipeline/pipeline-server.js';
import { pipelineSchema } from '../../src/app-file/pipeline-schema.js';
import { runPipeline, type Reporter, type StepResult } from '../../src/pipeline/runner.js';

const IMAGE_ID = `sha256:${'1'.repeat(64)}`;
const DIGEST = `sha256:${'2'.repeat(64)}`;
const OLD_DIGEST = `sha256:${'8'.repeat(64)}`;
const HOST = 'staging-1';
/** The CI's key: the runner signs with it; the fake server checks the signature as the real one does. */
const CI_KEY = generateKeyPairSync('ed25519');
const CI_SIGNER = { keyid: keyIdOf(CI_KEY.publicKey), privateKey: CI_KEY.privateKey };

interface Fakes {
  calls: string[];
  tests: TestRun[];
  attested: TestsPredicate[];
  engine: PipelineEngine;
  server: PipelineServer;
  finished: StepResult[];
  logs: string[];
  reporter: Reporter;
  /** what each release was said to come from (its `origin` argument) */
  origins: unknown[];
}

interface Options {
  buildFails?: boolean;
  exitCodes?: number[];
  timeouts?: boolean[];
  digests?: string[];
  releaseFails?: boolean;
  /** the targets of the server's applied app file; null: no app file applied (the default) */
  serverTargets?: string[] | null;
  /** how the deployment ends, and what the engines run afterwards */
  deployment?: Partial<DeployOutcome['result']> | Error;
  /** what the server did with the environment's current release after a rollback */
  revert?: DeployOutcome['revert'];
  running?: string;
}

function fakes(opts: Options = {}): Fakes {
  const f = { calls: [] as string[], tests: [] as TestRun[], attested: [] as TestsPredicate[], finished: [] as StepResult[], logs: [] as string[], origins: [] as unknown[] } as Fakes;
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
    async attest(app, envelope) {
      const v = verifyEnvelope(parseEnvelope(Buffer.from(JSON.stringify(envelope))), [{ keyid: CI_SIGNER.keyid, name: 'ci', publicKey: CI_KEY.publicKey }]);
      if (!v.ok) throw new Error(`the attestation does not verify: ${v.reason}`);
      const statement = parseStatement(v.payload);
      assert.equal(statement.predicateType, predicateTypeOf('tests'));
      f.calls.push(`attest ${app}@sha256:${statement.subject[0]!.digest.sha256}`);
      f.attested.push(statement.predicate as unknown as TestsPredicate);
      return { digest: `sha256:${'3'.repeat(64)}` };
    },
    async deployTargets(app, environment) {
      f.calls.push(`targets of ${app}/${environment}`);
      return opts.serverTargets ?? null;
    },
    async release(app, environment, digest, _note, deploy, origin) {
      f.origins.push(origin);
      f.calls.push(`release ${app}@${digest} to ${environment}${deploy ? ' and deploy' : ''}`);
      if (opts.releaseFails) throw new Error(`release to ${app}/${environment} refused`);
      if (!deploy) return { id: 7, digest };
      const end = opts.deployment;
      return {
        id: 7,
        digest,
        deployment: {
          async follow(onLine) {
            f.calls.push('follow the deployment');
            onLine(`[${HOST}] pulling: pulling ${digest}`);
            if (end instanceof Error) throw end;
            onLine(`[${HOST}] switched: now on ${digest}`);
            const now = Date.now();
            const result = { status: 'succeeded' as const, reason: null, steps: [], startedAt: now, finishedAt: now, ...end };
            return { deployment: 5, environment, digest, release: 7, result, ...(opts.revert ? { revert: opts.revert } : {}) };
          },
          async abandon() {},
        },
      };
    },
    async status(app, environment): Promise<EnvironmentStatus> {
      f.calls.push(`status of ${app}/${environment}`);
      const digest = opts.running ?? DIGEST;
      return {
        app,
        environment,
        intended: { releaseId: 7, digest: DIGEST },
        targets: [{ target: HOST, reachable: true, containers: [{ name: 'hello-staging-5-0', id: 'c1', digest, release: '7', state: 'running', managed: true }], drift: [] }],
        inSync: digest === DIGEST,
      };
    },
  };
  f.reporter = { stepStarted() {}, log: (step, line) => f.logs.push(`${step} | ${line}`), progress() {}, stepFinished: (s) => f.finished.push(s) };
  return f;
}

async function run(f: Fakes, spec: unknown, deployTargets: string[] = [], file?: string, signer: typeof CI_SIGNER | null = CI_SIGNER) {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-runner-'));
  try {
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\n');
    const plan = { file, app: 'hello', spec: pipelineSchema.parse(spec), contextDir: dir, commit: 'abcdef1234567', runId: 'run-9', ci: { system: 'local' }, deployTargets, ...(signer ? { signer } : {}) };
    return await runPipeline(plan, f.engine, f.server, f.reporter);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const SPEC = { build: { tags: ['1.0.0'] }, test: [{ name: 'unit', run: 'make test' }, { name: 'lint', run: ['lint', '--strict'], timeout: '5s' }], deploy: 'staging' };

test('a green run builds, tests in the built image, pushes every tag, attests, releases and deploys the pushed digest', async () => {
  const f = fakes({ serverTargets: [HOST] });
  const r = await run(f, SPEC, [HOST]);
  assert.equal(r.ok, true, r.error);
  assert.deepEqual(f.calls, [
    'build 127.0.0.1:5000/hello:abcdef1234567',
    'test /bin/sh -c make test',
    'test lint --strict',
    `tag ${IMAGE_ID} 127.0.0.1:5000/hello:abcdef1234567`,
    'push 127.0.0.1:5000/hello:abcdef1234567',
    `tag ${IMAGE_ID} 127.0.0.1:5000/hello:1.0.0`,
    'push 127.0.0.1:5000/hello:1.0.0',
    `attest hello@${DIGEST}`,
    'targets of hello/staging',
    `release hello@${DIGEST} to staging and deploy`,
    'follow the deployment',
    'status of hello/staging',
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
  assert.deepEqual(f.origins, [{ commit: 'abcdef1234567', pipelineRun: 'run-9' }], 'the release names its commit and run, for rollback --to <commit>');
  assert.equal(r.digest, DIGEST);
  assert.deepEqual(r.steps.map((s) => [s.name, s.status]), [
    ['build', 'ok'],
    ['unit', 'ok'],
    ['lint', 'ok'],
    ['push', 'ok'],
    ['attest', 'ok'],
    ['release staging', 'ok'],
    ['deploy staging', 'ok'],
  ]);
  assert.deepEqual(f.finished.map((s) => s.name), r.steps.map((s) => s.name), 'the reporter saw every step');
  assert.deepEqual(r.deployment, {
    environment: 'staging',
    id: 5,
    status: 'succeeded',
    reason: null,
    digest: DIGEST,
    targets: [{ target: HOST, reachable: true, containers: ['hello-staging-5-0'], running: [DIGEST] }],
  });
  assert.equal(r.steps.at(-1)!.detail, `deployment #5: ${DIGEST} runs on ${HOST}`);
  assert.deepEqual(f.logs.filter((l) => l.startsWith('deploy staging |')), [
    `deploy staging | [${HOST}] pulling: pulling ${DIGEST}`,
    `deploy staging | [${HOST}] switched: now on ${DIGEST}`,
  ], "the deployment's progress is streamed");
});

test('an environment without targets is released, not deployed, and the deploy step says why', async () => {
  let f = fakes({ serverTargets: [] });
  let r = await run(f, SPEC);
  assert.equal(r.ok, true);
  assert.ok(f.calls.includes(`release hello@${DIGEST} to staging`), 'no deployment asked for');
  assert.deepEqual(r.steps.at(-1), { name: 'deploy staging', kind: 'deploy', status: 'skipped', detail: 'staging has no deploy targets' });
  assert.equal(r.deployment, undefined);
  f = fakes({ serverTargets: null });
  r = await run(f, SPEC);
  assert.equal(r.steps.at(-1)!.detail, 'staging has no deploy targets (no app file applied on the server)');
});

test('a wharf.yaml with targets the server does not know fails before anything is released', async () => {
  for (const serverTargets of [null, []]) {
    const f = fakes({ serverTargets });
    const r = await run(f, SPEC, [HOST]);
    assert.equal(r.ok, false);
    assert.equal(r.failedStep, 'release staging');
    assert.match(r.error!, /wharf\.yaml deploys staging to staging-1, but .*: run 'wharf apply -f wharf\.yaml' first/);
    assert.ok(!f.calls.some((c) => c.startsWith('release')), 'nothing released');
    assert.deepEqual(r.notRun, ['deploy staging']);
  }
  // The messages name the app file the run was given.
  const r = await run(fakes({ serverTargets: null }), SPEC, [HOST], 'deploy/app.yaml');
  assert.match(r.error!, /: deploy\/app\.yaml deploys staging to .*: run 'wharf apply -f deploy\/app\.yaml' first/);
});

test('the server deploys by its applied app file, and says so when wharf.yaml names other targets', async () => {
  const f = fakes({ serverTargets: [HOST] });
  const r = await run(f, SPEC, ['local']);
  assert.equal(r.ok, true, r.error);
  assert.ok(f.logs.includes(`release staging | the server deploys staging by its applied app file: to ${HOST} (wharf.yaml: local)`), f.logs.join('\n'));
  const g = fakes({ serverTargets: [HOST] });
  await run(g, SPEC, ['local'], 'ci/app.yaml');
  assert.ok(g.logs.some((l) => l.endsWith('(ci/app.yaml: local)')), g.logs.join('\n'));
});

test('a deployment that is rolled back fails the run, with the reason and what runs now', async () => {
  const back = { id: 8, app: 'hello', environment: 'staging', digest: OLD_DIGEST, tag: null, version: null, kind: 'rollback' as const, actor: 'wharf', note: null, replaces: 7, promotedFrom: null, createdAt: '', currentSince: '', commit: null, pipelineRun: null };
  const f = fakes({
    serverTargets: [HOST],
    deployment: { status: 'rolled_back', reason: `${HOST}: hello-staging-5-0: not healthy after 5s: GET http://127.0.0.1:8080/: 404` },
    running: OLD_DIGEST,
    revert: { release: back },
  });
  const r = await run(f, SPEC, [HOST]);
  assert.equal(r.ok, false);
  assert.equal(r.failedStep, 'deploy staging');
  assert.equal(r.error, `deploy staging: deployment #5 rolled back: ${HOST}: hello-staging-5-0: not healthy after 5s: GET http://127.0.0.1:8080/: 404`);
  assert.equal(r.deployment!.status, 'rolled_back');
  assert.deepEqual(r.deployment!.targets[0]!.running, [OLD_DIGEST], 'the summary shows what runs after the rollback');
  assert.deepEqual(r.deployment!.revertedTo, { release: 8, digest: OLD_DIGEST }, 'and the release staging went back to');
  assert.ok(f.logs.includes(`deploy staging | staging is back on release #8 (${OLD_DIGEST})`), f.logs.join('\n'));
  assert.equal(r.release!.digest, DIGEST, 'the release was made');
});

test('a failed deployment, a broken progress stream and engines that run another digest all fail the deploy step', async () => {
  let r = await run(fakes({ serverTargets: [HOST], deployment: { status: 'failed', reason: 'pull on host failed: manifest unknown' } }), SPEC, [HOST]);
  assert.equal(r.error, 'deploy staging: deployment #5 failed: pull on host failed: manifest unknown');
  r = await run(fakes({ serverTargets: [HOST], deployment: new Error('deployment #4 of this environment is still running') }), SPEC, [HOST]);
  assert.equal(r.error, 'deploy staging: deployment #4 of this environment is still running');
  assert.equal(r.deployment, undefined);
  r = await run(fakes({ serverTargets: [HOST], running: OLD_DIGEST }), SPEC, [HOST]);
  assert.equal(r.failedStep, 'deploy staging');
  assert.equal(r.error, `deploy staging: deployment #5 succeeded, but ${HOST} runs ${OLD_DIGEST} in hello-staging-5-0`);
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
    ['deploy staging', 'skipped'],
  ]);
  assert.equal(r.steps[1]!.exitCode, 3);
  assert.deepEqual(r.notRun, ['lint', 'push', 'attest', 'release staging', 'deploy staging']);
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

test('a refused release fails the run after the attestation, and nothing is deployed', async () => {
  const f = fakes({ releaseFails: true, serverTargets: [HOST] });
  const r = await run(f, SPEC, [HOST]);
  assert.equal(r.ok, false);
  assert.equal(r.failedStep, 'release staging');
  assert.ok(r.attestation);
  assert.deepEqual(r.steps.at(-1), { name: 'deploy staging', kind: 'deploy', status: 'skipped', detail: 'release staging failed' });
  assert.ok(!f.calls.includes('follow the deployment'));
});

test('without a signing key nothing is attested, and the run says why; the release goes on (the gate decides)', async () => {
  const f = fakes();
  const r = await run(f, SPEC, [], undefined, null);
  assert.equal(r.ok, true, r.error);
  assert.deepEqual(r.steps.find((s) => s.name === 'attest'), { name: 'attest', kind: 'attest', status: 'skipped', detail: 'no signing key (WHARF_SIGNING_KEY): nothing attested' });
  assert.equal(r.attestation, undefined);
  assert.ok(!f.calls.some((c) => c.startsWith('attest')));
  assert.ok(f.calls.includes(`release hello@${DIGEST} to staging`));
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
    ['deploy', 'skipped'],
  ]);
  f = fakes();
  r = await run(f, { test: [{ run: 'true' }], push: false });
  assert.deepEqual(f.calls, ['build 127.0.0.1:5000/hello:abcdef1234567', 'test /bin/sh -c true']);
  assert.equal(r.steps[1]!.name, 'test 1');
});
