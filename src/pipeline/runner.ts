// One pipeline run: build → test (each step in a fresh container from the image just built) → push →
// attest → release. Steps run in order; the first failure ends the run and every later step is reported as
// skipped — nothing is pushed after failed tests, nothing released after a failed push.
import type { PipelineStep, TestsPredicate } from '../attest/statement.js';
import { contextEntries, contextTar } from './build-context.js';
import type { PipelineEngine, PipelineServer } from './engine.js';
import { DEFAULT_TEST_TIMEOUT_MS, type PipelineSpec, type TestStepSpec } from './pipeline-schema.js';

export const RUN_LABEL = 'dev.wharf.pipeline.run';

export interface PipelinePlan {
  app: string;
  spec: PipelineSpec;
  /** absolute path of the build context */
  contextDir: string;
  commit: string;
  runId: string;
  /** where the run happens (CI system, run URL, host), recorded in the attestation */
  ci: Record<string, string>;
}

export type StepKind = 'build' | 'test' | 'push' | 'attest' | 'release';

export interface StepResult {
  name: string;
  kind: StepKind;
  status: 'ok' | 'failed' | 'skipped';
  durationMs?: number;
  /** what the step produced (image ID, digest, release) or why it was skipped */
  detail?: string;
  error?: string;
  command?: string[];
  exitCode?: number;
}

export interface PipelineResult {
  ok: boolean;
  app: string;
  commit: string;
  runId: string;
  /** the repository the image is pushed to, e.g. 127.0.0.1:5000/myapp */
  repository: string;
  tags: string[];
  /** the ID (config digest) of the image built and tested */
  imageId?: string;
  /** the manifest digest pushed, attested and released */
  digest?: string;
  attestation?: string;
  release?: { environment: string; id: number; digest: string };
  steps: StepResult[];
  durationMs: number;
  failedStep?: string;
  error?: string;
  /** the steps that did not run because an earlier one failed */
  notRun: string[];
}

export interface Reporter {
  stepStarted(step: { name: string; kind: StepKind }): void;
  log(step: string, line: string): void;
  progress(step: string, text: string): void;
  stepFinished(step: StepResult): void;
}

/** A step throws StepFailure for an expected failure (a test exiting 1); anything else is reported as is. */
export class StepFailure extends Error {
  constructor(
    message: string,
    readonly extra: Partial<StepResult> = {},
  ) {
    super(message);
  }
}

interface Step {
  name: string;
  kind: StepKind;
  /** why the step does not run at all, decided before the run starts */
  skip?: string;
  run(): Promise<Partial<StepResult>>;
}

/** A test step's command: a string runs in the image's shell, a list runs as is. */
export function testCommand(t: TestStepSpec): string[] {
  return typeof t.run === 'string' ? ['/bin/sh', '-c', t.run] : t.run;
}

export function testName(t: TestStepSpec, i: number): string {
  return t.name ?? `test ${i + 1}`;
}

export async function runPipeline(plan: PipelinePlan, engine: PipelineEngine, server: PipelineServer, reporter: Reporter): Promise<PipelineResult> {
  const started = Date.now();
  const { app, spec, commit, runId } = plan;
  const repository = `${server.registryHost}/${app}`;
  const tags = [commit, ...(spec.build.tags ?? []).filter((t) => t !== commit)];
  const result: PipelineResult = { ok: false, app, commit, runId, repository, tags, steps: [], durationMs: 0, notRun: [] };
  const recorded: PipelineStep[] = [];
  // The image carries its commit; the run id goes only on test containers, so that rebuilding the same
  // commit can reuse the engine's build cache down to the last layer.
  const imageLabels = { 'org.opencontainers.image.revision': commit };
  const containerLabels = { [RUN_LABEL]: runId };

  const steps: Step[] = [
    {
      name: 'build',
      kind: 'build',
      run: async () => {
        const t0 = Date.now();
        const entries = await contextEntries(plan.contextDir, spec.build.dockerfile);
        const { imageId } = await engine.build(
          {
            context: contextTar(entries),
            dockerfile: spec.build.dockerfile,
            tag: `${repository}:${commit}`,
            args: spec.build.args ?? {},
            target: spec.build.target,
            network: spec.network,
            labels: imageLabels,
          },
          (line) => reporter.log('build', line),
        );
        result.imageId = imageId;
        recorded.push({ name: 'build', kind: 'build', durationMs: Date.now() - t0 });
        return { detail: imageId };
      },
    },
    ...spec.test.map((t, i): Step => {
      const name = testName(t, i);
      const command = testCommand(t);
      return {
        name,
        kind: 'test',
        run: async () => {
          const t0 = Date.now();
          const outcome = await engine.test(
            { image: result.imageId!, command, env: t.env ?? {}, timeoutMs: t.timeout ?? DEFAULT_TEST_TIMEOUT_MS, network: spec.network, labels: containerLabels },
            (line) => reporter.log(name, line),
          );
          const extra = { command, exitCode: outcome.exitCode };
          if (outcome.timedOut) throw new StepFailure(`timed out after ${Math.round((t.timeout ?? DEFAULT_TEST_TIMEOUT_MS) / 1000)}s`, extra);
          if (outcome.exitCode !== 0) throw new StepFailure(`exited with ${outcome.exitCode}`, extra);
          recorded.push({ name, kind: 'test', command, exitCode: outcome.exitCode, durationMs: Date.now() - t0 });
          return { ...extra, detail: 'exit 0' };
        },
      };
    }),
    {
      name: 'push',
      kind: 'push',
      skip: spec.push ? undefined : 'push: false',
      run: async () => {
        let digest: string | undefined;
        for (const tag of tags) {
          await engine.tag(result.imageId!, repository, tag);
          const pushed = await engine.push(repository, tag, server.registryAuth, (p) =>
            reporter.progress('push', `${tag.length > 20 ? tag.slice(0, 12) : tag}: ${formatBytes(p.current)} / ${formatBytes(p.total)}`),
          );
          if (digest !== undefined && pushed.digest !== digest) throw new StepFailure(`${repository}:${tag} was pushed as ${pushed.digest}, but ${tags[0]} as ${digest}`);
          digest = pushed.digest;
        }
        result.digest = digest;
        return { detail: `${repository}@${digest}` };
      },
    },
    {
      name: 'attest',
      kind: 'attest',
      skip: !spec.push ? 'nothing pushed' : spec.test.length === 0 ? 'no test steps: nothing to attest' : undefined,
      run: async () => {
        const predicate: TestsPredicate = {
          commit,
          runId,
          image: { id: result.imageId! },
          steps: recorded,
          startedAt: new Date(started).toISOString(),
          finishedAt: new Date().toISOString(),
          ci: plan.ci,
        };
        const { digest } = await server.attest(app, result.digest!, predicate);
        result.attestation = digest;
        return { detail: digest };
      },
    },
    {
      name: spec.deploy ? `release ${spec.deploy.environment}` : 'release',
      kind: 'release',
      skip: spec.deploy ? undefined : 'no deploy environment',
      run: async () => {
        const environment = spec.deploy!.environment;
        const r = await server.release(app, environment, result.digest!, `pipeline run ${runId}, commit ${commit}`);
        if (r.digest !== result.digest) throw new StepFailure(`the server released ${r.digest}, not the digest pushed (${result.digest})`);
        result.release = { environment, id: r.id, digest: r.digest };
        return { detail: `release ${r.id} of ${app}/${environment}` };
      },
    },
  ];

  for (const step of steps) {
    const base = { name: step.name, kind: step.kind };
    if (step.skip !== undefined || result.failedStep !== undefined) {
      if (result.failedStep !== undefined) result.notRun.push(step.name);
      const skipped: StepResult = { ...base, status: 'skipped', detail: result.failedStep !== undefined ? `${result.failedStep} failed` : step.skip };
      result.steps.push(skipped);
      reporter.stepFinished(skipped);
      continue;
    }
    reporter.stepStarted(base);
    const t0 = Date.now();
    let done: StepResult;
    try {
      done = { ...base, status: 'ok', ...(await step.run()), durationMs: Date.now() - t0 };
    } catch (e) {
      const extra = e instanceof StepFailure ? e.extra : {};
      done = { ...base, ...extra, status: 'failed', durationMs: Date.now() - t0, error: (e as Error).message };
      result.failedStep = step.name;
      result.error = `${step.name}: ${done.error}`;
    }
    result.steps.push(done);
    reporter.stepFinished(done);
  }
  result.ok = result.failedStep === undefined;
  result.durationMs = Date.now() - started;
  return result;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
