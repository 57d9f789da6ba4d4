// Tag verbs that talk to a server: `wharf tags history REPO[:TAG]`, `wharf tag restore REPO:TAG`.
import type { TagChange } from '../metadata/metadata.js';
import type { TagMove } from '../delivery/tags.js';
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';
import { clientFor } from './client.js';
import { printJson, printTable, shortDigest } from './output.js';
import { repositoryExists } from './known.js';

const common = { server: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } as const;

/** REPO[:TAG], where the tag is after the last colon that follows the last slash (host:port/repo stays whole). */
function splitRepoTag(ref: string): { repo: string; tag?: string } {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) } : { repo: ref };
}

const repoPath = (repo: string) => `/api/v1/repositories/${repo.split('/').map(encodeURIComponent).join('/')}`;

export async function tagsCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseFlags(rest, common, true);
  if (sub !== 'history' || positionals.length !== 1 || values.help) {
    process.stdout.write('usage: wharf tags history REPO[:TAG] [--json]\n');
    return values.help ? 0 : 2;
  }
  const { repo, tag } = splitRepoTag(positionals[0]!);
  const client = clientFor(values.server);
  const list = await client.all<TagChange>(`${repoPath(repo)}/tags/history?limit=1000${tag ? `&tag=${encodeURIComponent(tag)}` : ''}`);
  if (list.length === 0) {
    const exists = await repositoryExists(client, repo);
    if (exists === false) throw new CliError(`no repository named ${repo} on ${client.server}`);
    if (tag !== undefined) throw new CliError(`${repo} has no tag ${tag}, and never had one`);
  }
  if (values.json) printJson(list);
  else
    printTable(
      list.map((c) => ({
        tag: c.tag,
        change: c.oldDigest === null ? 'created' : c.newDigest === null ? 'deleted' : 'moved',
        from: shortDigest(c.oldDigest),
        to: shortDigest(c.newDigest),
        actor: c.actor,
        at: new Date(c.at).toISOString(),
      })),
      [
        ['TAG', 'tag'],
        ['CHANGE', 'change'],
        ['FROM', 'from'],
        ['TO', 'to'],
        ['WHO', 'actor'],
        ['WHEN', 'at'],
      ],
    );
  return 0;
}

export async function tagCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseFlags(rest, { ...common, to: { type: 'string' }, at: { type: 'string' }, force: { type: 'boolean', default: false } }, true);
  const { repo, tag } = positionals.length === 1 ? splitRepoTag(positionals[0]!) : { repo: '', tag: undefined };
  if (sub !== 'restore' || !tag || (!values.to && !values.at) || values.help) {
    if (values.help) return process.stdout.write('usage: wharf tag restore REPO:TAG --to DIGEST|--at TIME [--force]\n'), 0;
    throw new CliError('usage: wharf tag restore REPO:TAG --to DIGEST|--at TIME [--force]', 2);
  }
  const move = await clientFor(values.server).request<TagMove>('POST', `${repoPath(repo)}/tags/${encodeURIComponent(tag)}/restore`, {
    to: values.to,
    at: values.at,
    force: values.force || undefined,
  });
  if (values.json) printJson(move);
  else process.stdout.write(`${repo}:${tag} now points at ${move.digest} (was ${move.previous ?? 'absent'})\n`);
  return 0;
}
