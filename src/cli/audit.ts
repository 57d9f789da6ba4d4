// `wharf audit`: who pushed, moved, deleted, logged in wrongly, or changed access — from the local data dir.
import { parseDuration } from '../units.js';
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';
import { ADMIN_FLAGS, ADMIN_HELP, DATA_HELP, formatTime, withLocalData } from './local-accounts.js';
import { printJson, printTable } from './output.js';
import { remoteAccounts } from './remote-accounts.js';

const HELP = `usage: wharf audit [--repo NAME] [--since DURATION|TIME] [--action ACTION] [--limit N] [--json]

  --repo    only rows about this repository
  --since   e.g. 24h, 7d, or an ISO time (2026-01-31T12:00:00Z)
  --action  e.g. manifest.push, tag.move, tag.delete, gc.run, login.failure, grant.add, token.create
  --limit   the newest N rows (default 100)
${ADMIN_HELP}${DATA_HELP}`;

/** "24h" → that long ago; otherwise an ISO date/time. */
export function parseSince(value: string, now = Date.now()): number {
  try {
    return now - parseDuration(value);
  } catch {
    const t = Date.parse(value);
    if (Number.isNaN(t)) throw new CliError(`--since: expected a duration (24h, 7d) or a time (2026-01-31T12:00:00Z), not ${JSON.stringify(value)}`, 2);
    return t;
  }
}

export async function auditCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    ...ADMIN_FLAGS,
    repo: { type: 'string' },
    since: { type: 'string' },
    action: { type: 'string' },
    limit: { type: 'string', default: '100' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const limit = Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new CliError('--limit must be a positive integer', 2);
  const since = values.since === undefined ? undefined : parseSince(values.since);
  const query = { repository: values.repo, since, action: values.action, limit };
  const rows =
    values.server !== undefined ? await remoteAccounts(values.server).audit(query) : await withLocalData(values, ({ audit }) => audit.list(query));
  if (values.json) {
    printJson(rows.map((r) => ({ ...r, time: new Date(r.at).toISOString() })));
    return 0;
  }
  printTable(
    rows.map((r) => ({
      time: formatTime(r.at),
      who: r.actorKind === 'token' ? `token:${r.actor}` : r.actorKind === 'local' ? `${r.actor} (local)` : r.actor,
      from: r.address,
      action: r.action,
      repository: r.repository,
      target: r.target,
      result: r.result,
      detail: summarize(r.detail),
    })),
    [['TIME', 'time'], ['WHO', 'who'], ['FROM', 'from'], ['ACTION', 'action'], ['REPOSITORY', 'repository'], ['TARGET', 'target'], ['RESULT', 'result'], ['DETAIL', 'detail']],
  );
  return 0;
}

function summarize(detail: Record<string, unknown> | null): string {
  if (!detail) return '-';
  return Object.entries(detail)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
}
