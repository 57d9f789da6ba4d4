// The plan of one environment: the app file's container spec and rollout settings merged (app level, then the
// environment's own, then per target its overrides) with defaults filled in — everything a deployment needs to
// know. Pure.
import type { AppFile, ContainerInput, HealthcheckSpec, ProxyInput, SecretSource, SwarmSpec, TargetOverride, VolumeSpec } from './schema.js';

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
  /** switches behind the target's reverse proxy (deploy/proxy.ts); undefined: containers are replaced in place */
  proxy?: ProxySpec;
  /**
   * Docker hosts that differ (the environment's `overrides`), by target name: their own container spec and replicas.
   * A Swarm environment has one target, so its override is already laid into `container` and `replicas`.
   */
  overrides: Record<string, TargetSpec>;
  rollout: RolloutSettings;
}

/** The app file's `proxy` with its defaults (durations in milliseconds). */
export interface ProxySpec {
  port: number;
  portEnv: string;
  healthPath: string;
  drain: number;
}

export const DEFAULT_PROXY = { portEnv: 'PORT', healthPath: '/up', drain: 30_000 } as const;

/** What runs on one target. */
export interface TargetSpec {
  container: ContainerSpec;
  replicas: number;
}

export const DEFAULT_ROLLOUT: Omit<RolloutSettings, 'rollback'> = {
  parallelism: 1,
  delay: 0,
  order: 'start-first',
  healthTimeout: 60_000,
  monitor: 5_000,
  failureAction: 'rollback',
};

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
  const proxyInput: Partial<ProxyInput> | undefined = file.proxy || env.proxy ? { ...file.proxy, ...env.proxy } : undefined;
  const proxy: ProxySpec | undefined =
    proxyInput?.port === undefined
      ? undefined
      : { port: proxyInput.port, portEnv: proxyInput.portEnv ?? DEFAULT_PROXY.portEnv, healthPath: proxyInput.healthPath ?? DEFAULT_PROXY.healthPath, drain: proxyInput.drain ?? DEFAULT_PROXY.drain };
  const overrides: Record<string, TargetSpec> = {};
  let replicas = env.replicas ?? 1;
  let ownContainer = containerSpec;
  for (const [target, o] of Object.entries(env.overrides ?? {})) {
    const spec = { container: overlay(containerSpec, o), replicas: o.replicas ?? replicas };
    if (env.swarm) [ownContainer, replicas] = [spec.container, spec.replicas];
    else overrides[target] = spec;
  }
  const settings = { ...file.rollout, ...env.rollout };
  const { rollback, ...forward } = settings;
  const rolloutSettings = {
    ...DEFAULT_ROLLOUT,
    order: [ownContainer, ...Object.values(overrides).map((o) => o.container)].some(fixedHostPort) && proxy === undefined ? 'stop-first' : DEFAULT_ROLLOUT.order,
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
    replicas,
    container: ownContainer,
    ...(proxy ? { proxy } : {}),
    overrides,
    rollout: rolloutSettings,
  };
}

/** The environment's container spec with a target's override laid over it: env and labels by key, the rest replaced. */
function overlay(c: ContainerSpec, o: TargetOverride): ContainerSpec {
  return {
    ...c,
    env: { ...c.env, ...o.env },
    labels: { ...c.labels, ...o.labels },
    ...(o.port !== undefined ? { port: o.port } : {}),
    ...(o.volumes !== undefined ? { volumes: o.volumes } : {}),
  };
}

/** The plan as one target runs it: its own container spec and replicas when its override makes it differ. */
export function targetPlan(plan: EnvironmentPlan, target: string): EnvironmentPlan {
  const own = plan.overrides[target];
  return own === undefined ? plan : { ...plan, container: own.container, replicas: own.replicas };
}

/** The plan of every target it runs on (Docker hosts each with its overrides; a Swarm service as is). */
export function targetPlans(plan: EnvironmentPlan): EnvironmentPlan[] {
  return plan.swarm ? [plan] : plan.targets.map((t) => targetPlan(plan, t));
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
export function fixedHostPort(c: ContainerSpec): boolean {
  return c.network === 'host' && c.port !== undefined;
}
