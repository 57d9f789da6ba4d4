// Delivery verbs that talk to a server: env, release, promote, rollback, releases.
import type { Environment, Release } from '../delivery/releases.js';
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';
import { appPath, clientFor } from './client.js';
import { followDeployment } from './follow-deployment.js';
import { printJson, printTable, shortDigest } from './output.js';
import { requireApp, requireEnvironment, upstreamOf } from './known.js';

const common = { server: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } as const;

function describeRelease(r: Release): string {
  const what = r.kind === 'promote' ? 'promoted' : r.kind === 'rollback' ? 'rolled back' : 'released';
  const pending = r.pending ? ` (pending: current once its deployment succeeds; 'wharf deploy ${r.app} --env ${r.environment}')` : '';
  return `${r.app}/${r.environment}: ${what} ${r.version ?? r.tag ?? shortDigest(r.digest)} (${r.digest}) as release ${r.id}${pending}`;
}

const usage = (text: string) => {
  process.stdout.write(`usage: ${text}\n`);
  return 0;
};

export async function envCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseFlags(
    rest,
    {
      ...common,
      'requires-promotion-from': { type: 'string' },
      protected: { type: 'boolean', default: false },
      'requires-approval': { type: 'boolean', default: false },
      'auto-deploy': { type: 'boolean', default: false },
      requires: { type: 'string', multiple: true },
    },
    true,
  );
  if (values.help) return usage('wharf env create APP ENV [--requires-promotion-from ENV] [--protected] [--requires-approval] [--auto-deploy] [--requires KIND[,KIND]] | wharf env list APP');
  const client = clientFor(values.server);
  if (sub === 'create' && positionals.length === 2) {
    const [app, name] = positionals as [string, string];
    const env = await client.request<Environment>('POST', `${appPath(app)}/environments`, {
      name,
      requiresPromotionFrom: values['requires-promotion-from'] ?? null,
      protected: values.protected,
      requiresApproval: values['requires-approval'],
      autoDeploy: values['auto-deploy'],
      requires: (values.requires ?? []).flatMap((k) => k.split(',')).map((k) => k.trim()).filter(Boolean),
    });
    if (values.json) printJson(env);
    else process.stdout.write(`environment ${app}/${env.name} created\n`);
    return 0;
  }
  if (sub === 'list' && positionals.length === 1) {
    const envs = await client.all<Environment>(`${appPath(positionals[0]!)}/environments`);
    await requireApp(client, positionals[0]!, envs);
    if (values.json) printJson(envs);
    else
      printTable(
        envs.map((e) => ({
          name: e.name,
          current: e.current ? (e.current.version ?? shortDigest(e.current.digest)) : null,
          release: e.current?.id,
          pending: e.pending ? `${e.pending.version ?? shortDigest(e.pending.digest)} (release ${e.pending.id})` : null,
          rules:
            [
              e.requiresPromotionFrom ? `promotion from ${e.requiresPromotionFrom}` : '',
              e.protected ? 'protected' : '',
              e.requiresApproval ? 'requires approval' : '',
              e.requires?.length ? `requires ${e.requires.join(', ')}` : '',
            ]
              .filter(Boolean)
              .join(', ') || null,
        })),
        [
          ['ENVIRONMENT', 'name'],
          ['CURRENT', 'current'],
          ['RELEASE', 'release'],
          ['PENDING', 'pending'],
          ['RULES', 'rules'],
        ],
      );
    return 0;
  }
  throw new CliError('usage: wharf env create APP ENV [...] | wharf env list APP', 2);
}

/** Release-like operations answer with the release, or stream a deployment when asked to (or autoDeploy). */
async function releaseOperation(server: string | undefined, path: string, body: Record<string, unknown>, deploy: boolean, json: boolean): Promise<number> {
  return followDeployment(clientFor(server), path, deploy ? { ...body, deploy: true } : body, json, describeRelease);
}

export async function releaseCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...common, env: { type: 'string' }, note: { type: 'string' }, deploy: { type: 'boolean', default: false } }, true);
  if (values.help) return usage('wharf release APP TAG|DIGEST --env ENV [--note TEXT] [--deploy] [--json]');
  if (positionals.length !== 2) throw new CliError('usage: wharf release APP TAG|DIGEST --env ENV [--note TEXT] [--deploy]', 2);
  if (!values.env) throw new CliError('release needs --env ENV: the environment to release to (wharf env list APP)', 2);
  const [app, ref] = positionals as [string, string];
  return releaseOperation(values.server, `${appPath(app)}/releases`, { environment: values.env, ref, note: values.note }, values.deploy, values.json);
}

export async function promoteCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { ...common, from: { type: 'string' }, to: { type: 'string' }, note: { type: 'string' }, deploy: { type: 'boolean', default: false }, force: { type: 'boolean', default: false } },
    true,
  );
  if (values.help) return usage('wharf promote APP --from ENV --to ENV [--note TEXT] [--force] [--deploy] [--json]');
  if (positionals.length !== 1) throw new CliError('usage: wharf promote APP --from ENV --to ENV [--force] [--deploy]', 2);
  if (!values.from || !values.to) throw new CliError(`promote needs --from ENV and --to ENV: the environment whose release goes, and where it goes`, 2);
  if (values.from === values.to) throw new CliError(`cannot promote an environment to itself: --from and --to are both ${values.from}`, 2);
  const app = positionals[0]!;
  const envs = await clientFor(values.server).all<Environment>(`${appPath(app)}/environments`);
  await requireApp(clientFor(values.server), app, envs);
  requireEnvironment(app, values.from, envs);
  requireEnvironment(app, values.to, envs);
  // Against the order (production back to staging): the server allows it when staging takes any release, but
  // it is more often a swapped --from/--to than a wish.
  const upstream = upstreamOf(values.from, envs);
  if (upstream.includes(values.to) && !values.force) {
    throw new CliError(
      `${values.to} comes before ${values.from} in ${app}'s promotion order (${[...upstream].reverse().join(' → ')} → ${values.from}): did you swap --from and --to? (--force promotes anyway)`,
      2,
    );
  }
  return releaseOperation(values.server, `${appPath(positionals[0]!)}/promote`, { from: values.from, to: values.to, note: values.note }, values.deploy, values.json);
}

export async function rollbackCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { ...common, env: { type: 'string' }, to: { type: 'string' }, note: { type: 'string' }, deploy: { type: 'boolean', default: false } },
    true,
  );
  if (values.help) return usage('wharf rollback APP --env ENV [--to VERSION|RELEASE_ID|DIGEST|COMMIT] [--note TEXT] [--deploy] [--json]');
  if (positionals.length !== 1) throw new CliError('usage: wharf rollback APP --env ENV [--to VERSION|RELEASE_ID|DIGEST|COMMIT] [--deploy]', 2);
  if (!values.env) throw new CliError('rollback needs --env ENV: the environment to roll back (wharf env list APP)', 2);
  return releaseOperation(values.server, `${appPath(positionals[0]!)}/rollback`, { environment: values.env, to: values.to, note: values.note }, values.deploy, values.json);
}

export async function releasesCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...common, env: { type: 'string' }, limit: { type: 'string' } }, true);
  if (values.help) return usage('wharf releases APP [--env ENV] [--limit N] [--json]');
  if (positionals.length !== 1) throw new CliError('usage: wharf releases APP [--env ENV] [--json]', 2);
  const q = new URLSearchParams();
  if (values.env) q.set('environment', values.env);
  if (values.limit) q.set('limit', values.limit);
  type Listed = Release & { attestations?: string[]; deployment?: { id: number; status: string } | null };
  const client = clientFor(values.server);
  // Without --limit, every release (page by page), as before the list was paged.
  const path = `${appPath(positionals[0]!)}/releases`;
  const list = values.limit ? await client.request<Listed[]>('GET', `${path}?${q}`) : await client.all<Listed>(`${path}?${q.toString() ? `${q}&` : ''}limit=1000`);
  if (list.length === 0) {
    const envs = await client.all<Environment>(`${appPath(positionals[0]!)}/environments`);
    await requireApp(client, positionals[0]!, envs);
    if (values.env) requireEnvironment(positionals[0]!, values.env, envs);
  }
  if (values.json) printJson(list);
  else
    printTable(
      list.map((r) => ({
        ...r,
        version: r.version ?? r.tag,
        digest: shortDigest(r.digest),
        attested: r.attestations?.length ? r.attestations.join(',') : null,
        deployed: r.deployment ? `#${r.deployment.id} ${r.deployment.status.replace('_', ' ')}` : null,
      })),
      [
        ['ID', 'id'],
        ['ENV', 'environment'],
        ['KIND', 'kind'],
        ['VERSION', 'version'],
        ['DIGEST', 'digest'],
        ['ATTESTED', 'attested'],
        ['DEPLOYED', 'deployed'],
        ['WHO', 'actor'],
        ['WHEN', 'createdAt'],
        ['NOTE', 'note'],
      ],
    );
  return 0;
}
