// `wharf keys`: the token signing keys every instance shares — list them, rotate (new tokens are signed with a new
// key; tokens of earlier keys stay valid until they expire), and with --retire refuse every token issued so far.
// On the local data dir / database (beside running servers, which follow within auth.policyRefresh) or over the API.
import type { SigningKeyInfo } from '../auth/token-service.js';
import { TokenService } from '../auth/token-service.js';
import { AuditLog } from '../audit/audit-log.js';
import { loadConfig } from '../config.js';
import { openMetadataStore } from '../metadata/open.js';
import { parseFlags, usageAsked } from './args.js';
import { CliError } from './cli-error.js';
import { clientFor } from './client.js';
import { ADMIN_HELP, DATA_HELP, formatTime, localActor, requireDataDir } from './local-accounts.js';
import { printJson, printTable } from './output.js';

const USAGE = `usage: wharf keys list [--json]
       wharf keys rotate [--retire] [--json]

list:   the token signing keys: the one signing, the earlier ones still verifying their tokens (until when), retired ones
rotate: make a new signing key for every instance. Tokens signed by earlier keys stay valid until they expire
        (at most auth.refreshTokenTtl: docker logins); running instances sign with the new key within
        auth.policyRefresh (1 s) and verify its tokens at once.
  --retire  also stop trusting every earlier key now: every token and docker login issued so far is refused
            (clients log in again). For a key that may have leaked.
${ADMIN_HELP}${DATA_HELP}
  --json    print JSON`;

export async function keysCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseFlags(rest, {
    data: { type: 'string' },
    config: { type: 'string' },
    server: { type: 'string' },
    retire: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  });
  const asked = usageAsked(sub, values.help, USAGE);
  if (asked !== undefined) return asked;
  if (sub !== 'list' && sub !== 'rotate') throw new CliError(`unknown subcommand '${sub}'\n${USAGE}`, 2);
  if (positionals.length > 0) throw new CliError(`unexpected argument '${positionals[0]}'\n${USAGE}`, 2);
  if (sub === 'list' && values.retire) throw new CliError('--retire goes with rotate', 2);
  const keys = values.server !== undefined ? remote(values.server, values.data) : await local(values);
  try {
    if (sub === 'list') {
      const list = await keys.list();
      if (values.json) printJson(list);
      else printKeys(list);
    } else {
      const key = await keys.rotate(values.retire);
      if (values.json) printJson(key);
      else
        process.stdout.write(
          `signing with key ${key.kid} from now on; ${values.retire ? 'every earlier key is retired: tokens issued before are refused' : 'earlier keys verify their tokens until those expire'}\n`,
        );
    }
    return 0;
  } finally {
    await keys.close();
  }
}

interface Keys {
  list(): Promise<SigningKeyInfo[]>;
  rotate(retire: boolean): Promise<SigningKeyInfo>;
  close(): Promise<void>;
}

function remote(server: string, data: string | undefined): Keys {
  if (data !== undefined) throw new CliError('pass --server or --data, not both', 2);
  const client = clientFor(server);
  return {
    list: () => client.all<SigningKeyInfo>('/api/v1/keys'),
    rotate: (retire) => client.request<SigningKeyInfo>('POST', '/api/v1/keys/rotate', { retire }),
    close: async () => {},
  };
}

async function local(flags: { data?: string; config?: string }): Promise<Keys> {
  let config;
  try {
    config = loadConfig({ flags: { data: flags.data, config: flags.config } });
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
  requireDataDir(config.data, !config.db);
  const meta = await openMetadataStore(config);
  try {
    const tokens = await TokenService.open(meta.signingKeys, config.data, {
      service: config.auth.service,
      issuer: config.auth.issuer,
      accessTtlMs: config.auth.tokenTtl,
      refreshTtlMs: config.auth.refreshTokenTtl,
    });
    const audit = new AuditLog(meta.audit);
    return {
      list: () => tokens.list(),
      rotate: async (retire) => {
        const key = await tokens.rotate(retire);
        await audit.record({ actor: localActor(), action: 'keys.rotate', target: key.kid, result: 'ok', detail: { retire } });
        return key;
      },
      close: () => meta.close(),
    };
  } catch (e) {
    await meta.close();
    throw e;
  }
}

function printKeys(keys: SigningKeyInfo[]): void {
  printTable(
    keys.map((k) => ({
      kid: k.kid,
      state: k.state,
      created: formatTime(k.createdAt),
      until: k.state === 'signing' ? null : formatTime(k.trustedUntil),
    })),
    [
      ['KID', 'kid'],
      ['STATE', 'state'],
      ['CREATED', 'created'],
      ['TRUSTED UNTIL', 'until'],
    ],
  );
}
