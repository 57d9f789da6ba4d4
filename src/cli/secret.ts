// `wharf secret …`: set, list and remove the secrets of an app's environment on a server. A value is read on
// this machine (stdin or --from-file) and sent once; the server keeps it sealed and never sends it back.
import { readFile } from 'node:fs/promises';
import type { StoredSecret } from '../metadata/metadata.js';
import { parseFlags, usageAsked } from './args.js';
import { CliError } from './cli-error.js';
import { appPath, clientFor } from './client.js';
import { printJson, printTable } from './output.js';

const USAGE = `usage: wharf secret set APP ENV NAME [--from-file FILE]   (the value from stdin unless --from-file)
       wharf secret list APP [ENV]
       wharf secret remove APP ENV NAME

An app file gives a secret to its container as { secret: NAME }. Values are never shown again.
Every command takes --server URL (or WHARF_SERVER) and --json.`;

const common = { server: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } as const;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function secretCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseFlags(rest, { ...common, 'from-file': { type: 'string' } }, true);
  const asked = usageAsked(sub, values.help, USAGE);
  if (asked !== undefined) return asked;
  const client = () => clientFor(values.server);
  const slot = () => {
    if (positionals.length !== 3) throw new CliError(`usage: wharf secret ${sub} APP ENV NAME`, 2);
    const [app, env, name] = positionals as [string, string, string];
    return { app, env, name, path: `${appPath(app)}/secrets/${encodeURIComponent(env)}/${encodeURIComponent(name)}` };
  };
  switch (sub) {
    case 'set': {
      const s = slot();
      let value: string;
      if (values['from-file'] !== undefined) {
        try {
          value = await readFile(values['from-file'], 'utf8');
        } catch (e) {
          throw new CliError(`cannot read ${values['from-file']}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 2);
        }
      } else {
        if (process.stdin.isTTY) process.stderr.write(`value of ${s.name} (end with Ctrl-D): `);
        // one trailing newline is what `echo` and a terminal add, not part of the secret
        value = (await readStdin()).replace(/\r?\n$/, '');
      }
      await client().request('PUT', s.path, { value });
      if (values.json) printJson({ app: s.app, environment: s.env, name: s.name, set: true });
      else process.stdout.write(`secret ${s.name} of ${s.app}/${s.env} set\n`);
      return 0;
    }
    case 'list': {
      if (positionals.length < 1 || positionals.length > 2) throw new CliError('usage: wharf secret list APP [ENV]', 2);
      const [app, env] = positionals as [string, string | undefined];
      const q = env === undefined ? '' : `?environment=${encodeURIComponent(env)}`;
      const list = await client().all<StoredSecret>(`${appPath(app)}/secrets${q}`);
      if (values.json) printJson(list);
      else
        printTable(
          list.map((s) => ({ ...s, updated: new Date(s.updatedAt).toISOString().replace(/\.\d+Z$/, 'Z') })),
          [
            ['ENV', 'environment'],
            ['NAME', 'name'],
            ['UPDATED', 'updated'],
            ['BY', 'updatedBy'],
          ],
        );
      return 0;
    }
    case 'remove': {
      const s = slot();
      await client().request('DELETE', s.path);
      if (values.json) printJson({ app: s.app, environment: s.env, name: s.name, removed: true });
      else process.stdout.write(`secret ${s.name} of ${s.app}/${s.env} removed\n`);
      return 0;
    }
    default:
      throw new CliError(`unknown subcommand '${sub}'\n${USAGE}`, 2);
  }
}
