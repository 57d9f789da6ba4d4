// Flag parsing shared by the verbs: node's parseArgs with usage errors turned into CliError (exit 2).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError } from './cli-error.js';
import { closest } from './suggest.js';

export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (e) {
    const err = e as Error & { code?: string };
    // Node's own wording is about its parser ("To specify a positional argument starting with a '-' …"): say it ours.
    const unknown = /^Unknown option '([^']+)'/.exec(err.message)?.[1];
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown) {
      const guess = closest(unknown.replace(/^-+/, ''), Object.keys(options));
      throw new CliError(`unknown option ${unknown}${guess ? `; did you mean --${guess}?` : ''} (--help lists the options)`, 2);
    }
    if (err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const extra = /'([^']*)'/.exec(err.message)?.[1];
      throw new CliError(`unexpected argument${extra ? ` '${extra}'` : ''} (--help shows the usage)`, 2);
    }
    throw new CliError(err.message.split('. ')[0]!, 2);
  }
}

/**
 * A verb group asked for its usage (`wharf target`, `wharf target help`, `wharf target --help`): prints it and gives the
 * exit code (2 when no subcommand was named at all: that is a usage error); undefined when the command goes on.
 */
export function usageAsked(sub: string | undefined, help: boolean | undefined, usage: string): number | undefined {
  if (!help && sub !== undefined && sub !== 'help' && sub !== '--help' && sub !== '-h') return undefined;
  process.stdout.write(usage + '\n');
  return sub === undefined ? 2 : 0;
}
