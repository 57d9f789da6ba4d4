// `wharf user add|passwd|logout|remove|list`: the people who log in, in the local data dir.
import { generatePassword } from '../auth/password.js';
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';
import { ADMIN_FLAGS, ADMIN_HELP, DATA_HELP, withAccounts, formatTime, readStdinSecret } from './local-accounts.js';
import { printJson, printTable } from './output.js';

const HELP = `usage: wharf user add NAME [--role admin|member] [--password-stdin]
       wharf user passwd NAME [--password-stdin]
       wharf user logout NAME      end every token and stored login of NAME (the password stays)
       wharf user remove NAME
       wharf user list [--json]

Without --password-stdin a password is generated and printed once.
  --role  admin may do everything; member (default) what grants allow (wharf grant)
${ADMIN_HELP}${DATA_HELP}`;

export async function userCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { ...ADMIN_FLAGS, role: { type: 'string', default: 'member' }, 'password-stdin': { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
    true,
  );
  const [verb, name, ...extra] = positionals;
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const needsName = verb === 'add' || verb === 'passwd' || verb === 'logout' || verb === 'remove';
  if (!verb || !(needsName || verb === 'list') || (needsName ? name === undefined : name !== undefined) || extra.length > 0) throw new CliError(HELP, 2);
  const role = values.role;
  if (role !== 'admin' && role !== 'member') throw new CliError(`--role must be admin or member, not ${JSON.stringify(role)}`, 2);

  const password = async (): Promise<{ value: string; generated: boolean }> =>
    values['password-stdin'] ? { value: await readStdinSecret(), generated: false } : { value: generatePassword(), generated: true };
  const announce = (p: { value: string; generated: boolean }) => {
    if (p.generated) process.stdout.write(`password for ${name} (shown once): ${p.value}\n`);
  };

  return withAccounts(values, async (accounts) => {
    switch (verb) {
      case 'add': {
        const p = await password();
        await accounts.addUser(name!, role, p.value);
        process.stderr.write(`user ${name} added (${role})\n`);
        announce(p);
        return 0;
      }
      case 'passwd': {
        const p = await password();
        await accounts.setPassword(name!, p.value);
        process.stderr.write(`password of ${name} changed; the old one, and every token and stored login made before, stop working within a second\n`);
        announce(p);
        return 0;
      }
      case 'logout':
        await accounts.endSessions(name!);
        process.stderr.write(`every token and stored login (docker login) of ${name} stops working within a second; the password stays\n`);
        return 0;
      case 'remove':
        await accounts.removeUser(name!);
        process.stderr.write(`user ${name} removed, with its grants and group memberships\n`);
        return 0;
      default: {
        const users = await accounts.users();
        if (values.json) printJson(users.map((u) => ({ ...u, createdAt: formatTime(u.createdAt) })));
        else printTable(users.map((u) => ({ ...u, groups: u.groups.map((g) => `@${g}`).join(',') || '-', created: formatTime(u.createdAt) })), [['NAME', 'name'], ['ROLE', 'role'], ['GROUPS', 'groups'], ['CREATED', 'created']]);
        return 0;
      }
    }
  });
}
