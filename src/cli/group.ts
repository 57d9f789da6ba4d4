// `wharf group add|remove|list`: groups of users, to grant to many at once (wharf grant @GROUP …).
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';
import { ADMIN_FLAGS, ADMIN_HELP, DATA_HELP, withAccounts } from './local-accounts.js';
import { printJson, printTable } from './output.js';

const HELP = `usage: wharf group add GROUP USER…
       wharf group remove GROUP [USER…]   (no users: the whole group, with its grants)
       wharf group list [--json]
${ADMIN_HELP}${DATA_HELP}`;

export async function groupCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...ADMIN_FLAGS, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } }, true);
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const [verb, group, ...users] = positionals;
  const name = group?.replace(/^@/, '');
  if (verb === 'add' && name && users.length > 0) {
    const added = await withAccounts(values, (accounts) => accounts.addToGroup(name, users));
    process.stderr.write(added.length > 0 ? `added ${added.join(', ')} to @${name}\n` : `already members of @${name}\n`);
    return 0;
  }
  if (verb === 'remove' && name) {
    const n = await withAccounts(values, (accounts) => accounts.removeFromGroup(name, users));
    process.stderr.write(users.length > 0 ? `removed ${n} member(s) from @${name}\n` : `group @${name} removed (${n} members, and its grants)\n`);
    return 0;
  }
  if (verb === 'list' && group === undefined) {
    const groups = await withAccounts(values, (accounts) => accounts.groups());
    if (values.json) printJson(groups);
    else printTable(groups.map((g) => ({ group: `@${g.group}`, members: g.members.join(',') })), [['GROUP', 'group'], ['MEMBERS', 'members']]);
    return 0;
  }
  throw new CliError(HELP, 2);
}
