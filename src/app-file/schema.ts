// The app file (wharf.yaml): one application, its environments with their delivery rules, and per environment
// where it runs (Docker hosts or a Swarm service), the container spec and the rollout settings. Parsed and
// validated once, with errors located by path and line; the rest of Wharf trusts the resulting AppFile.
import { LineCounter, parseDocument, stringify } from 'yaml';
import { z } from 'zod';
import { duration } from '../config.js';
import { isValidRepositoryName } from '../oci/reference.js';
import { TARGET_NAME } from '../deploy/target-registration.js';
import { pipelineSchema } from './pipeline-schema.js';

const ENV_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const RESERVED_LABEL_PREFIX = 'wharf.';
const HEALTH_URL_PLACEHOLDERS = new Set(['host', 'port']);

const envName = z.string().regex(ENV_NAME, 'environment names are lowercase letters, digits, - and _');
const varName = z.string().regex(VAR_NAME, 'variable names are letters, digits and _, not starting with a digit');
const nonEmpty = z.string().min(1);
const argv = z.array(z.string()).min(1, 'needs at least the program');

const RAW_ENDPOINT = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//;

/**
 * The rule every refusal of a raw endpoint names: engines are root on their hosts, so only a global admin says
 * which ones exist and which apps may use them (Argo CD's projects, Kamal's server config).
 */
export const TARGET_RULE =
  "app files name registered deploy targets, never endpoints: a global admin registers one with 'wharf target add NAME ENDPOINT --apps PATTERN' (docs/access.md)";

const targetName = z.unknown().superRefine((v, ctx) => {
  if (typeof v === 'string' && TARGET_NAME.test(v)) return;
  const raw = typeof v === 'string' ? v : v !== null && typeof v === 'object' && 'endpoint' in v ? String((v as { endpoint: unknown }).endpoint) : undefined;
  if (raw !== undefined && (RAW_ENDPOINT.test(raw) || typeof v === 'object')) {
    ctx.addIssue({ code: 'custom', message: `'${raw}' is an endpoint; ${TARGET_RULE}` });
  } else {
    ctx.addIssue({ code: 'custom', message: 'a target is the name of a registered deploy target (lowercase letters, digits, ., - and _)' });
  }
}) as unknown as z.ZodType<string>;

const swarm = z.preprocess(
  (v) => (v !== null && typeof v === 'object' && 'manager' in v && !('target' in v) ? { ...v, target: (v as { manager: unknown }).manager, manager: undefined } : v),
  z.strictObject({
    /** the registered target of a Swarm manager */
    target: targetName,
    service: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/, 'invalid service name'),
    manager: z.undefined().optional(),
  }),
);

/**
 * A secret is stored by Wharf (`wharf secret set APP ENV NAME`, encrypted at rest) and named here; nothing may
 * read the Wharf server's own files or environment, which hold its signing key and admin password.
 */
export const SECRET_RULE = "secrets come from Wharf's secret store ({ secret: NAME }, set with 'wharf secret set APP ENV NAME'); no secret may read the Wharf server's own files or environment";
const secret = z.unknown().superRefine((v, ctx) => {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === 'secret' && typeof (v as { secret: unknown }).secret === 'string' && SECRET_NAME.test((v as { secret: string }).secret)) return;
    if (keys.includes('file') || keys.includes('env')) return void ctx.addIssue({ code: 'custom', message: `refused: ${SECRET_RULE}` });
  }
  ctx.addIssue({ code: 'custom', message: `a secret is { secret: NAME } (letters, digits, ., - and _); ${SECRET_RULE}` });
}) as unknown as z.ZodType<{ secret: string }>;

/** Names of Wharf-managed secrets. */
export const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const volume = z.preprocess(
  (v) => {
    if (typeof v !== 'string') return v;
    const [source, target, mode, ...rest] = v.split(':');
    // anything but ro/rw is handed on as is, so that the schema below rejects it with its own message
    const readOnly = rest.length > 0 ? v : mode === undefined || mode === 'rw' ? false : mode === 'ro' ? true : mode;
    return { source, target, readOnly };
  },
  z.strictObject({
    source: nonEmpty,
    target: z.string().startsWith('/', 'the container path must be absolute'),
    readOnly: z.boolean({ error: "volume mode must be 'ro' or 'rw'" }).optional(),
  }),
);

const dockerHealth = z.union([
  z.literal('image'),
  z.strictObject({
    /** a string runs in the image's shell (CMD-SHELL); a list runs directly (CMD) */
    test: z.union([nonEmpty, argv]),
    interval: duration.optional(),
    timeout: duration.optional(),
    retries: z.number().int().min(1).optional(),
    startPeriod: duration.optional(),
  }),
]);

const healthcheck = z
  .strictObject({
    /** the engine's HEALTHCHECK: `image` keeps the image's own */
    docker: dockerHealth.optional(),
    /** GET by Wharf, 2xx is healthy; {host} and {port} are filled in per container */
    http: nonEmpty.optional(),
    /** run by Wharf inside the container (exec); exit 0 is healthy */
    command: argv.optional(),
    /** how often Wharf polls an http or command check */
    interval: duration.optional(),
    /** how long one http or command check may take */
    timeout: duration.optional(),
    /** this many 4xx/5xx answers in a row (http) fail the check at once, without waiting for healthTimeout */
    failures: z.number().int().min(1).optional(),
  })
  .superRefine((h, ctx) => {
    const kinds = (['docker', 'http', 'command'] as const).filter((k) => h[k] !== undefined);
    if (kinds.length !== 1) ctx.addIssue({ code: 'custom', message: 'give exactly one of docker, http, command' });
    if (h.http !== undefined) {
      const unknown = [...h.http.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]!).filter((name) => !HEALTH_URL_PLACEHOLDERS.has(name));
      for (const name of unknown) ctx.addIssue({ code: 'custom', message: `unknown placeholder {${name}} (use {host}, {port})`, path: ['http'] });
      if (unknown.length === 0) {
        try {
          const url = new URL(h.http.replaceAll('{host}', 'h').replaceAll('{port}', '1'));
          if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error();
        } catch {
          ctx.addIssue({ code: 'custom', message: `not an http(s) URL: '${h.http}'`, path: ['http'] });
        }
      }
    }
  });

/** Every field optional: the app-level spec is the base, each environment's spec is laid over it. */
const container = z.strictObject({
  /** replaces the image's CMD */
  command: argv.optional(),
  env: z.record(varName, z.union([z.string(), z.number(), z.boolean()]).transform(String)).optional(),
  /** values resolved by the server at deploy time, passed as environment variables, never stored or logged */
  secrets: z.record(varName, secret).optional(),
  volumes: z.array(volume).optional(),
  /** host, bridge, none or a network name */
  network: nonEmpty.optional(),
  /** the port the app listens on, passed as PORT; with network host, replica i of a host gets port + i */
  port: z.number().int().min(1).max(65535).optional(),
  labels: z
    .record(
      z.string().refine((k) => !k.startsWith(RESERVED_LABEL_PREFIX), { message: `labels starting with '${RESERVED_LABEL_PREFIX}' are Wharf's own` }),
      z.string(),
    )
    .optional(),
  healthcheck: healthcheck.optional(),
  stopTimeout: duration.optional(),
  // Options that give the container power over its host: refused unless the target's registration allows them
  // for the app (deploy/target-policy.ts).
  privileged: z.boolean().optional(),
  capAdd: z.array(z.string().regex(/^(CAP_)?[A-Z_]+$|^ALL$/, 'a capability such as NET_ADMIN')).optional(),
  pid: z.literal('host').optional(),
  ipc: z.literal('host').optional(),
  /** host device paths, e.g. /dev/fuse or /dev/fuse:/dev/fuse:rwm */
  devices: z.array(nonEmpty).optional(),
});

const rollout = z.strictObject({
  /** Docker hosts updated at once (Swarm: tasks at once) */
  parallelism: z.number().int().min(1).optional(),
  /** pause between batches */
  delay: duration.optional(),
  order: z.enum(['start-first', 'stop-first']).optional(),
  /** how long new containers may take to become healthy */
  healthTimeout: duration.optional(),
  /** how long new containers must stay healthy before the batch counts as done */
  monitor: duration.optional(),
  failureAction: z.enum(['rollback', 'pause']).optional(),
  /** how a rollback goes, when it differs from the rollout (Swarm's RollbackConfig; the restore of Docker hosts) */
  rollback: z
    .strictObject({
      parallelism: z.number().int().min(1).optional(),
      delay: duration.optional(),
      order: z.enum(['start-first', 'stop-first']).optional(),
      monitor: duration.optional(),
    })
    .optional(),
});

const environment = z
  .strictObject({
    requiresPromotionFrom: envName.optional(),
    protected: z.boolean().optional(),
    /** releases, promotions and rollbacks wait for a second person's `wharf approve` */
    requiresApproval: z.boolean().optional(),
    autoDeploy: z.boolean().optional(),
    /** the server redeploys the current release (never a newer one) when what runs drifted from it */
    autoHeal: z.boolean().optional(),
    /** attestation kinds a release must carry (e.g. sbom, provenance) */
    requires: z.array(nonEmpty).optional(),
    /** registered deploy targets (Docker hosts), by name */
    targets: z.array(targetName).min(1).optional(),
    swarm: swarm.optional(),
    /** per host for Docker targets; in total for Swarm */
    replicas: z.number().int().min(0).optional(),
    container: container.optional(),
    rollout: rollout.optional(),
  })
  .superRefine((e, ctx) => {
    if (e.targets !== undefined && e.swarm !== undefined) ctx.addIssue({ code: 'custom', message: 'give targets or swarm, not both' });
  });

const appFileSchema = z
  .strictObject({
    /** the repository in Wharf */
    app: z.string().refine(isValidRepositoryName, { message: 'not a valid repository name' }),
    container: container.optional(),
    rollout: rollout.optional(),
    environments: z.record(envName, environment).refine((envs) => Object.keys(envs).length > 0, { message: 'name at least one environment' }),
    /** build → test → push → attest → release → deploy, run by `wharf pipeline run` (src/pipeline/) */
    pipeline: pipelineSchema.optional(),
  })
  .superRefine((file, ctx) => {
    for (const [name, env] of Object.entries(file.environments)) {
      const at = ['environments', name];
      const from = env.requiresPromotionFrom;
      if (from !== undefined && (from === name || !(from in file.environments))) {
        ctx.addIssue({ code: 'custom', message: from === name ? 'an environment cannot require promotion from itself' : `no environment named '${from}'`, path: [...at, 'requiresPromotionFrom'] });
      }
      const plan = resolveEnvironment(file as AppFile, name);
      if (plan.rollout.order === 'start-first' && fixedHostPort(plan.container)) {
        ctx.addIssue({
          code: 'custom',
          message: 'start-first needs a free port for each new container; with network host and a fixed port use stop-first',
          path: [...at, 'rollout', 'order'],
        });
      }
      const health = plan.container.healthcheck;
      if (health?.http?.includes('{port}') && plan.container.port === undefined) {
        ctx.addIssue({ code: 'custom', message: 'the health check URL uses {port}: set container.port', path: [...at, 'container', 'port'] });
      }
      if (plan.swarm !== undefined && health !== undefined && health.docker === undefined) {
        ctx.addIssue({ code: 'custom', message: 'Swarm runs only docker health checks (it restarts unhealthy tasks itself)', path: [...at, 'container', 'healthcheck'] });
      }
      if (plan.swarm !== undefined) {
        for (const key of ['privileged', 'capAdd', 'pid', 'ipc', 'devices'] as const) {
          if (plan.container[key] !== undefined) ctx.addIssue({ code: 'custom', message: `Wharf does not set ${key} on Swarm services`, path: [...at, 'container', key] });
        }
      }
      const secrets = Object.keys(plan.container.secrets);
      for (const key of secrets.filter((k) => k in plan.container.env)) {
        ctx.addIssue({ code: 'custom', message: `${key} is both an env variable and a secret`, path: [...at, 'container', 'secrets', key] });
      }
    }
  });

export type AppFile = z.output<typeof appFileSchema>;
export type SwarmSpec = { target: string; service: string };
export type SecretSource = z.output<typeof secret>;
export type HealthcheckSpec = z.output<typeof healthcheck>;
export type VolumeSpec = z.output<typeof volume>;
type ContainerInput = z.output<typeof container>;

/** The container spec of one environment: the app-level spec with the environment's laid over it. */
export interface ContainerSpec {
  command?: string[];
  env: Record<string, string>;
  secrets: Record<string, SecretSource>;
  volumes: VolumeSpec[];
  network?: string;
  port?: number;
  labels: Record<string, string>;
  healthcheck?: HealthcheckSpec;
  /** milliseconds */
  stopTimeout?: number;
  privileged?: boolean;
  capAdd?: string[];
  pid?: 'host';
  ipc?: 'host';
  devices?: string[];
}

/** All durations in milliseconds. */
export interface RolloutSettings {
  parallelism: number;
  delay: number;
  order: 'start-first' | 'stop-first';
  healthTimeout: number;
  monitor: number;
  failureAction: 'rollback' | 'pause';
  /** the rollback's own settings; each defaults to the rollout's */
  rollback: { parallelism: number; delay: number; order: 'start-first' | 'stop-first'; monitor: number };
}

export interface EnvironmentRules {
  requiresPromotionFrom: string | null;
  protected: boolean;
  requiresApproval: boolean;
  autoDeploy: boolean;
  autoHeal: boolean;
  requires: string[];
}

/** Everything a deployment of one environment needs to know from the app file. */
export interface EnvironmentPlan {
  app: string;
  environment: string;
  rules: EnvironmentRules;
  /** registered targets (Docker hosts) by name; empty when the environment runs on Swarm or is not deployed anywhere */
  targets: string[];
  swarm?: SwarmSpec;
  replicas: number;
  container: ContainerSpec;
  rollout: RolloutSettings;
}

export const DEFAULT_ROLLOUT: Omit<RolloutSettings, 'rollback'> = {
  parallelism: 1,
  delay: 0,
  order: 'start-first',
  healthTimeout: 60_000,
  monitor: 5_000,
  failureAction: 'rollback',
};

export interface AppFileIssue {
  /** e.g. `environments.production.targets[1]` */
  path: string;
  message: string;
  /** 1-based line in the file, when known */
  line?: number;
}

export class AppFileError extends Error {
  constructor(readonly issues: AppFileIssue[]) {
    super(issues.map(formatIssue).join('\n'));
  }
}

export function formatIssue(i: AppFileIssue): string {
  return i.path === '' ? i.message : `${i.path}: ${i.message}`;
}

/** How many alias expansions an app file may make; real files use a handful (shared env blocks). */
const MAX_ALIAS_COUNT = 100;

/** Parses and validates the YAML text of an app file; throws AppFileError listing every problem. */
export function parseAppFile(text: string): AppFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new AppFileError(doc.errors.map((e) => ({ path: '', message: `invalid YAML: ${e.message.split('\n')[0]}`, line: lines.linePos(e.pos[0]).line })));
  }
  let value: unknown;
  try {
    // yaml's own bound on alias expansion: a "billion laughs" file is refused, not expanded into memory.
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    throw new AppFileError([{ path: '', message: `invalid YAML: ${(e as Error).message}` }]);
  }
  const parsed = appFileSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new AppFileError(
    parsed.error.issues.map((issue) => {
      const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path;
      const message =
        issue.code === 'unrecognized_keys'
          ? `unknown key '${issue.keys.join("', '")}'`
          : issue.code === 'invalid_key'
            ? (issue.issues[0]?.message ?? issue.message)
            : issue.message;
      return { path: formatPath(issue.code === 'unrecognized_keys' ? issue.path : path), message, line: lineOf(doc, lines, path) };
    }),
  );
}

/** The app file as YAML, durations written back as "30s"; secrets appear as their sources, never values. */
export function stringifyAppFile(file: AppFile): string {
  return stringify(appFileDocument(file), { lineWidth: 0 });
}

const DURATION_KEYS = new Set(['delay', 'healthTimeout', 'monitor', 'stopTimeout', 'interval', 'timeout', 'startPeriod']);

/** The app file as plain data in its written form (durations as text), for YAML output and diffs. */
export function appFileDocument(file: AppFile): unknown {
  const walk = (v: unknown, key?: string): unknown => {
    if (typeof v === 'number' && key !== undefined && DURATION_KEYS.has(key)) return formatDuration(v);
    if (Array.isArray(v)) return v.map((x) => walk(x));
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, walk(x, k)]));
    }
    return v;
  };
  return walk(file);
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms !== 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return ms === 0 ? '0s' : `${ms}ms`;
}

/** The resolved plan of one environment: merged container spec and rollout settings, with defaults. */
export function resolveEnvironment(file: AppFile, environment: string): EnvironmentPlan {
  const env = file.environments[environment];
  if (env === undefined) throw new Error(`app ${file.app} has no environment '${environment}'`);
  const base = file.container ?? {};
  const own = env.container ?? {};
  const merged: ContainerInput = { ...base, ...own };
  const containerSpec: ContainerSpec = {
    command: merged.command,
    env: { ...base.env, ...own.env },
    secrets: { ...base.secrets, ...own.secrets },
    volumes: own.volumes ?? base.volumes ?? [],
    network: merged.network,
    port: merged.port,
    labels: { ...base.labels, ...own.labels },
    healthcheck: merged.healthcheck,
    stopTimeout: merged.stopTimeout,
    privileged: merged.privileged,
    capAdd: merged.capAdd,
    pid: merged.pid,
    ipc: merged.ipc,
    devices: merged.devices,
  };
  const settings = { ...file.rollout, ...env.rollout };
  const { rollback, ...forward } = settings;
  const rolloutSettings = {
    ...DEFAULT_ROLLOUT,
    order: fixedHostPort(containerSpec) ? 'stop-first' : DEFAULT_ROLLOUT.order,
    ...Object.fromEntries(Object.entries(forward).filter(([, v]) => v !== undefined)),
  } as RolloutSettings;
  rolloutSettings.rollback = {
    parallelism: rollback?.parallelism ?? rolloutSettings.parallelism,
    delay: rollback?.delay ?? rolloutSettings.delay,
    order: rollback?.order ?? rolloutSettings.order,
    monitor: rollback?.monitor ?? rolloutSettings.monitor,
  };
  return {
    app: file.app,
    environment,
    rules: {
      requiresPromotionFrom: env.requiresPromotionFrom ?? null,
      protected: env.protected ?? false,
      requiresApproval: env.requiresApproval ?? false,
      autoHeal: env.autoHeal ?? false,
      autoDeploy: env.autoDeploy ?? false,
      requires: env.requires ?? [],
    },
    targets: env.targets ?? [],
    swarm: env.swarm && { target: env.swarm.target, service: env.swarm.service },
    replicas: env.replicas ?? 1,
    container: containerSpec,
    rollout: rolloutSettings,
  };
}

/** How pipelines name an environment's targets: each host's registered target, or the Swarm service. */
export function targetNames(plan: EnvironmentPlan): string[] {
  return plan.swarm ? [swarmTarget(plan)] : plan.targets;
}

/** The registered targets an environment uses (Docker hosts, or the Swarm manager). */
export function registeredTargets(plan: EnvironmentPlan): string[] {
  return plan.swarm ? [plan.swarm.target] : plan.targets;
}

export function swarmTarget(plan: EnvironmentPlan): string {
  return `swarm:${plan.swarm!.service}@${plan.swarm!.target}`;
}

/** With host networking every replica binds the host's port itself, so old and new cannot run side by side. */
function fixedHostPort(c: ContainerSpec): boolean {
  return c.network === 'host' && c.port !== undefined;
}

/** ['environments', 'production', 'targets', 1] → environments.production.targets[1] */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(key))) out += `[${JSON.stringify(String(key))}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

/** The line of the deepest node of the path that exists in the document. */
function lineOf(doc: ReturnType<typeof parseDocument>, lines: LineCounter, path: readonly PropertyKey[]): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
    if (node?.range) return lines.linePos(node.range[0]).line;
  }
  return undefined;
}
