// Secret values for containers: read at deploy time from files or the Wharf server's environment, handed to the
// engine and nowhere else. The app file only ever holds where a value comes from.
import { readFile } from 'node:fs/promises';
import type { SecretSource } from './app-file.js';

/** Resolved values by variable name. Never log, persist or return these. */
export type SecretValues = Record<string, string>;

export type SecretResolver = (secrets: Record<string, SecretSource>) => Promise<SecretValues>;

/** Reads files (one trailing newline dropped, as `echo` writes it) and variables of this process's environment. */
export function serverSecrets(env: NodeJS.ProcessEnv = process.env): SecretResolver {
  return async (secrets) => {
    const values: SecretValues = {};
    for (const [name, source] of Object.entries(secrets)) {
      if ('file' in source) {
        try {
          values[name] = (await readFile(source.file, 'utf8')).replace(/\r?\n$/, '');
        } catch (e) {
          throw new Error(`secret ${name}: cannot read ${source.file} (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
        }
      } else {
        const value = env[source.env];
        if (value === undefined) throw new Error(`secret ${name}: the server has no environment variable ${source.env}`);
        values[name] = value;
      }
    }
    return values;
  };
}

/** Blanks out secret values an app may echo into its logs or health output before they reach a record. */
export function redact(text: string, values: SecretValues): string {
  let out = text;
  for (const v of Object.values(values)) if (v.length > 0) out = out.split(v).join('[secret]');
  return out;
}
