// `wharf token create|list|revoke`: tokens, on a local data dir (robot tokens for CI, limited to repository scopes)
// or with --server through the server's API (your own tokens; an admin's --scope makes robot tokens). The secret
// is shown once.
import { parseDuration } from '../units.js';
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';
import { DATA_FLAGS, DATA_HELP, formatTime, withLocalData } from './local-accounts.js';
import { printJson, printTable } from './output.js';
import { clientFor, type Credentials } from './client.js';
import { readStdin } from './login.js';

const HELP = `usage: wharf token create --name NAME --scope SCOPE [--scope SCOPE …] [--expires DURATION] [--json]
       wharf token list [--json]
       wharf token revoke NAME
  with --server URL (or after wharf login): the server's tokens, through its API
       wharf token create --server URL --name NAME [--scope SCOPE …] [--expires D] [-u USER --password-stdin]
       wharf token list --server URL          your tokens (an admin sees everyone's)
       wharf token revoke NAME --server URL

  Without --scope a server token acts as you (what wharf login keeps); with --scope it is a robot token (admins
  only). A token cannot make tokens: create them with -u USER --password-stdin.

  --scope    repository:<pattern>:<actions>, e.g. 'repository:myapp/*:pull,push'
             (actions: pull, push, delete, release, release:<environment>, admin)
  --expires  e.g. 30d, 12h (default: never)
The secret is printed once; use it as the password of docker/podman/skopeo login (any user name).
${DATA_HELP}`;

export async function tokenCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    {
      ...DATA_FLAGS,
      name: { type: 'string' },
      scope: { type: 'string', multiple: true },
      expires: { type: 'string' },
      json: { type: 'boolean', default: false },
      server: { type: 'string' },
      username: { type: 'string', short: 'u' },
      'password-stdin': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const [verb, ...rest] = positionals;
  if (values.server !== undefined) {
    return serverTokens(verb, rest, values);
  }
  if (verb === 'create' && rest.length === 0) {
    if (values.name === undefined) throw new CliError('token create needs --name', 2);
    let expiresIn: number | undefined;
    try {
      expiresIn = values.expires === undefined ? undefined : parseDuration(values.expires);
    } catch (e) {
      throw new CliError(`--expires: ${(e as Error).message}`, 2);
    }
    const created = await withLocalData(values, ({ accounts }) => accounts.createToken(values.name!, values.scope ?? [], expiresIn));
    if (values.json) {
      printJson(created);
    } else {
      process.stderr.write(`token ${created.name} created: ${created.scope}, expires ${created.expires ?? 'never'}\nsecret (shown once; use it as the login password):\n`);
      process.stdout.write(created.secret + '\n');
    }
    return 0;
  }
  if (verb === 'list' && rest.length === 0) {
    const tokens = await withLocalData(values, ({ accounts }) => accounts.tokens());
    const now = Date.now();
    const shown = tokens.map((t) => ({
      name: t.name,
      scope: t.scope || `as ${t.createdBy ?? '-'}`,
      created: formatTime(t.createdAt),
      createdBy: t.createdBy,
      expires: formatTime(t.expiresAt),
      state: t.revokedAt !== null ? 'revoked' : t.expiresAt !== null && t.expiresAt <= now ? 'expired' : 'active',
    }));
    if (values.json) printJson(shown);
    else printTable(shown, [['NAME', 'name'], ['STATE', 'state'], ['SCOPE', 'scope'], ['EXPIRES', 'expires'], ['CREATED', 'created'], ['BY', 'createdBy']]);
    return 0;
  }
  if (verb === 'revoke' && rest.length === 1) {
    await withLocalData(values, ({ accounts }) => accounts.revokeToken(rest[0]!));
    process.stderr.write(`token ${rest[0]} revoked; a running server refuses it within seconds\n`);
    return 0;
  }
  throw new CliError(HELP, 2);
}

interface ServerToken {
  id: string;
  name: string;
  secret?: string;
  scope: string[];
  createdAt: string;
  createdBy?: string | null;
  expiresAt: string | null;
  state?: string;
}

/** The same verbs through the server's API (POST/GET/DELETE /api/v1/tokens). */
async function serverTokens(
  verb: string | undefined,
  rest: string[],
  values: { server?: string; name?: string; scope?: string[]; expires?: string; json: boolean; username?: string; 'password-stdin': boolean },
): Promise<number> {
  let once: Credentials | undefined;
  if (values['password-stdin']) {
    if (!values.username) throw new CliError('--password-stdin needs -u USER', 2);
    once = { username: values.username, password: await readStdin() };
  }
  const client = clientFor(values.server, once);
  if (verb === 'create' && rest.length === 0) {
    if (values.name === undefined) throw new CliError('token create needs --name', 2);
    const created = await client.request<ServerToken>('POST', '/api/v1/tokens', { name: values.name, scope: values.scope, expires: values.expires });
    if (values.json) printJson(created);
    else {
      const scope = created.scope.length ? created.scope.join(' ') : `acts as ${once?.username ?? 'you'}`;
      process.stderr.write(`token ${created.name} created: ${scope}, expires ${created.expiresAt ?? 'never'}\nsecret (shown once; use it as the login password):\n`);
      process.stdout.write(created.secret + '\n');
    }
    return 0;
  }
  if (verb === 'list' && rest.length === 0) {
    const items = await client.items<ServerToken>('/api/v1/tokens');
    if (values.json) printJson(items);
    else
      printTable(
        items.map((t) => ({ ...t, scope: t.scope.length ? t.scope.join(' ') : `as ${t.createdBy ?? '-'}` })),
        [['NAME', 'name'], ['STATE', 'state'], ['SCOPE', 'scope'], ['EXPIRES', 'expiresAt'], ['CREATED', 'createdAt'], ['BY', 'createdBy']],
      );
    return 0;
  }
  if (verb === 'revoke' && rest.length === 1) {
    await client.request('DELETE', `/api/v1/tokens/${encodeURIComponent(rest[0]!)}`);
    process.stderr.write(`token ${rest[0]} revoked\n`);
    return 0;
  }
  throw new CliError(HELP, 2);
}
