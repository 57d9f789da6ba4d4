// One configuration schema for the config file (YAML), the environment (WHARF_*) and command-line flags.
// Precedence: flags over environment over file over defaults.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/** "90s", "15m", "24h", "7d" or a number of seconds → milliseconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') return value * 1000;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/.exec(value.trim());
  if (!m) throw new Error(`invalid duration ${JSON.stringify(value)} (use e.g. 90s, 15m, 24h, 7d)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(m[1]) * unit);
}

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

const listen = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'listen must be HOST:PORT');

export const configSchema = z
  .object({
    listen: listen.default('127.0.0.1:5000'),
    data: z.string().min(1).default('./data'),
    log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).strict().default({ level: 'info' }),
    uploads: z
      .object({
        /** how long an unfinished upload session lives */
        ttl: duration.default(24 * 3_600_000),
        /** how often expired sessions are swept */
        sweepInterval: duration.default(10 * 60_000),
      })
      .strict()
      .default({ ttl: 24 * 3_600_000, sweepInterval: 10 * 60_000 }),
    registry: z
      .object({ maxManifestBytes: z.number().int().positive().default(4 << 20) })
      .strict()
      .default({ maxManifestBytes: 4 << 20 }),
  })
  .strict();

export type Config = z.output<typeof configSchema>;

export interface ConfigSources {
  flags?: Partial<Record<'listen' | 'data' | 'config' | 'logLevel', string>>;
  env?: NodeJS.ProcessEnv;
}

/** Merges file, environment and flags, and validates the result; errors name the offending key. */
export function loadConfig({ flags = {}, env = process.env }: ConfigSources = {}): Config {
  const file = flags.config ?? env.WHARF_CONFIG;
  let raw: Record<string, any> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new Error(`cannot read config file ${file}: ${(e as Error).message}`);
    }
    raw = (parseYaml(text) as Record<string, any> | null) ?? {};
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`config file ${file}: expected a mapping at the top level`);
  }
  const set = (path: string[], value: unknown) => {
    if (value === undefined) return;
    let o = raw;
    for (const k of path.slice(0, -1)) o = o[k] = typeof o[k] === 'object' && o[k] !== null ? o[k] : {};
    o[path[path.length - 1]!] = value;
  };
  set(['listen'], env.WHARF_LISTEN);
  set(['data'], env.WHARF_DATA);
  set(['log', 'level'], env.WHARF_LOG_LEVEL);
  set(['uploads', 'ttl'], env.WHARF_UPLOAD_TTL);
  set(['listen'], flags.listen);
  set(['data'], flags.data);
  set(['log', 'level'], flags.logLevel);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`invalid configuration${file ? ` (${file})` : ''}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  return { ...parsed.data, data: resolve(parsed.data.data) };
}

export function splitListen(listenAddr: string): { host: string; port: number } {
  const i = listenAddr.lastIndexOf(':');
  return { host: listenAddr.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listenAddr.slice(i + 1)) };
}
