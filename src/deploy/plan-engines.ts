// PlanEngines: how a deployment reaches the engines of its environment, by the target names of the app file,
// bound to the registrations checked for that deployment (the Engines themselves come from engine/).
import type { SwarmSpec } from '../app-file/schema.js';
import type { DockerHost } from '../engine/docker-host.js';
import type { Engines } from '../engine/engines.js';
import type { Orchestrator } from '../engine/orchestrator.js';
import type { TargetConnection } from './target-policy.js';

/** The engines of one environment's targets, by name. */
export interface PlanEngines {
  dockerHost(target: string): DockerHost;
  orchestrator(swarm: SwarmSpec): Orchestrator;
}

/** Binds names to the connections checked for this deployment; a name not among them is a bug, not a fallback. */
export function planEngines(engines: Engines, connections: ReadonlyMap<string, TargetConnection>): PlanEngines {
  const connection = (name: string) => {
    const c = connections.get(name);
    if (c === undefined) throw new Error(`target ${name} was not checked for this deployment`);
    return c;
  };
  return {
    dockerHost: (name) => engines.dockerHost(connection(name)),
    orchestrator: (swarm) => engines.orchestrator(connection(swarm.target)),
  };
}
