// `wharf login URL` / `wharf logout URL`: trades a password for a token of the server's making and keeps the token
// (mode 0600), never the password; logout revokes it.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { createInterface } from 'node:readline';
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';
import { ApiClient, ApiError, connectionFailure, normalizeServer, removeCredentials, saveCredentials, savedCredentials, send } from './client.js';

export async function readStdin(): Promise<string> {
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
  const res = await send(`${server}/v2/`, 'GET', { Authorization: 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64') }).catch((e: unknown) => {
    throw new CliError(`cannot connect to ${server}: ${connectionFailure(e)}`);
  });
  await res.text(); // read to the end, so that the connection goes back to the pool for the next request
  if (res.status === 401 || res.status === 403) throw new CliError(`login to ${server} failed: wrong username or password`);
  if (!res.ok) throw new CliError(`login to ${server} failed: server answered ${res.status}`);
  const tokenName = `login-${hostname().toLowerCase().replace(/[^a-z0-9._-]/g, '-').slice(0, 40)}-${randomBytes(4).toString('hex')}`.replace(/^-+/, '');
  let token: string | undefined;
  try {
    token = (await new ApiClient(server, { username, password }).request<{ secret: string }>('POST', '/api/v1/tokens', { name: tokenName })).secret;
  } catch (e) {
    // A hub without authentication (WHARF_AUTH=off) has no tokens to give, and needs none.
    if (!(e instanceof ApiError && e.status === 404)) throw e;
  }
  saveCredentials(server, token === undefined ? { username } : { username, token, tokenName });
  process.stdout.write(`Logged in to ${server} as ${username}${token ? ` (token ${tokenName}; the password is not stored)` : ''}\n`);
  return 0;
}

export async function logoutCommand(args: string[]): Promise<number> {
  const { positionals } = parseFlags(args, {}, true);
  if (positionals.length !== 1) throw new CliError('usage: wharf logout URL', 2);
  const server = normalizeServer(positionals[0]!);
  const saved = savedCredentials(server);
  if (saved?.token && saved.tokenName) {
    // Revoked on the server, so a copy of the file is worth nothing; a server that cannot be reached is said.
    await new ApiClient(server, saved).request('DELETE', `/api/v1/tokens/${encodeURIComponent(saved.tokenName)}`).catch((e: Error) => {
      process.stderr.write(`wharf logout: the token ${saved.tokenName} could not be revoked (${e.message}); revoke it with wharf token revoke\n`);
    });
  }
  process.stdout.write(removeCredentials(server) ? `Logged out of ${server}\n` : `Not logged in to ${server}\n`);
  return 0;
}
