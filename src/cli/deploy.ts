// Deploy verbs that talk to a server: apply, get, deploy, status, deployments.
import { readFileSync } from 'node:fs';
import type { EnvironmentStatus } from '../deploy/status.js';
import type { ApplyResult } from '../deploy/service.js';
import { formatChanges } from '../app-file/diff.js';
import type { DeploymentRecord } from '../metadata/metadata.js';
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';
import { appPath, clientFor } from './client.js';
import { printJson, printTable, shortDigest } from './output.js';
import { followDeployment } from './follow-deployment.js';

const common = { server: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } as const;

export async function applyCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, { ...common, file: { type: 'string', short: 'f' }, 'dry-run': { type: 'boolean', default: false } });
  if (values.help || !values.file) {
    process.stdout.write('usage: wharf apply -f wharf.yaml [--dry-run] [--json]\n');
    return values.help ? 0 : 2;
  }
  let text: string;
  try {
    text = readFileSync(values.file === '-' ? 0 : values.file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${values.file}: ${(e as Error).message}`, 2);
  }
  const r = await clientFor(values.server).request<ApplyResult>('POST', '/api/v1/apply', { file: text, dryRun: values['dry-run'] });
  if (values.json) printJson(r);
  else {
    if (r.changes.length > 0) process.stdout.write(formatChanges(r.changes) + '\n');
    process.stdout.write(
      r.applied ? `app ${r.app} applied (${r.changes.length} change${r.changes.length === 1 ? '' : 's'})\n` : `app ${r.app}: ${r.changes.length} change${r.changes.length === 1 ? '' : 's'} (dry run, nothing applied)\n`,
    );
  }
  return 0;
}

export async function getCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...common, output: { type: 'string', short: 'o', default: 'yaml' } }, true);
  if (values.help || positionals.length !== 1 || values.output !== 'yaml') {
    process.stdout.write('usage: wharf get APP -o yaml\n');
    return values.help ? 0 : 2;
  }
  const r = await clientFor(values.server).request<{ yaml: string }>('GET', `${appPath(positionals[0]!)}/app-file`);
  process.stdout.write(r.yaml.endsWith('\n') ? r.yaml : r.yaml + '\n');
  return 0;
}

export async function deployCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...common, env: { type: 'string' }, force: { type: 'boolean', default: false } }, true);
  if (values.help || positionals.length !== 1 || !values.env) {
    process.stdout.write('usage: wharf deploy APP --env ENV [--force] [--json]\n  --force  restart even when the release already runs everywhere, healthy\n');
    return values.help ? 0 : 2;
  }
  const body = { environment: values.env, ...(values.force ? { force: true } : {}) };
  return followDeployment(clientFor(values.server), `${appPath(positionals[0]!)}/deployments`, body, values.json, () => '');
}

export async function statusCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...common, env: { type: 'string' } }, true);
  if (values.help || positionals.length !== 1) {
    process.stdout.write('usage: wharf status APP [--env ENV] [--json]\n');
    return values.help ? 0 : 2;
  }
  const q = values.env ? `?environment=${encodeURIComponent(values.env)}` : '';
  const list = await clientFor(values.server).request<EnvironmentStatus[]>('GET', `${appPath(positionals[0]!)}/status${q}`);
  if (values.json) {
    printJson(list);
  } else {
    const rows = list.flatMap((e) =>
      e.targets.map((t) => ({
        env: e.environment,
        intended: e.intended ? shortDigest(e.intended.digest) : null,
        target: t.target,
        running: t.reachable ? [...new Set(t.containers.map((c) => shortDigest(c.digest)))].join(' ') || 'nothing' : 'unreachable',
        replicas: t.containers.length,
        drift: t.drift.length ? t.drift.map((d) => `${d.kind}: ${d.message}`).join('; ') : 'in sync',
      })),
    );
    for (const e of list) {
      if (e.attention) process.stderr.write(`${e.environment}: deployment #${e.attention.deployment} ${e.attention.status.replace('_', ' ')}${e.attention.reason ? ` — ${e.attention.reason}` : ''}\n`);
    }
    printTable(rows, [
      ['ENV', 'env'],
      ['INTENDED', 'intended'],
      ['TARGET', 'target'],
      ['RUNNING', 'running'],
      ['REPLICAS', 'replicas'],
      ['DRIFT', 'drift'],
    ]);
  }
  // A script can rely on the exit code: 0 only when everything runs what Wharf intends.
  return list.every((e) => e.inSync) ? 0 : 1;
}

export async function deploymentsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...common, env: { type: 'string' }, limit: { type: 'string' } }, true);
  if (values.help || positionals.length !== 1 || !values.env) {
    process.stdout.write('usage: wharf deployments APP --env ENV [--limit N] [--json]\n');
    return values.help ? 0 : 2;
  }
  const q = new URLSearchParams({ environment: values.env });
  if (values.limit) q.set('limit', values.limit);
  const list = await clientFor(values.server).request<DeploymentRecord[]>('GET', `${appPath(positionals[0]!)}/deployments?${q}`);
  if (values.json) printJson(list);
  else
    printTable(
      list.map((d) => ({
        id: d.id,
        release: d.release_id,
        digest: shortDigest(d.digest),
        status: d.status,
        who: d.actor,
        started: new Date(Number(d.started_at)).toISOString(),
        reason: d.reason,
      })),
      [
        ['ID', 'id'],
        ['RELEASE', 'release'],
        ['DIGEST', 'digest'],
        ['STATUS', 'status'],
        ['WHO', 'who'],
        ['STARTED', 'started'],
        ['REASON', 'reason'],
      ],
    );
  return 0;
}
