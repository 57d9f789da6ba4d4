// Where a pipeline run comes from: the commit (CI_COMMIT_SHA, GITHUB_SHA, or `git rev-parse HEAD`), a run id
// (the CI's, else a fresh one) and what the CI system says about the run, for the attestation.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { promisify } from 'node:util';

const COMMIT = /^[0-9a-f]{7,64}$/;

export async function detectCommit(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  for (const name of ['CI_COMMIT_SHA', 'GITHUB_SHA'] as const) {
    const v = env[name]?.trim().toLowerCase();
    if (!v) continue;
    if (!COMMIT.test(v)) throw new Error(`${name}=${JSON.stringify(env[name])} is not a commit SHA`);
    return v;
  }
  try {
    const { stdout } = await promisify(execFile)('git', ['rev-parse', 'HEAD'], { cwd: dir, timeout: 10_000 });
    const sha = stdout.trim();
    if (COMMIT.test(sha)) return sha;
  } catch {
    // not a checkout, or no git: said below
  }
  throw new Error(`no commit to tag the image with: set CI_COMMIT_SHA (or GITHUB_SHA), or run inside a git checkout (${dir})`);
}

export function runIdOf(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CI_PIPELINE_ID) return `gitlab-${env.CI_PIPELINE_ID}${env.CI_JOB_ID ? `-${env.CI_JOB_ID}` : ''}`;
  if (env.GITHUB_RUN_ID) return `github-${env.GITHUB_RUN_ID}-${env.GITHUB_RUN_ATTEMPT ?? '1'}`;
  return randomUUID();
}

/** What the environment says about the CI system running the pipeline (the server records it as reported). */
export function ciInfo(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const info: Record<string, string> = { host: hostname() };
  if (env.GITHUB_ACTIONS === 'true') {
    info.system = 'github-actions';
    if (env.GITHUB_SERVER_URL && env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID) {
      info.url = `${env.GITHUB_SERVER_URL}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`;
    }
  } else if (env.GITLAB_CI === 'true') {
    info.system = 'gitlab-ci';
    if (env.CI_PIPELINE_URL) info.url = env.CI_PIPELINE_URL;
  } else if (env.CI) {
    info.system = 'ci';
  } else {
    info.system = 'local';
  }
  return info;
}
