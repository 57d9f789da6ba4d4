// `wharf login URL` / `wharf logout URL`: verifies and saves credentials for a server (mode 0600).
import { createInterface } from 'node:readline';
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';
import { connectionFailure, normalizeServer, removeCredentials, saveCredentials } from './client.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function prompt(question: string, hidden: boolean): Promise<string> {
  if (!process.stdin.isTTY) throw new CliError('no terminal to ask on: use --password-stdin (and -u)', 2);
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  if (hidden) {
    // Echo nothing while the password is typed.
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
      if (s.startsWith(question)) process.stdout.write(question);
    };
  }
  const answer = await new Promise<string>((resolve) => rl.question(question, resolve));
  rl.close();
  if (hidden) process.stdout.write('\n');
  return answer;
}

export async function loginCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    args,
    { username: { type: 'string', short: 'u' }, 'password-stdin': { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
    true,
  );
  if (values.help || positionals.length !== 1) {
    process.stdout.write('usage: wharf login URL [-u USER] [--password-stdin]\n');
    return values.help ? 0 : 2;
  }
  const server = normalizeServer(positionals[0]!);
  const username = values.username ?? (await prompt('Username: ', false));
  const password = values['password-stdin'] ? await readStdin() : await prompt('Password: ', true);
  if (!username || !password) throw new CliError('username and password are required', 2);
  const res = await fetch(`${server}/v2/`, {
    headers: { Authorization: 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64') },
  }).catch((e: unknown) => {
    throw new CliError(`cannot connect to ${server}: ${connectionFailure(e)}`);
  });
  if (res.status === 401 || res.status === 403) throw new CliError(`login to ${server} failed: wrong username or password`);
  if (!res.ok) throw new CliError(`login to ${server} failed: server answered ${res.status}`);
  saveCredentials(server, { username, password });
  process.stdout.write(`Logged in to ${server} as ${username}\n`);
  return 0;
}

export async function logoutCommand(args: string[]): Promise<number> {
  const { positionals } = parseFlags(args, {}, true);
  if (positionals.length !== 1) throw new CliError('usage: wharf logout URL', 2);
  const server = normalizeServer(positionals[0]!);
  process.stdout.write(removeCredentials(server) ? `Logged out of ${server}\n` : `Not logged in to ${server}\n`);
  return 0;
}
