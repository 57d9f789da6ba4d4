// Following a deployment's progress as the server streams it (deploy, and release, promote, rollback and approve
// with --deploy): one line per event, then the outcome and the exit code.
import type { DeployOutcome } from '../deploy/service.js';
import type { DeployEvent } from '../deploy/deployment.js';
import type { Release } from '../delivery/releases.js';
import type { ApprovalRequest } from '../delivery/approvals.js';
import { CliError } from './cli-error.js';
import type { ApiClient } from './client.js';
import { printJson, shortDigest } from './output.js';

interface Followed {
  approval?: ApprovalRequest;
  release?: Release;
  outcome?: DeployOutcome;
}

/** One line of a deployment's progress, as the CLI shows it. */
export function describeEvent(e: DeployEvent): string {
  return `${e.target ? `[${e.target}] ` : ''}${e.kind}: ${e.message}`;
}

/**
 * Sends a request that may deploy and prints its progress as it comes; returns the exit code: 0 when nothing
 * was deployed or the deployment succeeded, 1 when it failed, was rolled back, paused or needs an operator.
 */
export async function followDeployment(client: ApiClient, path: string, body: unknown, json: boolean, describe: (r: Release) => string): Promise<number> {
  const seen: Followed = {};
  let error: { message: string } | undefined;
  await client.stream('POST', path, body, (line) => {
    if (line.event) {
      const e = line.event as DeployEvent;
      if (!json) process.stdout.write(`  ${describeEvent(e)}\n`);
    } else if (line.result) {
      seen.outcome = line as DeployOutcome;
    } else if (typeof line.release === 'object' && line.release !== null) {
      seen.release = line.release as Release;
      if (!json) process.stdout.write(describe(seen.release) + '\n');
    } else if (line.error) {
      error = line.error;
    } else if (line.approval) {
      seen.approval = line.approval as ApprovalRequest;
    } else if (line.kind && line.environment) {
      // a release answered without deploying
      seen.release = line as Release;
      if (!json) process.stdout.write(describe(seen.release) + '\n');
    }
  });
  if (seen.approval) {
    const a = seen.approval;
    if (json) printJson({ approval: a });
    else process.stdout.write(`${a.kind} to ${a.environment} waits for approval: request #${a.id} (another person runs 'wharf approve ${a.app} ${a.id}')\n`);
    return 0;
  }
  // Without a deployment the JSON answer is the release itself, as for a plain release.
  // With a deployment: the outcome, its `release` being the release object when one was made here.
  if (json) printJson(seen.outcome || error ? { ...(seen.outcome ?? {}), ...(seen.release ? { release: seen.release } : {}), ...(error ? { error } : {}) } : seen.release);
  if (error) throw new CliError(error.message);
  if (!seen.outcome) return 0;
  const { result, deployment, environment, digest, revert } = seen.outcome;
  if (!json) {
    const status = result.unchanged ? 'unchanged' : result.status.replace('_', ' ');
    const line = `deployment #${deployment} of ${environment} (${shortDigest(digest)}): ${status}${result.reason ? ` — ${result.reason}` : ''}`;
    (result.status === 'succeeded' ? process.stdout : process.stderr).write(line + '\n');
    if (seen.outcome.current) {
      const c = seen.outcome.current;
      process.stdout.write(`${environment} is now on ${c.version ?? c.tag ?? shortDigest(c.digest)} (release ${c.id}); ${c.app}:${environment} follows\n`);
    }
    if (revert && 'release' in revert) {
      const r = revert.release;
      process.stderr.write(`${environment} is back on ${r.version ?? r.tag ?? shortDigest(r.digest)} (${r.digest}), recorded as release ${r.id}\n`);
    } else if (revert) {
      process.stderr.write(`${environment}'s current release stays: ${revert.skipped}\n`);
    }
  }
  return result.status === 'succeeded' ? 0 : 1;
}
