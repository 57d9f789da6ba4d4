// `wharf pipeline run [-f wharf.yaml]`: builds, tests in the image, pushes, attests, releases and deploys,
// through the local Docker Engine (DOCKER_HOST) and the Wharf server the CLI is logged in to.
import { dirname } from 'node:path';
import type { Envelope } from '../attest/dsse.js';
import { loadSigningKey } from '../attest/signing-key.js';
import type { DeployEvent } from '../deploy/deployment.js';
import type { DeployOutcome } from '../deploy/service.js';
import type { EnvironmentStatus } from '../deploy/status.js';
import type { DeploymentProgress, PipelineServer } from '../pipeline/pipeline-server.js';
import { PlainReporter, seconds, TtyReporter } from '../pipeline/reporter.js';
import { ciInfo, detectCommit, runIdOf } from '../pipeline/run-context.js';
import type { PipelineResult } from '../pipeline/runner.js';
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';
import { ApiError, appPath, clientFor, type ApiClient } from './client.js';
import { describeEvent } from './follow-deployment.js';
import { printJson, shortDigest } from './output.js';

const USAGE = `usage: wharf pipeline run [-f wharf.yaml] [--signing-key FILE] [--server URL] [--json]

Builds the image of the app file's pipeline section through the Docker Engine (DOCKER_HOST), tags it with the
commit (CI_COMMIT_SHA, GITHUB_SHA or git rev-parse HEAD), runs each test step in a fresh container from it,
pushes it to the Wharf server, signs a tests attestation of the pushed digest with the CI's key
(--signing-key, or WHARF_SIGNING_KEY: a PEM file or PEM text; Ed25519 or ECDSA P-256, registered on the server
by a global admin with 'wharf signer add') and hands it to the server, releases that digest to the pipeline's deploy environment and, when the app file applied on the server gives that
environment targets, deploys it there and waits for the outcome. Stops at the first failure; exit code 1 if a
step failed (a deployment that fails or is rolled back included).`;

/** The Wharf server as a pipeline sees it: the registry to push to, and the management API. */
export function pipelineServer(client: ApiClient): PipelineServer {
  const registryHost = new URL(client.server).host;
  const creds = client.credentials;
  // The token `wharf login` keeps works as a registry password too (docker login takes tokens the same way).
  const secret = creds?.token ?? creds?.password;
  return {
    registryHost,
    registryAuth: creds && secret !== undefined ? { username: creds.username, password: secret, serveraddress: registryHost } : undefined,
    attest: (app: string, envelope: Envelope) => client.request<{ digest: string }>('POST', `${appPath(app)}/attestations`, { envelope }),
    deployTargets: async (app: string, environment: string) => {
      let yaml: string;
      try {
        ({ yaml } = await client.request<{ yaml: string }>('GET', `${appPath(app)}/app-file`));
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      }
      const [{ parseAppFile }, { resolveEnvironment, targetNames }] = await Promise.all([import('../app-file/parse.js'), import('../app-file/plan.js')]);
      const file = parseAppFile(yaml);
      return file.environments[environment] ? targetNames(resolveEnvironment(file, environment)) : [];
    },
    // Deploying, the server answers with JSON lines: the release first, then the deployment's progress and
    // outcome. The release step reads the first line; the deploy step follows the rest of the same answer.
    release: async (app: string, environment: string, digest: string, note: string, deploy: boolean, origin?: { commit: string; pipelineRun: string }) => {
      // A commit that is not hex (a CI that reports something else) is left out rather than refused.
      const from = origin === undefined ? {} : { pipelineRun: origin.pipelineRun, ...(/^[0-9a-fA-F]{7,64}$/.test(origin.commit) ? { commit: origin.commit } : {}) };
      const lines = client.lines('POST', `${appPath(app)}/releases`, { environment, ref: digest, note, deploy, ...from });
      const first = await lines.next();
      // Deploying, the release is the first line ({"release": …}); otherwise it is the whole answer.
      const release = (first.done ? undefined : deploy ? first.value.release : first.value) as { id: number; digest: string } | undefined;
      if (release?.digest === undefined) {
        await lines.return();
        throw new Error('the server answered the release without a release');
      }
      if (!deploy) {
        await lines.return();
        return { id: release.id, digest: release.digest };
      }
      return { id: release.id, digest: release.digest, deployment: followLines(lines) };
    },
    status: async (app: string, environment: string) => {
      const [status] = await client.request<EnvironmentStatus[]>('GET', `${appPath(app)}/status?environment=${encodeURIComponent(environment)}`);
      if (!status) throw new Error(`the server reported no status for ${app}/${environment}`);
      return status;
    },
  };
}

/** The rest of a deployment's answer: progress events, then the outcome (or an error). */
function followLines(lines: AsyncGenerator<any, void, undefined>): DeploymentProgress {
  return {
    follow: async (onLine) => {
      for await (const line of lines) {
        if (line.event) onLine(describeEvent(line.event as DeployEvent));
        else if (line.result) return line as DeployOutcome;
        else if (line.error) throw new Error(line.error.message);
      }
      throw new Error('the server ended the deployment without its outcome');
    },
    abandon: async () => {
      await lines.return();
    },
  };
}

export async function pipelineCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseFlags(
    rest,
    {
      file: { type: 'string', short: 'f', default: 'wharf.yaml' },
      server: { type: 'string' },
      'signing-key': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help || sub === '--help' || sub === '-h') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (sub !== 'run' || positionals.length > 0) throw new CliError(USAGE, 2);

  // The app-file schema and dockerode take a while to load: only this command pays for them.
  const [{ AppFileError }, { loadPipeline }, { runPipeline }, { DockerPipelineEngine }] = await Promise.all([
    import('../app-file/parse.js'),
    import('../pipeline/pipeline-file.js'),
    import('../pipeline/runner.js'),
    import('../engine/docker-pipeline-engine.js'),
  ]);
  let loaded;
  try {
    loaded = await loadPipeline(values.file);
  } catch (e) {
    if (e instanceof AppFileError) {
      throw new CliError(e.issues.map((i) => `${values.file}${i.line ? `:${i.line}` : ''}: ${i.path ? `${i.path}: ` : ''}${i.message}`).join('\n'), 2);
    }
    throw new CliError((e as Error).message, 2);
  }
  const client = clientFor(values.server);
  let commit: string;
  try {
    commit = await detectCommit(dirname(values.file));
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }

  const keySource = values['signing-key'] ?? process.env.WHARF_SIGNING_KEY;
  let signer;
  if (keySource !== undefined && keySource !== '') {
    try {
      signer = await loadSigningKey(keySource);
    } catch (e) {
      throw new CliError((e as Error).message, 2);
    }
  }

  const engine = new DockerPipelineEngine();
  const tty = !values.json && process.stdout.isTTY === true;
  const reporter = tty ? new TtyReporter(process.stdout) : new PlainReporter(values.json ? process.stderr : process.stdout);
  // An interrupted run removes the test container it started before going.
  const interrupt = () => {
    void engine.abort().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  let result: PipelineResult;
  try {
    result = await runPipeline({ ...loaded, commit, runId: runIdOf(), ci: ciInfo(), ...(signer ? { signer } : {}) }, engine, pipelineServer(client), reporter);
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    if (reporter instanceof TtyReporter) reporter.close();
  }
  if (values.json) printJson(result);
  else process.stdout.write(summary(result) + '\n');
  return result.ok ? 0 : 1;
}

function summary(r: PipelineResult): string {
  if (!r.ok) {
    return `pipeline failed at ${r.error}${r.notRun.length ? `; not run: ${r.notRun.join(', ')}` : ''}`;
  }
  const what = r.digest ? `${r.repository}@${shortDigest(r.digest)}` : `image ${shortDigest(r.imageId)} (not pushed)`;
  const attested = r.attestation ? ', tests attested' : '';
  const released = r.release ? `, released to ${r.release.environment} as release ${r.release.id}` : '';
  const d = r.deployment;
  const deployed = d ? `, deployed by deployment #${d.id} to ${d.targets.length} target${d.targets.length === 1 ? '' : 's'}` : '';
  return `pipeline succeeded in ${seconds(r.durationMs)}: ${what} from commit ${r.commit.slice(0, 12)}${attested}${released}${deployed}`;
}
