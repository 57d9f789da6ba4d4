// One pipeline run: build → test (each step in a fresh container from the image just built) → push →
// attest → release → deploy. Steps run in order; the first failure ends the run and every later step is
// reported as skipped — nothing is pushed after failed tests, nothing released after a failed push, and a
// deployment that fails or is rolled back fails the run.
import { IN_TOTO_PAYLOAD_TYPE, signEnvelope, type Signer } from '../attest/dsse.js';
import { predicateTypeOf, statementFor, type PipelineStep, type TestsPredicate } from '../attest/statement.js';
import type { DeploymentStatus } from '../deploy/deployment.js';
import type { DeployOutcome } from '../deploy/service.js';
import type { EnvironmentStatus } from '../deploy/status.js';
import { contextEntries, contextTar } from './build-context.js';
import type { DeploymentProgress, PipelineServer } from './pipeline-server.js';
import type { PipelineEngine } from '../engine/pipeline-engine.js';
import { DEFAULT_TEST_TIMEOUT_MS, type PipelineSpec, type TestStepSpec } from '../app-file/pipeline-schema.js';

export const RUN_LABEL = 'dev.wharf.pipeline.run';

export interface PipelinePlan {
  /** the app file, as the user named it (for messages); wharf.yaml when not given */
  file?: string;
  app: string;
  spec: PipelineSpec;
  /** absolute path of the build context */
  contextDir: string;
  commit: string;
  runId: string;
  /** where the run happens (CI system, run URL, host), recorded in the attestation */
  ci: Record<string, string>;
  /** the targets the app file gives the deploy environment (the server deploys by its applied copy) */
  deployTargets: string[];
  /** the CI's key the tests attestation is signed with; without one nothing is attested */
  signer?: Signer;
}

export type StepKind = 'build' | 'test' | 'push' | 'attest' | 'release' | 'deploy';

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
  deployment?: DeploymentSummary;
  steps: StepResult[];
  durationMs: number;
  failedStep?: string;
  error?: string;
  /** the steps that did not run because an earlier one failed */
  notRun: string[];
}

export interface DeploymentSummary {
  environment: string;
  /** the deployment in the server's record (`wharf deployments`) */
  id: number;
  status: DeploymentStatus;
  reason: string | null;
  /** the digest deployed: the release's */
  digest: string;
  /** per target, what the app's containers run once the deployment is over, as its engine says */
  targets: { target: string; reachable: boolean; containers: string[]; running: string[] }[];
  /** after a rollback on the hosts: the release the environment went back to (its current one now) */
  revertedTo?: { release: number; digest: string };
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
  /** why the step does not run at all, asked when its turn comes (earlier steps may decide it) */
  skip?(): string | undefined;
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
  const appFile = plan.file ?? 'wharf.yaml';
  const repository = `${server.registryHost}/${app}`;
  const tags = [commit, ...(spec.build.tags ?? []).filter((t) => t !== commit)];
  const result: PipelineResult = { ok: false, app, commit, runId, repository, tags, steps: [], durationMs: 0, notRun: [] };
  const recorded: PipelineStep[] = [];
  // The image carries its commit; the run id goes only on test containers, so that rebuilding the same
  // commit can reuse the engine's build cache down to the last layer.
  const imageLabels = { 'org.opencontainers.image.revision': commit };
  const containerLabels = { [RUN_LABEL]: runId };
  const environment = spec.deploy?.environment;
  // The release step starts the deployment (one request: the server deploys exactly that release) and the
  // deploy step follows it; without targets the release step says why nothing is deployed.
  let deployment: DeploymentProgress | undefined;
  let noDeployment = 'no deploy environment';

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
      skip: () => (spec.push ? undefined : 'push: false'),
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
      skip: () =>
        !spec.push
          ? 'nothing pushed'
          : spec.test.length === 0
            ? 'no test steps: nothing to attest'
            : plan.signer === undefined
              ? 'no signing key (WHARF_SIGNING_KEY): nothing attested'
              : undefined,
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
        // Signed here, with the CI's key: the server signs nothing, and push credentials alone attest nothing.
        const statement = statementFor(app, result.digest!, predicateTypeOf('tests'), predicate as unknown as Record<string, unknown>);
        const envelope = signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), plan.signer!);
        const { digest } = await server.attest(app, envelope);
        result.attestation = digest;
        return { detail: digest };
      },
    },
    {
      name: environment ? `release ${environment}` : 'release',
      kind: 'release',
      skip: () => (environment ? undefined : 'no deploy environment'),
      run: async () => {
        const env = environment!;
        const targets = await server.deployTargets(app, env);
        const deploying = targets !== null && targets.length > 0;
        // A wharf.yaml that names targets the server does not know would otherwise end green with nothing deployed.
        if (!deploying && plan.deployTargets.length > 0) {
          const there = targets === null ? `the server has no app file for ${app}` : `the app file applied on the server gives ${env} no targets`;
          throw new StepFailure(`${appFile} deploys ${env} to ${plan.deployTargets.join(', ')}, but ${there}: run 'wharf apply -f ${appFile}' first`);
        }
        if (deploying && !sameMembers(targets, plan.deployTargets)) {
          reporter.log(`release ${env}`, `the server deploys ${env} by its applied app file: to ${targets.join(', ')} (${appFile}: ${plan.deployTargets.join(', ') || 'none'})`);
        }
        const r = await server.release(app, env, result.digest!, `pipeline run ${runId}, commit ${commit}`, deploying, { commit, pipelineRun: runId });
        if (r.digest !== result.digest) {
          await r.deployment?.abandon();
          throw new StepFailure(`the server released ${r.digest}, not the digest pushed (${result.digest})`);
        }
        result.release = { environment: env, id: r.id, digest: r.digest };
        deployment = r.deployment;
        noDeployment = `${env} has no deploy targets${targets === null ? ' (no app file applied on the server)' : ''}`;
        return { detail: `release ${r.id} of ${app}/${env}` };
      },
    },
    {
      name: environment ? `deploy ${environment}` : 'deploy',
      kind: 'deploy',
      skip: () => (deployment ? undefined : noDeployment),
      run: async () => {
        const env = environment!;
        // A reason may quote a health check's answer over several lines: each gets the step's prefix.
        const outcome = await deployment!.follow((text) => text.split('\n').forEach((line) => reporter.log(`deploy ${env}`, line)));
        const id = outcome.deployment;
        // The engines have the last word on what runs, whatever the deployment reported.
        const live = await server.status(app, env).catch((e: Error) => e);
        result.deployment = deploymentSummary(outcome, live);
        const back = result.deployment.revertedTo;
        if (back) reporter.log(`deploy ${env}`, `${env} is back on release #${back.release} (${back.digest})`);
        const extra = { detail: `deployment #${id}` };
        if (outcome.result.status !== 'succeeded') {
          throw new StepFailure(`deployment #${id} ${outcome.result.status.replace('_', ' ')}${outcome.result.reason ? `: ${outcome.result.reason}` : ''}`, extra);
        }
        if (outcome.digest !== result.digest) throw new StepFailure(`deployment #${id} deployed ${outcome.digest}, not the digest tested (${result.digest})`, extra);
        if (live instanceof Error) throw new StepFailure(`deployment #${id} succeeded, but what runs cannot be checked: ${live.message}`, extra);
        const off = offTarget(live, outcome.digest);
        if (off.length > 0) throw new StepFailure(`deployment #${id} succeeded, but ${off.join('; ')}`, extra);
        return { detail: `deployment #${id}: ${outcome.digest} runs on ${live.targets.map((t) => t.target).join(', ')}` };
      },
    },
  ];

  for (const step of steps) {
    const base = { name: step.name, kind: step.kind };
    const skip = result.failedStep === undefined ? step.skip?.() : undefined;
    if (skip !== undefined || result.failedStep !== undefined) {
      if (result.failedStep !== undefined) result.notRun.push(step.name);
      const skipped: StepResult = { ...base, status: 'skipped', detail: result.failedStep !== undefined ? `${result.failedStep} failed` : skip };
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

function deploymentSummary(outcome: DeployOutcome, live: EnvironmentStatus | Error): DeploymentSummary {
  const { status, reason } = outcome.result;
  const targets = live instanceof Error ? [] : live.targets.map((t) => {
    const ours = t.containers.filter((c) => c.managed);
    return { target: t.target, reachable: t.reachable, containers: ours.map((c) => c.name), running: [...new Set(ours.map((c) => c.digest ?? 'unknown'))] };
  });
  const summary: DeploymentSummary = { environment: outcome.environment, id: outcome.deployment, status, reason, digest: outcome.digest, targets };
  if (outcome.revert && 'release' in outcome.revert) summary.revertedTo = { release: outcome.revert.release.id, digest: outcome.revert.release.digest };
  return summary;
}

/** Where the live engines disagree with a succeeded deployment of `digest`. */
function offTarget(live: EnvironmentStatus, digest: string): string[] {
  return live.targets.flatMap((t) => {
    if (!t.reachable) return [`${t.target} does not answer`];
    const wrong = t.containers.filter((c) => c.managed && c.digest !== digest).map((c) => `${t.target} runs ${c.digest ?? 'an unknown digest'} in ${c.name}`);
    const missing = t.drift.filter((d) => d.kind === 'missing_replica').map((d) => `${t.target}: ${d.message}`);
    return [...wrong, ...missing];
  });
}

function sameMembers(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
