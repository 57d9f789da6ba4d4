// `wharf target …`: register, list and remove deploy targets on a server (global admins only): the engines app
// files may name, the apps that may use each, and the privileged container options allowed there.
import type { StoredTarget } from '../metadata/metadata.js';
import { parseFlags, usageAsked } from './args.js';
import { CliError } from './cli-error.js';
import { clientFor } from './client.js';
import { printJson, printTable } from './output.js';

const USAGE = `usage: wharf target add NAME ENDPOINT --apps PATTERN[,PATTERN…] [--allow PRIVILEGE[,…]]
                        [--tls-ca FILE --tls-cert FILE --tls-key FILE] [--identity-file FILE]
                        [--proxy-image IMAGE [--proxy-address IP] [--proxy-ports FROM-TO]]
       wharf target list
       wharf target remove NAME

ENDPOINT is unix:///path, tcp://host:port (with --tls-* files on the server) or ssh://user@host.
--apps: the apps that may deploy to the target, as repository patterns (e.g. 'team/*').
--allow: privileged container options those apps may use there: bind-mounts, privileged, cap-add,
         host-pid, host-ipc, devices, network-host. Anything not allowed is refused at apply and at deploy.
--proxy-image: the nginx image Wharf runs as the reverse proxy of apps whose app file has a proxy section
         (zero-downtime switches); --proxy-address: where it listens (default 0.0.0.0); --proxy-ports: the
         public ports app files may ask for there (default 1024-65535). Without --proxy-image a proxy is refused.
Adding a NAME again replaces its registration. Every command takes --server URL (or WHARF_SERVER) and --json.`;

const common = { server: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } as const;

const list = (v: string | undefined) => (v === undefined ? [] : v.split(',').map((x) => x.trim()).filter(Boolean));

export async function targetCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseFlags(
    rest,
    {
      ...common,
      apps: { type: 'string' },
      allow: { type: 'string' },
      'tls-ca': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'identity-file': { type: 'string' },
      'proxy-image': { type: 'string' },
      'proxy-address': { type: 'string' },
      'proxy-ports': { type: 'string' },
    },
    true,
  );
  const asked = usageAsked(sub, values.help, USAGE);
  if (asked !== undefined) return asked;
  const client = () => clientFor(values.server);
  switch (sub) {
    case 'add': {
      if (positionals.length !== 2) throw new CliError('usage: wharf target add NAME ENDPOINT --apps PATTERN [--allow …]', 2);
      if (!values.apps) throw new CliError("--apps is required: the apps that may deploy to this target (e.g. --apps 'team/*')", 2);
      const tlsFlags = [values['tls-ca'], values['tls-cert'], values['tls-key']];
      if (tlsFlags.some((f) => f !== undefined) && tlsFlags.some((f) => f === undefined)) throw new CliError('give all of --tls-ca, --tls-cert and --tls-key', 2);
      if ((values['proxy-address'] !== undefined || values['proxy-ports'] !== undefined) && values['proxy-image'] === undefined) {
        throw new CliError('--proxy-address and --proxy-ports need --proxy-image', 2);
      }
      const [name, endpoint] = positionals as [string, string];
      const added = await client().request<StoredTarget>('POST', '/api/v1/targets', {
        name,
        endpoint,
        apps: list(values.apps),
        allow: list(values.allow),
        ...(values['tls-ca'] ? { tls: { ca: values['tls-ca'], cert: values['tls-cert'], key: values['tls-key'] } } : {}),
        ...(values['identity-file'] ? { identityFile: values['identity-file'] } : {}),
        ...(values['proxy-image'] !== undefined
          ? {
              proxy: {
                image: values['proxy-image'],
                ...(values['proxy-address'] !== undefined ? { address: values['proxy-address'] } : {}),
                ...(values['proxy-ports'] !== undefined ? { ports: values['proxy-ports'] } : {}),
              },
            }
          : {}),
      });
      if (values.json) printJson(added);
      else process.stdout.write(`target ${added.name} (${added.endpoint}) for ${added.apps.join(', ')}${added.allow.length ? `, allowing ${added.allow.join(', ')}` : ''}${added.proxy ? `, proxy ${added.proxy.image} on ${added.proxy.address} ports ${added.proxy.ports.from}-${added.proxy.ports.to}` : ''}\n`);
      return 0;
    }
    case 'list': {
      if (positionals.length !== 0) throw new CliError('usage: wharf target list', 2);
      const targets = await client().all<StoredTarget>('/api/v1/targets');
      if (values.json) printJson(targets);
      else
        printTable(
          targets.map((t) => ({ ...t, apps: t.apps.join(','), allow: t.allow.join(',') || null, tls: t.tls ? 'yes' : null, proxy: t.proxy ? `${t.proxy.image} ${t.proxy.address}:${t.proxy.ports.from}-${t.proxy.ports.to}` : null })),
          [
            ['NAME', 'name'],
            ['ENDPOINT', 'endpoint'],
            ['TLS', 'tls'],
            ['APPS', 'apps'],
            ['ALLOW', 'allow'],
            ['PROXY', 'proxy'],
            ['SOURCE', 'source'],
          ],
        );
      return 0;
    }
    case 'remove': {
      if (positionals.length !== 1) throw new CliError('usage: wharf target remove NAME', 2);
      await client().request('DELETE', `/api/v1/targets/${encodeURIComponent(positionals[0]!)}`);
      if (values.json) printJson({ name: positionals[0], removed: true });
      else process.stdout.write(`target ${positionals[0]} removed\n`);
      return 0;
    }
    default:
      throw new CliError(`unknown subcommand '${sub}'\n${USAGE}`, 2);
  }
}
