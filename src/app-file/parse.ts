// Reading an app file: YAML text parsed and validated once, the checks that span fields and environments
// included, with every problem located by path and line; the rest of Wharf trusts the resulting AppFile.
import { LineCounter, parseDocument } from 'yaml';
import { type EnvironmentPlan, fixedHostPort, resolveEnvironment, targetPlans } from './plan.js';
import { type AppFile, appFileShape } from './schema.js';

/** The checks across fields and environments, which the field schemas cannot make alone. */
const appFileSchema = appFileShape.superRefine((file, ctx) => {
  for (const [name, env] of Object.entries(file.environments)) {
    const at = ['environments', name];
    const from = env.requiresPromotionFrom;
    if (from !== undefined && (from === name || !(from in file.environments))) {
      ctx.addIssue({ code: 'custom', message: from === name ? 'an environment cannot require promotion from itself' : `no environment named '${from}'`, path: [...at, 'requiresPromotionFrom'] });
    }
    const plan = resolveEnvironment(file as AppFile, name);
    if (file.proxy !== undefined || env.proxy !== undefined) checkProxy(plan, (message, ...path) => ctx.addIssue({ code: 'custom', message, path: [...at, ...path] }));
    if (plan.rollout.order === 'start-first' && targetPlans(plan).some((p) => fixedHostPort(p.container)) && plan.proxy === undefined) {
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
    for (const [target, o] of Object.entries(env.overrides ?? {})) {
      for (const key of secrets.filter((k) => k in (o.env ?? {}))) {
        ctx.addIssue({ code: 'custom', message: `${key} is a secret; an override cannot set it as an env variable`, path: [...at, 'overrides', target, 'env', key] });
      }
    }
  }
});

/** A proxy switches new containers in beside the old ones, on the host's network, on ports of their own. */
function checkProxy(plan: EnvironmentPlan, issue: (message: string, ...path: string[]) => void): void {
  if (plan.proxy === undefined) return issue('give the public port the proxy listens on', 'proxy', 'port');
  if (plan.swarm !== undefined) issue('a proxy is for Docker hosts (targets); Swarm routes to its tasks itself', 'proxy');
  const c = plan.container;
  if (c.network !== 'host') issue('the proxy reaches the app on the host network: set container.network: host', 'container', 'network');
  if (c.port === undefined) {
    issue('behind a proxy the app needs container.port: its replicas get that port and the ones after it', 'container', 'port');
  } else {
    const last = c.port + 2 * plan.replicas - 1;
    if (last > 65535) issue(`the app's ports ${c.port}-${last} (two sets of ${plan.replicas} replicas) go past 65535`, 'container', 'port');
    if (plan.proxy.port >= c.port && plan.proxy.port <= last) issue(`the public port is among the app's own ports ${c.port}-${last}`, 'proxy', 'port');
  }
  if (plan.rollout.order !== 'start-first' || plan.rollout.rollback.order !== 'start-first') issue('behind a proxy the new containers start beside the old ones: order must be start-first', 'rollout', 'order');
  if (c.healthcheck !== undefined) issue("behind a proxy Wharf checks proxy.healthPath on each new container before switching; leave container.healthcheck out", 'container', 'healthcheck');
}

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
