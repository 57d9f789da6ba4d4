// Entry point of the `wharf` command: dispatches to one module per verb group.
import { serveCommand } from './serve.js';
import { fsckCommand } from './fsck.js';
import { gcCommand } from './gc.js';
import { CliError } from './cli-error.js';
import { loginCommand, logoutCommand } from './login.js';
import { envCommand, promoteCommand, releaseCommand, releasesCommand, rollbackCommand } from './releases.js';
import { tagCommand, tagsCommand } from './tags.js';
import { webhookCommand } from './webhook.js';
import { userCommand } from './user.js';
import { groupCommand } from './group.js';
import { tokenCommand } from './token.js';
import { grantCommand, revokeCommand } from './grant.js';
import { auditCommand } from './audit.js';
import { pipelineCommand } from './pipeline.js';
import { verifyCommand } from './verify.js';

const USAGE = `usage: wharf <command> [options]

commands:
  serve   run the hub (registry API, management API, UI)
  fsck    check (and with --repair, mend) a data directory
  gc      apply retention policies and collect unreferenced blobs (--dry-run lists them)
  login   save credentials for a server (logout forgets them)
  env     create or list an application's environments
  release release a tag or digest to an environment
  promote release the digest current in one environment to another
  rollback  roll an environment back to an earlier release
  releases  show release history
  tags history  what a tag pointed to, when, and who moved it
  tag restore   move a tag back to an earlier digest
  webhook   add, list and remove webhooks; show and redeliver their deliveries
  user    add, list, remove users and change passwords (local data dir)
  group   put users in groups, to grant to them together
  token   create, list and revoke CI tokens limited to repository scopes
  grant   allow a user or @group actions on a repository pattern (revoke takes them back)
  audit   who pushed, moved, deleted, failed to log in or changed access
  pipeline run  build, test in the image, push, attest and release (wharf.yaml's pipeline section)
  verify  which attestations a digest has and whether each verifies

Run 'wharf <command> --help' for a command's options.`;

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  serve: serveCommand,
  fsck: fsckCommand,
  gc: gcCommand,
  login: loginCommand,
  logout: logoutCommand,
  env: envCommand,
  release: releaseCommand,
  promote: promoteCommand,
  rollback: rollbackCommand,
  releases: releasesCommand,
  tags: tagsCommand,
  tag: tagCommand,
  webhook: webhookCommand,
  user: userCommand,
  group: groupCommand,
  token: tokenCommand,
  grant: grantCommand,
  revoke: revokeCommand,
  audit: auditCommand,
  pipeline: pipelineCommand,
  verify: verifyCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(USAGE + '\n');
    return verb === undefined ? 2 : 0;
  }
  if (verb === '--version') {
    process.stdout.write('wharf 0.1.0\n');
    return 0;
  }
  const command = COMMANDS[verb];
  if (!command) {
    process.stderr.write(`wharf: unknown command '${verb}'\n${USAGE}\n`);
    return 2;
  }
  try {
    return await command(rest);
  } catch (e) {
    if (e instanceof CliError) {
      process.stderr.write(`wharf ${verb}: ${e.message}\n`);
      return e.exitCode;
    }
    process.stderr.write(`wharf ${verb}: ${(e as Error).message ?? String(e)}\n`);
    return 1;
  }
}
