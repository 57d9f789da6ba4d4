// `wharf token create|list|revoke`: robot tokens for CI, limited to repository scopes; the secret is shown once.
import { parseDuration } from '../config.js';
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';
import { DATA_FLAGS, DATA_HELP, formatTime, withLocalData } from './local-accounts.js';
import { printJson, printTable } from './output.js';

const HELP = `usage: wharf token create --name NAME --scope SCOPE [--scope SCOPE …] [--expires DURATION] [--json]
       wharf token list [--json]
       wharf token revoke NAME

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
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const [verb, ...rest] = positionals;
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
      scope: t.scope,
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
