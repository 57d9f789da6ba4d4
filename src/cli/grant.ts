// `wharf grant` / `wharf revoke`: what users and @groups may do on which repository patterns.
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';
import { ADMIN_FLAGS, ADMIN_HELP, DATA_HELP, withAccounts } from './local-accounts.js';
import { printJson, printTable } from './output.js';

const GRANT_HELP = `usage: wharf grant USER|@GROUP ACTIONS PATTERN
       wharf grant --list [--json]

  ACTIONS  comma-separated: pull, push, delete, release, release:<environment>, admin, or *
  PATTERN  repository glob: myapp, team-a/*, *
e.g. wharf grant @team-a pull,push 'team-a/*'    wharf grant ci-bot release:staging myapp
${ADMIN_HELP}${DATA_HELP}`;

const REVOKE_HELP = `usage: wharf revoke USER|@GROUP [ACTIONS] PATTERN

Takes back the given actions (all, without ACTIONS) on exactly that pattern.
${ADMIN_HELP}${DATA_HELP}`;

export async function grantCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...ADMIN_FLAGS, list: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } }, true);
  if (values.help) {
    process.stdout.write(GRANT_HELP + '\n');
    return 0;
  }
  if (values.list && positionals.length === 0) {
    const grants = await withAccounts(values, (accounts) => accounts.grants());
    if (values.json) printJson(grants);
    else printTable(grants.map((g) => ({ ...g, actions: g.actions.join(',') })), [['SUBJECT', 'subject'], ['ACTIONS', 'actions'], ['PATTERN', 'pattern']]);
    return 0;
  }
  if (positionals.length !== 3) throw new CliError(GRANT_HELP, 2);
  const [subject, actions, pattern] = positionals as [string, string, string];
  const added = await withAccounts(values, (accounts) => accounts.grant(subject, actions, pattern));
  process.stderr.write(added.length > 0 ? `granted ${added.join(',')} on ${pattern} to ${subject}\n` : `${subject} already had ${actions} on ${pattern}\n`);
  return 0;
}

export async function revokeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...ADMIN_FLAGS, help: { type: 'boolean', short: 'h' } }, true);
  if (values.help) {
    process.stdout.write(REVOKE_HELP + '\n');
    return 0;
  }
  if (positionals.length !== 2 && positionals.length !== 3) throw new CliError(REVOKE_HELP, 2);
  const subject = positionals[0]!;
  const pattern = positionals[positionals.length - 1]!;
  const actions = positionals.length === 3 ? positionals[1] : undefined;
  const n = await withAccounts(values, (accounts) => accounts.revoke(subject, actions, pattern));
  process.stderr.write(`revoked ${n} grant${n === 1 ? '' : 's'} of ${subject} on ${pattern}\n`);
  return 0;
}
