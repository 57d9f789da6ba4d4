// `wharf webhook …`: manage webhook subscriptions and read their delivery log on a server.
import type { WebhookDelivery, DeliveryAttempt, Subscription } from '../metadata/metadata.js';
import { parseFlags, usageAsked } from './args.js';
import { CliError } from './cli-error.js';
import { clientFor } from './client.js';
import { printJson, printTable } from './output.js';

const USAGE = `usage: wharf webhook add URL --events EVENT[,EVENT…] [--secret-stdin] [--repo PATTERN]
       wharf webhook list
       wharf webhook remove ID
       wharf webhook deliveries [--id SUBSCRIPTION] [--status pending|succeeded|failed] [--event EVENT] [--limit N]
       wharf webhook delivery DELIVERY_ID
       wharf webhook redeliver DELIVERY_ID

events: push, delete, tag.moved, release.created, deploy.started, deploy.succeeded, deploy.failed,
        deploy.rolled_back, deploy.needs_operator, deployment.drift; deploy.* for a group, * for all.
--secret-stdin reads the signing secret from stdin; without it the server makes one and prints it once.
Every command takes --server URL (or WHARF_SERVER) and --json.`;

const common = { server: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } as const;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function positiveInt(value: string | undefined, what: string): number {
  if (value === undefined || !/^[1-9]\d*$/.test(value)) throw new CliError(`${what} must be a positive number, not ${JSON.stringify(value ?? '')}`, 2);
  return Number(value);
}

const time = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z'));

export async function webhookCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseFlags(
    rest,
    {
      ...common,
      events: { type: 'string' },
      'secret-stdin': { type: 'boolean', default: false },
      repo: { type: 'string' },
      id: { type: 'string' },
      status: { type: 'string' },
      event: { type: 'string' },
      limit: { type: 'string' },
    },
    true,
  );
  const asked = usageAsked(sub, values.help, USAGE);
  if (asked !== undefined) return asked;
  const one = () => {
    if (positionals.length !== 1) throw new CliError(`usage: wharf webhook ${sub} ${sub === 'remove' ? 'ID' : sub === 'add' ? 'URL --events …' : 'DELIVERY_ID'}`, 2);
    return positionals[0]!;
  };
  const client = () => clientFor(values.server);

  switch (sub) {
    case 'add': {
      const url = one();
      if (!values.events) throw new CliError('--events is required (e.g. --events push,release.created)', 2);
      const events = values.events.split(',').map((e) => e.trim()).filter(Boolean);
      const secret = values['secret-stdin'] ? await readStdin() : undefined;
      if (secret === '') throw new CliError('the secret read from stdin is empty', 2);
      const created = await client().request<Subscription & { secret?: string }>('POST', '/api/v1/webhooks', {
        url,
        events,
        ...(secret === undefined ? {} : { secret }),
        ...(values.repo === undefined ? {} : { repository: values.repo }),
      });
      if (values.json) printJson(created);
      else {
        process.stdout.write(`webhook ${created.id} added: ${created.events.join(', ')}${created.repository ? ` of ${created.repository}` : ''} → ${created.url}\n`);
        if (created.secret) process.stdout.write(`secret (shown only now): ${created.secret}\n`);
      }
      return 0;
    }
    case 'list': {
      const subs = await client().all<Subscription>('/api/v1/webhooks');
      if (values.json) printJson(subs);
      else
        printTable(
          subs.map((s) => ({ ...s, events: s.events.join(','), created: time(s.createdAt) })),
          [
            ['ID', 'id'],
            ['URL', 'url'],
            ['EVENTS', 'events'],
            ['REPOSITORY', 'repository'],
            ['CREATED', 'created'],
          ],
        );
      return 0;
    }
    case 'remove': {
      const id = positiveInt(one(), 'ID');
      await client().request('DELETE', `/api/v1/webhooks/${id}`);
      if (values.json) printJson({ id, removed: true });
      else process.stdout.write(`webhook ${id} removed\n`);
      return 0;
    }
    case 'deliveries': {
      const query = new URLSearchParams();
      if (values.id !== undefined) query.set('subscription', String(positiveInt(values.id, '--id')));
      if (values.status !== undefined) query.set('status', values.status);
      if (values.event !== undefined) query.set('event', values.event);
      if (values.limit !== undefined) query.set('limit', String(positiveInt(values.limit, '--limit')));
      const qs = query.size > 0 ? `?${query}` : '';
      const deliveries = await client().request<WebhookDelivery[]>('GET', `/api/v1/webhooks/deliveries${qs}`);
      if (values.json) printJson(deliveries);
      else
        printTable(
          deliveries.map((d) => ({ ...d, created: time(d.createdAt), result: d.lastError ?? d.lastStatusCode, next: d.status === 'pending' ? time(d.nextAttemptAt) : null })),
          [
            ['DELIVERY', 'id'],
            ['WEBHOOK', 'subscriptionId'],
            ['EVENT', 'event'],
            ['REPOSITORY', 'repository'],
            ['CREATED', 'created'],
            ['STATUS', 'status'],
            ['ATTEMPTS', 'attempts'],
            ['NEXT', 'next'],
            ['LAST RESULT', 'result'],
          ],
        );
      return 0;
    }
    case 'delivery': {
      const d = await client().request<WebhookDelivery & { payload: unknown; log: DeliveryAttempt[] }>('GET', `/api/v1/webhooks/deliveries/${encodeURIComponent(one())}`);
      if (values.json) {
        printJson(d);
        return 0;
      }
      process.stdout.write(`delivery ${d.id}: ${d.event} of ${d.repository ?? '-'} to webhook ${d.subscriptionId}, ${d.status} after ${d.attempts} attempt(s)\n`);
      printTable(
        d.log.map((a) => ({ ...a, at: time(a.at), ms: a.durationMs })),
        [
          ['ATTEMPT', 'attempt'],
          ['AT', 'at'],
          ['STATUS', 'statusCode'],
          ['MS', 'ms'],
          ['ERROR', 'error'],
        ],
      );
      process.stdout.write(JSON.stringify(d.payload, null, 2) + '\n');
      return 0;
    }
    case 'redeliver': {
      const d = await client().request<WebhookDelivery>('POST', `/api/v1/webhooks/deliveries/${encodeURIComponent(one())}/redeliver`);
      if (values.json) printJson(d);
      else process.stdout.write(`delivery ${d.id} queued again\n`);
      return 0;
    }
    default:
      throw new CliError(`unknown subcommand '${sub}'\n${USAGE}`, 2);
  }
}
