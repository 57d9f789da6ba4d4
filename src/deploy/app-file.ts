// The app file (wharf.yaml): one application, its environments with their delivery rules, and per environment
// where it runs (Docker hosts or a Swarm service), the container spec and the rollout settings. Parsed and
// validated once, with errors located by path and line; the rest of Wharf trusts the resulting AppFile.
import { LineCounter, parseDocument, stringify } from 'yaml';
import { z } from 'zod';
import { duration } from '../config.js';
import { isValidRepositoryName } from '../oci/reference.js';
import { parseEndpoint } from './endpoint.js';
import { pipelineSchema } from '../pipeline/pipeline-schema.js';

const ENV_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const RESERVED_LABEL_PREFIX = 'wharf.';
const HEALTH_URL_PLACEHOLDERS = new Set(['host', 'port']);

const envName = z.string().regex(ENV_NAME, 'environment names are lowercase letters, digits, - and _');
const varName = z.string().regex(VAR_NAME, 'variable names are letters, digits and _, not starting with a digit');
const nonEmpty = z.string().min(1);
const argv = z.array(z.string()).min(1, 'needs at least the program');

const tls = z.strictObject({ ca: nonEmpty, cert: nonEmpty, key: nonEmpty });

const connection = {
  /** a display name for the target; defaults to the endpoint */
  name: nonEmpty.optional(),
  /** client certificate files for tcp:// endpoints */
  tls: tls.optional(),
  /** private key file for ssh:// endpoints (otherwise the ssh agent) */
  identityFile: nonEmpty.optional(),
};

function checkConnection(t: { endpoint: string; tls?: unknown; identityFile?: unknown }, ctx: z.RefinementCtx) {
  let scheme: string;
  try {
    scheme = parseEndpoint(t.endpoint).scheme;
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return;
  }
  if (t.tls !== undefined && scheme !== 'tcp') ctx.addIssue({ code: 'custom', message: 'tls applies only to tcp:// endpoints', path: ['tls'] });
  if (t.identityFile !== undefined && scheme !== 'ssh') {
    ctx.addIssue({ code: 'custom', message: 'identityFile applies only to ssh:// endpoints', path: ['identityFile'] });
  }
}

/** A Docker host; a bare string is shorthand for `{ endpoint: … }`. */
const target = z.preprocess(
  (v) => (typeof v === 'string' ? { endpoint: v } : v),
  z.strictObject({ endpoint: nonEmpty, ...connection }).superRefine(checkConnection),
);

const swarm = z
  .strictObject({ manager: nonEmpty, service: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/, 'invalid service name'), ...connection })
  .superRefine((s, ctx) => checkConnection({ ...s, endpoint: s.manager }, ctx));

const secret = z.union([z.strictObject({ file: nonEmpty }), z.strictObject({ env: varName })], {
  error: 'a secret is { file: PATH } or { env: NAME } (a variable of the Wharf server)',
});

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
});

const environment = z
  .strictObject({
    requiresPromotionFrom: envName.optional(),
    protected: z.boolean().optional(),
    autoDeploy: z.boolean().optional(),
    /** attestation kinds a release must carry (e.g. sbom, provenance) */
    requires: z.array(nonEmpty).optional(),
    targets: z.array(target).min(1).optional(),
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
      const secrets = Object.keys(plan.container.secrets);
      for (const key of secrets.filter((k) => k in plan.container.env)) {
        ctx.addIssue({ code: 'custom', message: `${key} is both an env variable and a secret`, path: [...at, 'container', 'secrets', key] });
      }
    }
  });

export type AppFile = z.output<typeof appFileSchema>;
export type EnvironmentSpec = AppFile['environments'][string];
export type TargetSpec = z.output<typeof target>;
export type SwarmSpec = z.output<typeof swarm>;
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
}

/** All durations in milliseconds. */
export interface RolloutSettings {
  parallelism: number;
  delay: number;
  order: 'start-first' | 'stop-first';
  healthTimeout: number;
  monitor: number;
  failureAction: 'rollback' | 'pause';
}

export interface EnvironmentRules {
  requiresPromotionFrom: string | null;
  protected: boolean;
  autoDeploy: boolean;
  requires: string[];
}

/** Everything a deployment of one environment needs to know from the app file. */
export interface EnvironmentPlan {
  app: string;
  environment: string;
  rules: EnvironmentRules;
  /** Docker hosts; empty when the environment runs on Swarm or is not deployed anywhere */
  targets: TargetSpec[];
  swarm?: SwarmSpec;
  replicas: number;
  container: ContainerSpec;
  rollout: RolloutSettings;
}

export const DEFAULT_ROLLOUT: RolloutSettings = {
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

/** Parses and validates the YAML text of an app file; throws AppFileError listing every problem. */
export function parseAppFile(text: string): AppFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new AppFileError(doc.errors.map((e) => ({ path: '', message: `invalid YAML: ${e.message.split('\n')[0]}`, line: lines.linePos(e.pos[0]).line })));
  }
  const parsed = appFileSchema.safeParse(doc.toJS());
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

/** Validates an app file already in object form, as written (e.g. the management API's JSON; durations as "30s"). */
export function validateAppFile(value: unknown): AppFile {
  return parseAppFile(stringify(value));
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
  };
  const settings = { ...file.rollout, ...env.rollout };
  const rolloutSettings: RolloutSettings = {
    ...DEFAULT_ROLLOUT,
    order: fixedHostPort(containerSpec) ? 'stop-first' : DEFAULT_ROLLOUT.order,
    ...Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined)),
  };
  return {
    app: file.app,
    environment,
    rules: {
      requiresPromotionFrom: env.requiresPromotionFrom ?? null,
      protected: env.protected ?? false,
      autoDeploy: env.autoDeploy ?? false,
      requires: env.requires ?? [],
    },
    targets: env.targets ?? [],
    swarm: env.swarm,
    replicas: env.replicas ?? 1,
    container: containerSpec,
    rollout: rolloutSettings,
  };
}

/** How deployments, status and pipelines name an environment's targets: each host's endpoint, or the Swarm service. */
export function targetNames(plan: EnvironmentPlan): string[] {
  return plan.swarm ? [swarmTarget(plan)] : plan.targets.map((t) => t.endpoint);
}

export function swarmTarget(plan: EnvironmentPlan): string {
  return `swarm:${plan.swarm!.service}@${plan.swarm!.manager}`;
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
