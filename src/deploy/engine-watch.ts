// The engine events the reconcile loop listens to: one event stream per registered target that an environment
// deploys to, filtered by the labels Wharf puts on its containers (and, on a Swarm manager, the service events),
// each event mapped to the environments it concerns. A stream that drops is opened again by the adapter; when it
// comes back, every environment of that target is looked at, since what happened meanwhile may be lost.
import type { EngineEvent, EventWatch } from '../engine/engine-events.js';
import type { Engines } from '../engine/engines.js';
import { LABELS } from './labels.js';
import type { DeployLog, WatchedEnvironment } from './service.js';
import type { TargetConnection } from './target-policy.js';

export interface EnvironmentKey {
  app: string;
  environment: string;
}

/**
 * What changes what runs: a container of the app that died, stopped, was removed, ran out of memory or turned
 * unhealthy. Starts are left out: a start is Wharf's own doing, or the engine's restart policy healing.
 */
export const CONTAINER_ACTIONS = ['die', 'stop', 'destroy', 'oom', 'health_status: unhealthy'];
/** A Swarm service changed (scaled, updated, rolled back by hand) or removed. */
export const SERVICE_ACTIONS = ['update', 'remove'];

interface TargetWatch {
  /** the registration it was opened for: a changed endpoint or credentials opens a new stream */
  identity: string;
  streams: EventWatch[];
  /** `app/env` → the environment, for container events */
  environments: Map<string, EnvironmentKey>;
  /** service name → the environment, for service events */
  services: Map<string, EnvironmentKey>;
  connected: boolean;
}

export class EngineWatch {
  private readonly watches = new Map<string, TargetWatch>();

  constructor(
    private readonly engines: Pick<Engines, 'events'>,
    /** an event (or a reconnection) that may have changed what runs in this environment */
    private readonly changed: (env: EnvironmentKey, why: string) => void,
    private readonly log: DeployLog,
    /** target name → whether its stream is open now (for the metrics) */
    private readonly state: Map<string, boolean> = new Map(),
  ) {}

  /** Opens, changes or closes streams so that exactly these environments' targets are watched. */
  update(environments: WatchedEnvironment[]): void {
    const wanted = new Map<string, { connection: TargetConnection; environments: Map<string, EnvironmentKey>; services: Map<string, EnvironmentKey> }>();
    for (const e of environments) {
      const key = { app: e.app, environment: e.environment };
      for (const t of e.targets) {
        let w = wanted.get(t.name);
        if (!w) wanted.set(t.name, (w = { connection: t, environments: new Map(), services: new Map() }));
        w.environments.set(`${e.app}/${e.environment}`, key);
        if (e.service !== undefined) w.services.set(e.service, key);
      }
    }
    for (const [name, w] of this.watches) {
      const want = wanted.get(name);
      if (want === undefined || identity(want.connection) !== w.identity || (want.services.size > 0) !== (w.services.size > 0)) this.close(name);
    }
    for (const [name, want] of wanted) {
      const open = this.watches.get(name);
      if (open) {
        open.environments = want.environments;
        open.services = want.services;
      } else {
        this.open(name, want.connection, want.environments, want.services);
      }
    }
  }

  /** Targets whose stream is open / not open now. */
  counts(): { connected: number; down: number } {
    const all = [...this.watches.values()];
    return { connected: all.filter((w) => w.connected).length, down: all.filter((w) => !w.connected).length };
  }

  stop(): void {
    for (const name of [...this.watches.keys()]) this.close(name);
  }

  private close(name: string): void {
    for (const s of this.watches.get(name)?.streams ?? []) s.close();
    this.watches.delete(name);
    this.state.delete(name);
  }

  private open(name: string, connection: TargetConnection, environments: Map<string, EnvironmentKey>, services: Map<string, EnvironmentKey>): void {
    const w: TargetWatch = { identity: identity(connection), streams: [], environments, services, connected: false };
    this.watches.set(name, w);
    this.state.set(name, false);
    const events = this.engines.events(connection);
    const open = new Set<number>();
    const listener = (i: number) => ({
      event: (e: EngineEvent) => {
        for (const env of this.concerned(w, e)) this.changed(env, `${e.type} ${e.action}${e.attributes.name ? ` (${e.attributes.name})` : ''} on ${name}`);
      },
      connected: (again: boolean) => {
        open.add(i);
        w.connected = open.size === w.streams.length;
        this.state.set(name, w.connected);
        if (!again) return;
        this.log.info({ target: name }, 'the engine event stream is open again');
        for (const env of w.environments.values()) this.changed(env, `the event stream of ${name} came back`);
      },
      lost: (error: Error) => {
        // Logged once per drop, not at every retry of a host that stays down.
        if (open.delete(i) || w.connected) this.log.warn({ target: name, err: error.message }, 'the engine event stream dropped; retrying');
        w.connected = false;
        this.state.set(name, false);
      },
    });
    w.streams.push(events.watch({ type: ['container'], label: [LABELS.app], event: CONTAINER_ACTIONS }, listener(0)));
    // Service events carry no labels: they are matched by the service's name.
    if (services.size > 0) w.streams.push(events.watch({ type: ['service'], event: SERVICE_ACTIONS }, listener(1)));
  }

  /** The environments an event of this target concerns. */
  private concerned(w: TargetWatch, e: EngineEvent): EnvironmentKey[] {
    if (e.type === 'service') {
      const env = w.services.get(e.attributes.name ?? '');
      return env ? [env] : [];
    }
    const env = w.environments.get(`${e.attributes[LABELS.app]}/${e.attributes[LABELS.env]}`);
    return env ? [env] : [];
  }
}

function identity(c: TargetConnection): string {
  return JSON.stringify([c.endpoint, c.tls ?? null, c.identityFile ?? null]);
}
