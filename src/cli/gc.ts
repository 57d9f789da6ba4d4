// `wharf gc`: applies the retention policies and collects garbage in a data directory, beside a running
// server or not (the same collection the server runs on its schedule); --dry-run lists what would go.
import { loadConfig, parseDuration } from '../config.js';
import { openWharf } from '../wharf.js';
import { localActor, requireDataDir } from './local-accounts.js';
import type { GcReport } from '../delivery/gc.js';
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';
import { printJson, shortDigest } from './output.js';
import { clientFor } from './client.js';

const HELP = `usage: wharf gc [--dry-run] [--data DIR] [--config FILE] [--grace DURATION] [--json]
       wharf gc --server URL [--dry-run] [--json]   (a running hub collects, as admin over its API)

Applies the retention policies (config file and API), then deletes blob links, blobs and files nothing
references any more. Safe while the server runs and pushes continue. One collection at a time over the database:
while another runs (a server's schedule, any instance), this one is refused, naming it.
  --dry-run  list what would be deleted; delete nothing
  --grace    leave links, blobs and files younger than this alone (default: gc.grace, 1h)
  --json     print the report as JSON`;

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

export async function gcCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    data: { type: 'string' },
    config: { type: 'string' },
    server: { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
    grace: { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  if (values.server !== undefined) {
    if (values.data !== undefined || values.grace !== undefined) throw new CliError('--server collects with the hub’s own data dir and grace: drop --data and --grace', 2);
    const report = await clientFor(values.server).request<GcReport>('POST', '/api/v1/gc', { dryRun: values['dry-run'] });
    if (values.json) printJson(report);
    else printReport(report);
    return 0;
  }
  let config;
  try {
    config = loadConfig({ flags: { data: values.data, config: values.config } });
    if (values.grace !== undefined) config = { ...config, gc: { ...config.gc, grace: parseDuration(values.grace) } };
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
  requireDataDir(config.data, !config.db); // on PostgreSQL the data directory holds no wharf.db
  const wharf = await openWharf(config);
  try {
    const report = await wharf.gc.collect({ dryRun: values['dry-run'], trigger: 'cli', actor: localActor() });
    if (values.json) printJson(report);
    else printReport(report);
    return 0;
  } finally {
    await wharf.close();
  }
}

function printReport(r: GcReport): void {
  const verb = r.dryRun ? 'would delete' : 'deleted';
  const out = (line: string) => process.stdout.write(line + '\n');
  for (const t of r.tags) out(`${verb} tag ${t.repository}:${t.tag} (${shortDigest(t.digest)}): ${t.reason}`);
  for (const m of r.manifests) out(`${verb} manifest ${m.repository}@${m.digest}: ${m.reason}`);
  for (const b of r.blobs) out(`${verb} blob ${b.digest} (${formatBytes(b.size)})`);
  out(
    `${r.dryRun ? 'would reclaim' : 'reclaimed'}: ${r.tags.length} tags, ${r.manifests.length} manifests, ${r.linksDropped} blob links, ` +
      `${r.blobs.length} blobs, ${formatBytes(r.bytes)} in ${r.durationMs} ms`,
  );
}
