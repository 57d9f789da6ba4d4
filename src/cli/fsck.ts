// `wharf fsck`: checks a data directory offline or beside a running server; exit 1 when problems remain.
import { loadConfig, parseDuration } from '../config.js';
import { fsck } from '../registry/fsck.js';
import { openWharf } from '../wharf.js';
import { localActor, requireDataDir } from './local-accounts.js';
import { parseFlags } from './args.js';

const HELP = `usage: wharf fsck [--data DIR] [--config FILE] [--repair] [--grace DURATION] [--json]

Re-hashes every blob and checks every reference between blobs, manifests and tags.
  --repair  remove orphan blobs and dangling rows
  --grace   leave blob files younger than this alone (default 10m; a push may be mid-commit)`;

export async function fsckCommand(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    data: { type: 'string' },
    config: { type: 'string' },
    repair: { type: 'boolean', default: false },
    grace: { type: 'string', default: '10m' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const config = loadConfig({ flags: { data: values.data, config: values.config } });
  requireDataDir(config.data, !config.db); // on PostgreSQL the data directory holds no wharf.db
  const wharf = await openWharf(config);
  try {
    const report = await fsck(wharf.blobs, wharf.meta, { repair: values.repair, orphanGraceMs: parseDuration(values.grace) });
    const repaired = report.problems.filter((p) => p.repaired);
    if (repaired.length > 0) {
      // A repair deletes rows (dangling tags among them) and files: one audit row says who did it, and what.
      await wharf.audit.record({ actor: localActor(), action: 'fsck.repair', result: 'ok', detail: { repaired: repaired.map((p) => `${p.kind}: ${p.detail}`) } });
    }
    if (values.json) {
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    } else {
      for (const p of report.problems) process.stdout.write(`${p.kind}\t${p.detail}${p.repaired ? '\t(repaired)' : ''}\n`);
      process.stdout.write(`${report.blobsChecked} blobs and ${report.manifestsChecked} manifests checked, ${report.problems.length} problems\n`);
    }
    return report.problems.some((p) => !p.repaired) ? 1 : 0;
  } finally {
    await wharf.close();
  }
}
