// Entry point of the `wharf` command: dispatches to one module per verb group.
import { serveCommand } from './serve.js';
import { fsckCommand } from './fsck.js';
import { CliError } from './cli-error.js';

const USAGE = `usage: wharf <command> [options]

commands:
  serve   run the hub (registry API, management API, UI)
  fsck    check (and with --repair, mend) a data directory

Run 'wharf <command> --help' for a command's options.`;

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  serve: serveCommand,
  fsck: fsckCommand,
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
