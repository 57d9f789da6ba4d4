// Who may deploy what where: a registered deploy target covers apps by pattern and allows privileged container
// options by name; an environment's plan is checked against the registrations of the targets it names. Pure:
// the same check runs at `apply` and again at deploy time, against whatever the registrations say then.
import { matchesGlob } from '../oci/pattern.js';
import { type ContainerSpec, type EnvironmentPlan, registeredTargets, targetPlan } from '../app-file/plan.js';
import type { ConnectionSpec } from '../engine/connection.js';
import type { Privilege, ProxyRegistration, TargetRegistration } from './target-registration.js';

export { PRIVILEGES, type Privilege, type TargetRegistration } from './target-registration.js';

/** An engine connection with the target's name (and the proxy it allows), as deploy code opens it. */
export type TargetConnection = ConnectionSpec & { name: string; proxy?: ProxyRegistration };

export interface PrivilegeUse {
  privilege: Privilege;
  /** where in the container spec, e.g. `volumes[0]` */
  path: string;
  what: string;
}

/** What of the container spec needs a privilege, one entry per use. */
export function privilegesOf(c: ContainerSpec): PrivilegeUse[] {
  const uses: PrivilegeUse[] = [];
  c.volumes.forEach((v, i) => {
    // A named volume lives in the engine's own storage; a path is the host's file system.
    if (v.source.startsWith('/') || v.source.startsWith('.') || v.source.includes('/')) {
      uses.push({ privilege: 'bind-mounts', path: `volumes[${i}]`, what: `bind mount of the host path ${v.source}` });
    }
  });
  if (c.privileged) uses.push({ privilege: 'privileged', path: 'privileged', what: 'a privileged container' });
  if (c.capAdd?.length) uses.push({ privilege: 'cap-add', path: 'capAdd', what: `added capabilities ${c.capAdd.join(', ')}` });
  if (c.pid === 'host') uses.push({ privilege: 'host-pid', path: 'pid', what: "the host's PID namespace" });
  if (c.ipc === 'host') uses.push({ privilege: 'host-ipc', path: 'ipc', what: "the host's IPC namespace" });
  if (c.devices?.length) uses.push({ privilege: 'devices', path: 'devices', what: `host devices ${c.devices.join(', ')}` });
  if (c.network === 'host' || c.network?.startsWith('container:')) {
    uses.push({ privilege: 'network-host', path: 'network', what: c.network === 'host' ? "the host's network" : `the network namespace of ${c.network}` });
  }
  return uses;
}

export interface PolicyRefusal {
  /** located like app file errors: `environments.production.targets[0]` */
  path: string;
  message: string;
}

/**
 * Every reason the environment may not deploy to its targets: a name nobody registered, a target whose patterns
 * do not cover the app, a privileged option its registration does not allow. Empty: allowed. Reading what runs
 * (status) checks `targetsOnly`: the container options matter only to what is started.
 */
export function checkPlan(plan: EnvironmentPlan, lookup: (name: string) => TargetRegistration | undefined, opts: { targetsOnly?: boolean } = {}): PolicyRefusal[] {
  const at = `environments.${plan.environment}`;
  const refusals: PolicyRefusal[] = [];
  const base = privilegesOf(plan.container);
  registeredTargets(plan).forEach((name, i) => {
    // A target's overrides may ask for more (a bind mount of a path only that host has): checked against that target.
    const own = plan.swarm ? base : privilegesOf(targetPlan(plan, name).container);
    const uses = opts.targetsOnly ? [] : own.map((u) => (base.some((b) => b.path === u.path && b.what === u.what) ? { ...u, at: `container.${u.path}` } : { ...u, at: `overrides.${name}.${u.path}` }));
    const path = plan.swarm ? `${at}.swarm.target` : `${at}.targets[${i}]`;
    const target = lookup(name);
    if (target === undefined) {
      refusals.push({ path, message: `no deploy target named '${name}' is registered (a global admin registers targets: 'wharf target add')` });
      return;
    }
    if (!covers(target, plan.app)) {
      refusals.push({ path, message: `target '${name}' is not for app ${plan.app}: it takes apps ${target.apps.join(', ')} (the global admin's registration decides which apps a target takes)` });
      return;
    }
    if (plan.proxy !== undefined && !opts.targetsOnly) {
      // The proxy's image and address are the admin's; the app file only asks for a port among those allowed.
      const proxyAt = `${at}.proxy.port`;
      if (target.proxy === undefined) {
        refusals.push({ path: proxyAt, message: `target '${name}' has no proxy (a global admin allows one: 'wharf target add ${name} … --proxy-image nginx:stable')` });
      } else if (plan.proxy.port < target.proxy.ports.from || plan.proxy.port > target.proxy.ports.to) {
        refusals.push({ path: proxyAt, message: `port ${plan.proxy.port} is not among the public ports target '${name}' allows (${target.proxy.ports.from}-${target.proxy.ports.to})` });
      }
    }
    for (const use of uses) {
      if (!target.allow.includes(use.privilege)) {
        refusals.push({
          path: `${at}.${use.at}`,
          message: `${use.what} needs '${use.privilege}', which target '${name}' does not allow (a global admin allows it: 'wharf target add ${name} … --allow ${use.privilege}')`,
        });
      }
    }
  });
  return refusals;
}

export function covers(target: Pick<TargetRegistration, 'apps'>, app: string): boolean {
  return target.apps.some((p) => matchesGlob(p, app));
}

export function connectionOf(t: TargetRegistration): TargetConnection {
  return { name: t.name, endpoint: t.endpoint, ...(t.tls ? { tls: t.tls } : {}), ...(t.identityFile ? { identityFile: t.identityFile } : {}), ...(t.proxy ? { proxy: t.proxy } : {}) };
}
