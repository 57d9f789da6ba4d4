// `wharf signer …`: the keys whose attestation signatures count — registered, listed and revoked on a server
// (global admins only) — and `keygen`, which makes a key pair for a CI to sign with.
import { readFile, writeFile } from 'node:fs/promises';
import type { StoredSigner } from '../attest/signers.js';
import { newKeyPair } from '../attest/signing-key.js';
import { parseFlags, usageAsked } from './args.js';
import { CliError } from './cli-error.js';
import { clientFor } from './client.js';
import { printJson, printTable } from './output.js';

const USAGE = `usage: wharf signer add NAME --public-key FILE --apps PATTERN[,…] --kinds KIND[,…] --env PATTERN[,…]
       wharf signer list
       wharf signer revoke NAME
       wharf signer keygen NAME [--algorithm ed25519|ecdsa-p256]

add: trust the public key (PEM: Ed25519, or ECDSA P-256 such as a cosign.pub) to sign attestations of the apps,
     kinds (e.g. tests) and environments named (patterns with * and ?). Global admins only.
revoke: its signatures count no more, for anything (rotate: add the new key under a new name, then revoke).
keygen: writes NAME.key (the private key, mode 0600: keep it in the CI's secret store, give it to
     'wharf pipeline run' as WHARF_SIGNING_KEY) and NAME.pub (for 'wharf signer add'); nothing is sent.
add, list and revoke take --server URL (or WHARF_SERVER) and --json.`;

const list = (v: string | undefined) => (v === undefined ? [] : v.split(',').map((x) => x.trim()).filter(Boolean));

export async function signerCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseFlags(
    rest,
    {
      server: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
      'public-key': { type: 'string' },
      apps: { type: 'string' },
      kinds: { type: 'string' },
      env: { type: 'string' },
      algorithm: { type: 'string', default: 'ed25519' },
    },
    true,
  );
  const asked = usageAsked(sub, values.help, USAGE);
  if (asked !== undefined) return asked;
  const client = () => clientFor(values.server);
  switch (sub) {
    case 'add': {
      if (positionals.length !== 1) throw new CliError('usage: wharf signer add NAME --public-key FILE --apps PATTERN --kinds KIND --env PATTERN', 2);
      for (const flag of ['public-key', 'apps', 'kinds', 'env'] as const) if (!values[flag]) throw new CliError(`--${flag} is required\n${USAGE}`, 2);
      let publicKey: string;
      try {
        publicKey = await readFile(values['public-key']!, 'utf8');
      } catch (e) {
        throw new CliError(`cannot read ${values['public-key']}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, 2);
      }
      const added = await client().request<StoredSigner>('POST', '/api/v1/signers', {
        name: positionals[0],
        publicKey,
        apps: list(values.apps),
        kinds: list(values.kinds),
        environments: list(values.env),
      });
      if (values.json) printJson(added);
      else process.stdout.write(`signer ${added.name} (${added.algorithm} ${added.keyid}) trusted for ${added.kinds.join(', ')} of ${added.apps.join(', ')} in ${added.environments.join(', ')}\n`);
      return 0;
    }
    case 'list': {
      if (positionals.length !== 0) throw new CliError('usage: wharf signer list', 2);
      const signers = await client().all<StoredSigner>('/api/v1/signers');
      if (values.json) printJson(signers);
      else
        printTable(
          signers.map((s) => ({
            ...s,
            key: `${s.algorithm} ${s.keyid.slice(0, 19)}`,
            apps: s.apps.join(','),
            kinds: s.kinds.join(','),
            environments: s.environments.join(','),
            revoked: s.revokedAt === null ? null : `${new Date(s.revokedAt).toISOString()} by ${s.revokedBy ?? '?'}`,
          })),
          [
            ['NAME', 'name'],
            ['KEY', 'key'],
            ['APPS', 'apps'],
            ['KINDS', 'kinds'],
            ['ENVIRONMENTS', 'environments'],
            ['SOURCE', 'source'],
            ['REVOKED', 'revoked'],
          ],
        );
      return 0;
    }
    case 'revoke': {
      if (positionals.length !== 1) throw new CliError('usage: wharf signer revoke NAME', 2);
      const revoked = await client().request<StoredSigner>('DELETE', `/api/v1/signers/${encodeURIComponent(positionals[0]!)}`);
      if (values.json) printJson(revoked);
      else process.stdout.write(`signer ${revoked.name} revoked: its signatures count no more\n`);
      return 0;
    }
    case 'keygen': {
      if (positionals.length !== 1) throw new CliError('usage: wharf signer keygen NAME [--algorithm ed25519|ecdsa-p256]', 2);
      const algorithm = values.algorithm;
      if (algorithm !== 'ed25519' && algorithm !== 'ecdsa-p256') throw new CliError(`--algorithm is ed25519 or ecdsa-p256, not ${algorithm}`, 2);
      const pair = newKeyPair(algorithm);
      const name = positionals[0]!;
      try {
        // wx: an existing key is never overwritten (it may be the only copy of a key a server trusts).
        await writeFile(`${name}.key`, pair.privateKey, { mode: 0o600, flag: 'wx' });
        await writeFile(`${name}.pub`, pair.publicKey, { mode: 0o644, flag: 'wx' });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new CliError(`${(e as NodeJS.ErrnoException).path} exists: not overwritten`, 1);
        throw e;
      }
      if (values.json) printJson({ privateKey: `${name}.key`, publicKey: `${name}.pub`, keyid: pair.keyid, algorithm });
      else process.stdout.write(`wrote ${name}.key (private: for the CI's secrets) and ${name}.pub (for wharf signer add), key ${pair.keyid}\n`);
      return 0;
    }
    default:
      throw new CliError(`unknown subcommand '${sub}'\n${USAGE}`, 2);
  }
}
