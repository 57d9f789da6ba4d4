// Containers on a Docker host that stand in an environment's way without being its own: one holding a host port
// the environment's replicas bind, or one named like the app but not started by Wharf. `wharf status` shows them;
// a deploy checks the ports before it pulls or stops anything, so it fails at once naming the holder.
import type { EnvironmentPlan } from '../app-file/plan.js';
import type { ContainerState, DockerHost, HeldPort } from '../engine/docker-host.js';
import { LABELS } from './labels.js';
import { replicaPort } from './container-create.js';
import { PROXY_LABELS } from './proxy.js';

export interface ForeignContainer {
  container: ContainerState;
  /** the ports the environment needs that this container holds */
  ports: HeldPort[];
  /** named like the app (and not started by Wharf) */
  named: boolean;
  /** who started it, as far as its labels tell */
  owner: string;
}

/**
 * The host ports the environment's replicas bind on each Docker host: only with the host's network, where
 * replica i listens on port + i. On other networks Wharf publishes nothing, so no host port is needed.
 */
export function neededPorts(plan: EnvironmentPlan): number[] {
  if (plan.container.network !== 'host' || plan.container.port === undefined) return [];
  // Behind a proxy the replicas alternate between two sets of ports, and the proxy holds the public one.
  if (plan.proxy) return [...Array.from({ length: 2 * plan.replicas }, (_, i) => plan.container.port! + i), plan.proxy.port];
  return Array.from({ length: plan.replicas }, (_, i) => replicaPort(plan.container, i)!);
}

/** The container names a person starting the app by hand would give it: `team/web` → web, team_web, team-web. */
export function appContainerNames(app: string): string[] {
  return [...new Set([app.slice(app.lastIndexOf('/') + 1), app.replaceAll('/', '_'), app.replaceAll('/', '-')])];
}

function owner(c: ContainerState): string {
  const app = c.labels[LABELS.app];
  return app === undefined ? "not Wharf's" : `Wharf's ${app} ${c.labels[LABELS.env] ?? ''}`.trimEnd();
}

/** Running containers that hold a port the environment needs, or the app's name, and are not the environment's own. */
export async function foreignContainers(host: DockerHost, plan: EnvironmentPlan): Promise<ForeignContainer[]> {
  const needed = new Set(neededPorts(plan));
  const names = new Set(appContainerNames(plan.app));
  const out: ForeignContainer[] = [];
  for (const { container, ports } of await host.portHolders()) {
    const own =
      (container.labels[LABELS.app] === plan.app && container.labels[LABELS.env] === plan.environment) ||
      (container.labels[PROXY_LABELS.app] === plan.app && container.labels[PROXY_LABELS.env] === plan.environment);
    if (own) continue;
    const held = ports.filter((p) => p.protocol === 'tcp' && needed.has(p.port));
    const named = container.labels[LABELS.app] === undefined && names.has(container.name);
    if (held.length > 0 || named) out.push({ container, ports: held, named, owner: owner(container) });
  }
  return out;
}

/** `port 8080 is held by web (not Wharf's, runs busybox:1; published)` */
export function describeHolder(f: ForeignContainer): string {
  const ports = f.ports.map((p) => p.port);
  const what = ports.length === 1 ? `port ${ports[0]} is` : `ports ${ports.join(', ')} are`;
  const how = [...new Set(f.ports.map((p) => (p.how === 'published' ? 'published with -p' : 'declared on the host network')))].join(', ');
  return `${what} held by container ${f.container.name} (${f.owner}, runs ${f.container.image}; ${how})`;
}

/**
 * Why the environment cannot start on these hosts because another container holds a port it needs, or null.
 * Each host with its own plan (its overrides may give it another port). Hosts that do not answer are left to the
 * rollout, which reports them as unreachable.
 */
export async function portConflicts(hosts: { host: DockerHost; plan: EnvironmentPlan }[]): Promise<string | null> {
  const found = await Promise.all(
    hosts.map(async ({ host, plan }) => {
      if (neededPorts(plan).length === 0) return [];
      const foreign = await foreignContainers(host, plan).catch(() => []);
      return foreign.filter((f) => f.ports.length > 0).map((f) => `on ${host.endpoint} ${describeHolder(f)}`);
    }),
  );
  const lines = found.flat();
  if (lines.length === 0) return null;
  return `${lines.join('; ')}: stop or remove it, or give the app another container.port; nothing was pulled, stopped or started`;
}
