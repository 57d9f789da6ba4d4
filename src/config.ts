// One configuration schema for the config file (YAML), the environment (WHARF_*) and command-line flags.
// Precedence: flags over environment over file over defaults.
import { isIP } from 'node:net';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { duration, parseDuration, parseSize, size } from './units.js';

export { duration, parseDuration, parseSize };
import { isGrantedAction, isRepositoryPattern } from './auth/actions.js';
import { DEFAULT_IMMUTABLE_RULES } from './delivery/tag-rules.js';
import { targetRegistrationSchema } from './deploy/target-registration.js';
import { signerRegistrationSchema } from './attest/signers.js';
import { isDestinationPattern } from './webhooks/destinations.js';

// Addresses and CIDR ranges of trusted proxies (`trustedProxies`), as validated here and used by server/client-origin.ts.
/** `10.0.0.1`, `::1`, `10.0.0.0/8`, `fd00::/8` → the address, its family and prefix length; undefined if malformed. */
export function parseAddressOrCidr(value: string): { address: string; family: 'ipv4' | 'ipv6'; prefix: number } | undefined {
  const [raw, prefixText, ...rest] = value.trim().split('/');
  if (raw === undefined || rest.length > 0) return undefined;
  const address = unmapped(raw);
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { address, family: version === 4 ? 'ipv4' : 'ipv6', prefix };
}

/** `::ffff:10.0.0.1` (how a dual-stack socket reports an IPv4 peer) → `10.0.0.1`. */
export function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

function validRegExp(s: string): boolean {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}

/** A retention policy, in the config file and the management API alike. */
export const retentionPolicySchema = z
  .object({
    repositories: z.string().refine(isRepositoryPattern, 'expected a repository glob such as team-a/* or *'),
    /** glob over tag names: the keep rules count and delete only among these */
    tags: z.string().min(1).max(256).default('*'),
    /** keep the N most recently pushed matching tags */
    keepLast: z.number().int().min(0).optional(),
    /** keep matching tags pushed within this long */
    keepWithin: duration.optional(),
    /** delete manifests untagged for longer than this */
    untaggedOlderThan: duration.optional(),
  })
  .strict()
  .refine((p) => p.keepLast !== undefined || p.keepWithin !== undefined || p.untaggedOlderThan !== undefined, 'a policy needs keepLast, keepWithin or untaggedOlderThan');

const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

const listen = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'listen must be HOST:PORT');

/** Who may do what: grants from the config file add to those set with `wharf grant`. */
const grantEntry = z
  .object({
    /** a user name, or @group */
    to: z.string().regex(/^@?[a-z0-9][a-z0-9._-]{0,63}$/, 'expected a user name or @group'),
    /** pull, push, delete, release, release:<environment>, admin — a list or comma-separated */
    actions: z
      .union([z.string(), z.array(z.string())])
      .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((a) => a.trim()))
      .refine((list) => list.length > 0 && list.every(isGrantedAction), 'actions must be pull, push, delete, release, release:<environment> or admin'),
    repositories: z.string().refine(isRepositoryPattern, 'expected a repository glob such as team-a/* or *'),
  })
  .strict();

const authSchema = z
  .object({
    /** off only for local development and tests that opt out (env WHARF_AUTH=off) */
    enabled: z.boolean().default(true),
    /** the `service` of the token flow (the JWT audience) */
    service: z.string().min(1).default('wharf'),
    issuer: z.string().min(1).default('wharf'),
    /** lifetime of registry access tokens */
    tokenTtl: duration.default(300_000),
    /** lifetime of refresh tokens (docker login keeps one) */
    refreshTokenTtl: duration.default(30 * 86_400_000),
    /** how long a verified credential is remembered (so pull storms skip the password hash) */
    credentialCacheTtl: duration.default(60_000),
    /**
     * scrypt's cost for passwords set from now on, as log2 N (r 8, p 1): 15 is N 32,768, 32 MiB and 0.1–0.2 s of a core
     * a hash. Each stored hash keeps its own parameters, so a change reaches only passwords set afterwards. Below 15
     * only where passwords are throwaway (tests): each user's first login to each instance pays a hash.
     */
    passwordCost: z.number().int().min(10).max(20).default(15),
    /** how stale users, tokens and grants may be (the CLI changes them beside a running server) */
    policyRefresh: duration.default(1_000),
    /** repository globs anyone may pull without credentials; none by default */
    anonymousPull: z.array(z.string().refine(isRepositoryPattern, 'expected a repository glob')).default([]),
    grants: z.array(grantEntry).default([]),
    /**
     * Failed-login throttling (auth/login-limiter.ts): after `perUser` failures of one name from one address, or
     * `perAddress` failures from one address, each further attempt waits `delay`, doubled per failure, up to
     * `maxDelay` (one name from one address) or `maxAddressDelay` (the whole address); failures are forgotten
     * after `window` without one. Never a lockout of the account: other addresses are not affected.
     */
    loginFailures: z
      .object({
        perUser: z.number().int().min(1).default(5),
        perAddress: z.number().int().min(1).default(20),
        delay: duration.default(1_000),
        maxDelay: duration.default(15 * 60_000),
        maxAddressDelay: duration.default(60_000),
        window: duration.default(3_600_000),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** Blobs on S3-compatible object storage (storage/s3-blob-store.ts); without it they live under `data`. */
const s3Schema = z
  .object({
    /** e.g. http://127.0.0.1:7480 (Ceph RGW), http://minio:9000; unset: AWS S3 in `region` */
    endpoint: z.url().optional(),
    region: z.string().min(1).default('us-east-1'),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'expected an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)'),
    /** prepended to every key, so several registries can share a bucket: "wharf/" */
    prefix: z
      .string()
      .max(200)
      .regex(/^([A-Za-z0-9._-]+\/)*$/, 'expected a key prefix like wharf/ (ending in /) or empty')
      .default(''),
    /** unset (both): the AWS SDK's default credentials (environment, profile, instance role) */
    accessKey: z.string().min(1).optional(),
    secretKey: z.string().min(1).optional(),
    /** http://host/bucket/key instead of http://bucket.host/key: Ceph RGW and MinIO want true */
    forcePathStyle: z.boolean().default(false),
    /** answer blob GETs with a short-lived presigned URL (307) so bytes flow from the store to the client */
    redirect: z.boolean().default(false),
    redirectTtl: duration.default(300_000),
    /** multipart part size in bytes (5 MiB–512 MiB); an upload holds about three in memory */
    partSize: z
      .number()
      .int()
      .min(5 << 20)
      .max(512 << 20)
      .default(8 << 20),
    /** a store request unanswered for this long fails the registry request with 503 */
    requestTimeout: duration.default(30_000),
  })
  .strict()
  .refine((s) => (s.accessKey === undefined) === (s.secretKey === undefined), 'set both accessKey and secretKey, or neither');

export const configSchema = z
  .object({
    listen: listen.default('127.0.0.1:5000'),
    data: z.string().min(1).default('./data'),
    /**
     * the metadata database: unset, the embedded SQLite file <data>/wharf.db (one instance); postgres://USER:PASSWORD@HOST:PORT/DB
     * for PostgreSQL, which several instances can share
     */
    db: z
      .string()
      .regex(/^postgres(ql)?:\/\/\S+$/i, 'expected a PostgreSQL URL such as postgres://wharf:secret@db:5432/wharf (unset: SQLite in the data directory)')
      .optional(),
    /** connections each instance keeps open to PostgreSQL at most */
    dbPoolSize: z.number().int().min(1).max(1000).default(10),
    log: z
      .object({
        level: logLevel.default('info'),
        /** pretty: lines for people; json: one object a line; auto: pretty on a terminal, JSON otherwise */
        format: z.enum(['auto', 'pretty', 'json']).default('auto'),
        /** the level of the access-log lines of blob and manifest GETs and HEADs (the bulk of a busy hub's traffic) */
        pulls: logLevel.default('info'),
      })
      .strict()
      .prefault({}),
    uploads: z
      .object({
        /** how long an unfinished upload session lives */
        ttl: duration.default(24 * 3_600_000),
        /** how often expired sessions are swept */
        sweepInterval: duration.default(10 * 60_000),
        /**
         * a request body (a blob chunk above all) that sends nothing for this long is cut off, its connection
         * closed; 0 turns it off
         */
        idleTimeout: duration.default(60_000),
        /** open upload sessions one user (or robot token) may hold at once; one more is refused with 429 */
        maxSessionsPerUser: z.number().int().min(1).default(100),
      })
      .strict()
      .prefault({}),
    /** where blob bytes live: the data directory (default) or `s3` */
    storage: z.object({ s3: s3Schema.optional() }).strict().default({}),
    registry: z
      .object({ maxManifestBytes: z.number().int().positive().default(4 << 20) })
      .strict()
      .default({ maxManifestBytes: 4 << 20 }),
    /** the URL clients reach this server at (behind a TLS-terminating proxy); sets the token realm */
    externalUrl: z.url().optional(),
    /**
     * proxies (addresses, CIDR ranges) whose X-Forwarded-For and X-Forwarded-Proto are believed, for the
     * client address of the audit log and login limits; none by default
     */
    trustedProxies: z.array(z.string().refine((v) => parseAddressOrCidr(v) !== undefined, 'expected an IP address or CIDR range, e.g. 10.0.0.1 or 10.0.0.0/8')).default([]),
    /** serve HTTPS with this PEM certificate (chain) and key */
    tls: z.object({ cert: z.string().min(1), key: z.string().min(1) }).strict().optional(),
    auth: authSchema.prefault({}),
    delivery: z
      .object({
        /** first matching rule decides; default: version-looking tags are immutable everywhere */
        immutableTags: z
          .array(z.object({ repositories: z.string(), tags: z.string().refine(validRegExp, 'not a valid regular expression'), immutable: z.boolean() }).strict())
          .default(DEFAULT_IMMUTABLE_RULES),
      })
      .strict()
      .default({ immutableTags: DEFAULT_IMMUTABLE_RULES }),
    webhooks: z
      .object({
        /** deadline of one delivery attempt */
        timeout: duration.default(10_000),
        /** first retry delay, doubled per failed attempt up to backoffMax */
        backoffBase: duration.default(10_000),
        backoffMax: duration.default(3_600_000),
        /** attempts before a delivery is given up as failed */
        maxAttempts: z.number().int().min(1).max(100).default(12),
        /** how often the outbox is checked for deliveries nobody announced */
        pollInterval: duration.default(5_000),
        concurrency: z.number().int().min(1).max(64).default(4),
        /**
         * hostnames, addresses and CIDR ranges webhooks may reach although they are loopback, private,
         * link-local (cloud metadata) or this server's own; none by default
         */
        allowTargets: z.array(z.string().refine(isDestinationPattern, 'expected a hostname, an IP address or a CIDR range, e.g. hooks.internal, 10.0.0.5 or 10.0.0.0/8')).default([]),
      })
      .strict()
      .default({ timeout: 10_000, backoffBase: 10_000, backoffMax: 3_600_000, maxAttempts: 12, pollInterval: 5_000, concurrency: 4, allowTargets: [] }),
    integrity: z
      .object({
        /** always: every whole-blob GET is hashed; unverified: only blobs not verified since their bytes last changed */
        hashOnServe: z.enum(['always', 'unverified']).default('unverified'),
        /** pause between two passes of the background scrub, which re-hashes every stored blob; 0 turns it off */
        scrubInterval: duration.default(24 * 3_600_000),
        /** the scrub's read rate, bytes per second (e.g. 32MiB) */
        scrubRate: size.refine((v) => v > 0, 'must be more than 0').default(32 << 20),
      })
      .strict()
      .prefault({}),
    health: z
      .object({
        /** /readyz answers 503 when the data directory has less free space than this */
        minFreeBytes: size.default(256 << 20),
      })
      .strict()
      .prefault({}),
    shutdown: z
      .object({
        /** on SIGTERM, how long requests in flight (a push's upload) may take to finish before their connections are cut */
        drainTimeout: duration.default(30_000),
      })
      .strict()
      .prefault({}),
    /**
     * deploy targets (deploy/target-registration.ts): engines app files may name, the apps that may use each and
     * the privileged container options allowed there; managed here, they cannot be changed over the API
     */
    targets: z
      .array(targetRegistrationSchema)
      .default([])
      .refine((ts) => new Set(ts.map((t) => t.name)).size === ts.length, 'target names must be unique'),
    /**
     * trusted attestation signers (attest/signers.ts): public keys whose signatures count, for the apps, kinds
     * and environments named; managed here, they cannot be revoked over the API
     */
    signers: z
      .array(signerRegistrationSchema)
      .default([])
      .refine((ss) => new Set(ss.map((s) => s.name)).size === ss.length, 'signer names must be unique'),
    /** which tags and untagged manifests go; every policy matching a repository applies (delivery/retention-policy.ts) */
    retention: z.array(retentionPolicySchema).default([]),
    deploy: z
      .object({
        /** how often the server compares what runs with what each environment says (drift, autoHeal); 0: never */
        reconcileInterval: duration.default(30_000),
      })
      .strict()
      .prefault({}),
    gc: z
      .object({
        /** how often the server runs retention and garbage collection; 0 turns the schedule off */
        interval: duration.default(24 * 3_600_000),
        /** links, blob rows and blob files younger than this are never collected: pushes in flight */
        grace: duration.default(3_600_000),
        /** the current and this many latest releases of every environment are never deleted */
        keepReleases: z.number().int().min(1).default(10),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type Config = z.output<typeof configSchema>;

export interface ConfigSources {
  flags?: Partial<Record<'listen' | 'data' | 'db' | 'config' | 'logLevel' | 'logFormat' | 'externalUrl' | 'tlsCert' | 'tlsKey' | 'trustedProxies', string>>;
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
  set(['db'], env.WHARF_DB || undefined);
  set(['dbPoolSize'], env.WHARF_DB_POOL_SIZE === undefined ? undefined : Number(env.WHARF_DB_POOL_SIZE));
  set(['log', 'level'], env.WHARF_LOG_LEVEL);
  set(['log', 'format'], env.WHARF_LOG_FORMAT);
  set(['log', 'pulls'], env.WHARF_LOG_PULLS);
  set(['uploads', 'ttl'], env.WHARF_UPLOAD_TTL);
  set(['uploads', 'idleTimeout'], env.WHARF_UPLOAD_IDLE_TIMEOUT);
  set(['gc', 'interval'], env.WHARF_GC_INTERVAL);
  set(['deploy', 'reconcileInterval'], env.WHARF_RECONCILE_INTERVAL);
  set(['gc', 'grace'], env.WHARF_GC_GRACE);
  set(['auth', 'enabled'], envSwitch(env.WHARF_AUTH));
  set(['auth', 'passwordCost'], env.WHARF_PASSWORD_COST === undefined ? undefined : Number(env.WHARF_PASSWORD_COST));
  set(['integrity', 'hashOnServe'], env.WHARF_HASH_ON_SERVE);
  set(['integrity', 'scrubInterval'], env.WHARF_SCRUB_INTERVAL);
  set(['integrity', 'scrubRate'], env.WHARF_SCRUB_RATE);
  set(['health', 'minFreeBytes'], env.WHARF_MIN_FREE_BYTES);
  set(['shutdown', 'drainTimeout'], env.WHARF_DRAIN_TIMEOUT);
  set(['externalUrl'], env.WHARF_EXTERNAL_URL);
  set(['trustedProxies'], list(env.WHARF_TRUSTED_PROXIES));
  set(['tls', 'cert'], env.WHARF_TLS_CERT);
  set(['tls', 'key'], env.WHARF_TLS_KEY);
  set(['webhooks', 'allowTargets'], list(env.WHARF_WEBHOOK_ALLOW_TARGETS));
  set(['storage', 's3', 'endpoint'], env.WHARF_S3_ENDPOINT);
  set(['storage', 's3', 'region'], env.WHARF_S3_REGION);
  set(['storage', 's3', 'bucket'], env.WHARF_S3_BUCKET);
  set(['storage', 's3', 'prefix'], env.WHARF_S3_PREFIX);
  set(['storage', 's3', 'accessKey'], env.WHARF_S3_ACCESS_KEY);
  set(['storage', 's3', 'secretKey'], env.WHARF_S3_SECRET_KEY);
  set(['storage', 's3', 'forcePathStyle'], envSwitch(env.WHARF_S3_FORCE_PATH_STYLE));
  set(['storage', 's3', 'redirect'], envSwitch(env.WHARF_S3_REDIRECT));
  set(['storage', 's3', 'partSize'], env.WHARF_S3_PART_SIZE === undefined ? undefined : Number(env.WHARF_S3_PART_SIZE));
  set(['listen'], flags.listen);
  set(['data'], flags.data);
  set(['db'], flags.db);
  set(['log', 'level'], flags.logLevel);
  set(['log', 'format'], flags.logFormat);
  set(['externalUrl'], flags.externalUrl);
  set(['trustedProxies'], list(flags.trustedProxies));
  set(['tls', 'cert'], flags.tlsCert);
  set(['tls', 'key'], flags.tlsKey);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`invalid configuration${file ? ` (${file})` : ''}: ${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  return { ...parsed.data, data: resolve(parsed.data.data) };
}

/** "10.0.0.1, 10.1.0.0/16" (commas or spaces) → a list; an empty string is an empty list. */
function list(value: string | undefined): string[] | undefined {
  return value === undefined ? undefined : value.split(/[\s,]+/).filter(Boolean);
}

/** on/off, true/false, 1/0 → boolean; anything else is passed on for the schema to reject by name. */
function envSwitch(value: string | undefined): unknown {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  if (['on', 'true', '1', 'yes'].includes(v)) return true;
  if (['off', 'false', '0', 'no'].includes(v)) return false;
  return value;
}

export function splitListen(listenAddr: string): { host: string; port: number } {
  const i = listenAddr.lastIndexOf(':');
  return { host: listenAddr.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(listenAddr.slice(i + 1)) };
}
