// Approval verbs: approve a pending release, promotion or rollback (and follow its deployment), list requests.
import type { ApprovalRequest } from '../delivery/approvals.js';
import type { Release } from '../delivery/releases.js';
import { parseFlags } from './args.js';
import { CliError } from './cli-error.js';
import { appPath, clientFor } from './client.js';
import { followDeployment } from './follow-deployment.js';
import { printJson, printTable } from './output.js';

const common = { server: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } as const;

export async function approveCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...common, deploy: { type: 'boolean' } }, true);
  if (values.help) {
    process.stdout.write('usage: wharf approve APP REQUEST_ID [--deploy] [--json]\n');
    return 0;
  }
  if (positionals.length !== 2 || !/^\d+$/.test(positionals[1]!)) throw new CliError('usage: wharf approve APP REQUEST_ID [--deploy]', 2);
  const body = values.deploy === undefined ? {} : { deploy: values.deploy };
  const describe = (r: Release) => `approved: release ${r.id} of ${r.app}/${r.environment} (${r.kind}) ${r.version ?? r.tag ?? ''} ${r.digest}`.replace(/ +/g, ' ');
  return followDeployment(clientFor(values.server), `${appPath(positionals[0]!)}/approvals/${positionals[1]}`, body, values.json, describe);
}

export async function approvalsCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, { ...common, all: { type: 'boolean', default: false } }, true);
  if (values.help || positionals.length !== 1) {
    process.stdout.write('usage: wharf approvals APP [--all] [--json]\n');
    return values.help ? 0 : 2;
  }
  const list = await clientFor(values.server).all<ApprovalRequest>(`${appPath(positionals[0]!)}/approvals${values.all ? '?all=true' : ''}`);
  if (values.json) printJson(list);
  else
    printTable(
      list.map((a) => ({ ...a, what: a.kind === 'promote' ? `promote from ${a.from}` : `${a.kind} ${a.ref ?? ''}`.trim() })),
      [
        ['ID', 'id'],
        ['ENV', 'environment'],
        ['WHAT', 'what'],
        ['BY', 'requestedBy'],
        ['AT', 'requestedAt'],
        ['STATUS', 'status'],
        ['APPROVED BY', 'approvedBy'],
        ['RELEASE', 'release'],
      ],
    );
  return 0;
}
