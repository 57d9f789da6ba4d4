// The app file's schema (wharf.yaml): one application, its environments with their delivery rules, and per
// environment where it runs (registered Docker hosts or a Swarm service), the container spec and the rollout
// settings, field by field. The checks across fields and the YAML reading are parse.ts; the plan of one
// environment is plan.ts.
import { z } from 'zod';
import { duration } from '../units.js';
import { isValidRepositoryName } from '../oci/reference.js';
import { TARGET_NAME } from '../engine/endpoint.js';
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

/**
 * Zero-downtime switches on Docker hosts behind the reverse proxy the target's registration names (nginx): the
 * public port it listens on, the variable the app learns its port from, the path Wharf checks before switching,
 * how long the old containers keep finishing requests. Only numbers and a strictly checked path: nothing here
 * reaches the proxy's configuration as text (deploy/proxy-config.ts writes it from numbers).
 */
const proxy = z.strictObject({
  /** the public port the proxy listens on (within the ports the target's registration allows); required once merged */
  port: z.number().int().min(1).max(65535).optional(),
  /** the variable the app is told its port in (default PORT); the port is container.port or the one after its replicas */
  portEnv: varName.optional(),
  /** GET by Wharf on each new container before the proxy switches to it; 2xx is healthy (default /up) */
  healthPath: z
    .string()
    .max(256)
    .regex(/^\/[A-Za-z0-9._~\/-]*$/, 'a path such as /up: /, letters, digits, ., _, ~ and - only')
    .optional(),
  /** how long the old containers may take to finish the requests they have, after the switch (default 30s) */
  drain: duration.optional(),
});

/**
 * What may differ on one target, so that hosts need not be identical: laid over the environment's container spec
 * there (env and labels key by key; port and volumes replace), and its own replica count.
 */
const targetOverride = container.pick({ port: true, env: true, labels: true, volumes: true }).extend({
  /** on this Docker host; on a Swarm target, the service's total */
  replicas: z.number().int().min(0).optional(),
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
    proxy: proxy.optional(),
    /** per registered target (one of `targets`, or the `swarm` target): what differs there */
    overrides: z.record(z.string(), targetOverride).optional(),
    rollout: rollout.optional(),
  })
  .superRefine((e, ctx) => {
    if (e.targets !== undefined && e.swarm !== undefined) ctx.addIssue({ code: 'custom', message: 'give targets or swarm, not both' });
    const names = e.swarm ? [e.swarm.target] : (e.targets ?? []);
    for (const name of Object.keys(e.overrides ?? {})) {
      if (names.includes(name)) continue;
      const which = names.length === 0 ? 'this environment deploys to no target' : `this environment's targets are ${names.join(', ')}`;
      ctx.addIssue({ code: 'custom', message: `'${name}' is not a target of this environment (${which})`, path: ['overrides', name] });
    }
  });

export const appFileShape = z.strictObject({
  /** the repository in Wharf */
  app: z.string().refine(isValidRepositoryName, { message: 'not a valid repository name' }),
  container: container.optional(),
  /** laid over field by field by an environment's own `proxy` */
  proxy: proxy.optional(),
  rollout: rollout.optional(),
  environments: z.record(envName, environment).refine((envs) => Object.keys(envs).length > 0, { message: 'name at least one environment' }),
  /** build → test → push → attest → release → deploy, run by `wharf pipeline run` (src/pipeline/) */
  pipeline: pipelineSchema.optional(),
});

export type AppFile = z.output<typeof appFileShape>;
export type SwarmSpec = { target: string; service: string };
export type SecretSource = z.output<typeof secret>;
export type HealthcheckSpec = z.output<typeof healthcheck>;
export type VolumeSpec = z.output<typeof volume>;
export type ContainerInput = z.output<typeof container>;
export type ProxyInput = z.output<typeof proxy>;
export type TargetOverride = z.output<typeof targetOverride>;
