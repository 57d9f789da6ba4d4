// Entry point of the `wharf` command: dispatches to one module per verb group.
import { readFileSync } from 'node:fs';
import { CliError } from './cli-error.js';
import { closest } from './suggest.js';

const USAGE = `usage: wharf <command> [options]

commands:
  serve   run the hub (registry API, management API, UI)
  fsck    check (and with --repair, mend) a data directory
  migrate apply the metadata database's missing migrations (PostgreSQL: before starting a new version)
  migrate-db  move the metadata from SQLite (a data directory) into an empty PostgreSQL database
  gc      apply retention policies and collect unreferenced blobs (--dry-run lists them)
  login   save credentials for a server (logout forgets them)
  env     create or list an application's environments
  release release a tag or digest to an environment
  promote release the digest current in one environment to another
  rollback  roll an environment back to an earlier release
  releases  show release history
  approve   carry out a release, promotion or rollback another person asked for (requiresApproval)
  approvals  the requests waiting for approval
  tags history  what a tag pointed to, when, and who moved it
  tag restore   move a tag back to an earlier digest
  webhook   add, list and remove webhooks; show and redeliver their deliveries
  user    add, list, remove users and change passwords (local data dir)
  group   put users in groups, to grant to them together
  token   create, list and revoke CI tokens limited to repository scopes
  keys    list and rotate the token signing keys every instance shares (--retire: refuse all earlier tokens)
  grant   allow a user or @group actions on a repository pattern (revoke takes them back)
  audit   who pushed, moved, deleted, failed to log in or changed access
  pipeline run  build, test in the image, push, attest, release and deploy (wharf.yaml's pipeline section)
  verify  which attestations a digest has and whether each verifies
  signer  trust, list and revoke the keys attestations are signed with (global admin); keygen for a CI
  target  register, list and remove deploy targets: engines, the apps that may use them, allowed privileges (global admin)
  secret  set, list and remove an app environment's secrets (values are never shown again)
  apply   apply an app file (wharf.yaml): environments, targets, container, rollout (--dry-run shows the diff)
  get     print an app's applied file (get APP -o yaml)
  deploy  deploy an environment's current release to its targets, following the rollout
  status  what runs where: intended release against the live engines, with drift
  deployments  the record of an environment's deployments

Run 'wharf <command> --help' for a command's options, 'wharf --version' for the version.`;

/** Each verb's module is loaded only when that verb runs, so a CLI call pays only for what it uses. */
const COMMANDS: Record<string, () => Promise<(args: string[]) => Promise<number>>> = {
  serve: async () => (await import('./serve.js')).serveCommand,
  fsck: async () => (await import('./fsck.js')).fsckCommand,
  migrate: async () => (await import('./migrate.js')).migrateCommand,
  'migrate-db': async () => (await import('./migrate-db.js')).migrateDbCommand,
  gc: async () => (await import('./gc.js')).gcCommand,
  login: async () => (await import('./login.js')).loginCommand,
  logout: async () => (await import('./login.js')).logoutCommand,
  env: async () => (await import('./releases.js')).envCommand,
  release: async () => (await import('./releases.js')).releaseCommand,
  promote: async () => (await import('./releases.js')).promoteCommand,
  rollback: async () => (await import('./releases.js')).rollbackCommand,
  releases: async () => (await import('./releases.js')).releasesCommand,
  approve: async () => (await import('./approvals.js')).approveCommand,
  approvals: async () => (await import('./approvals.js')).approvalsCommand,
  tags: async () => (await import('./tags.js')).tagsCommand,
  tag: async () => (await import('./tags.js')).tagCommand,
  webhook: async () => (await import('./webhook.js')).webhookCommand,
  user: async () => (await import('./user.js')).userCommand,
  group: async () => (await import('./group.js')).groupCommand,
  token: async () => (await import('./token.js')).tokenCommand,
  grant: async () => (await import('./grant.js')).grantCommand,
  keys: async () => (await import('./keys.js')).keysCommand,
  revoke: async () => (await import('./grant.js')).revokeCommand,
  audit: async () => (await import('./audit.js')).auditCommand,
  pipeline: async () => (await import('./pipeline.js')).pipelineCommand,
  verify: async () => (await import('./verify.js')).verifyCommand,
  target: async () => (await import('./target.js')).targetCommand,
  signer: async () => (await import('./signer.js')).signerCommand,
  secret: async () => (await import('./secret.js')).secretCommand,
  apply: async () => (await import('./deploy.js')).applyCommand,
  get: async () => (await import('./deploy.js')).getCommand,
  deploy: async () => (await import('./deploy.js')).deployCommand,
  status: async () => (await import('./deploy.js')).statusCommand,
  deployments: async () => (await import('./deploy.js')).deploymentsCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(USAGE + '\n');
    return verb === undefined ? 2 : 0;
  }
  if (verb === '--version' || verb === '-v' || verb === 'version') {
    const { version } = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`wharf ${version}\n`);
    return 0;
  }
  const command = COMMANDS[verb];
  if (!command) {
    const guess = closest(verb, Object.keys(COMMANDS));
    process.stderr.write(`wharf: unknown command '${verb}'${guess ? `; did you mean 'wharf ${guess}'?` : ''} (wharf --help lists them)\n`);
    return 2;
  }
  try {
    return await (await command())(rest);
  } catch (e) {
    if (e instanceof CliError) {
      process.stderr.write(`wharf ${verb}: ${e.message}\n`);
      return e.exitCode;
    }
    process.stderr.write(`wharf ${verb}: ${(e as Error).message ?? String(e)}\n`);
    return 1;
  }
}
