// Engines: how deploy code opens the engine of a registered target, as a DockerHost or a Swarm Orchestrator, and
// its event stream. Production wiring hands in dockerEngines() (dockerode-engines.ts); tests may hand in their own.
import type { ConnectionSpec } from './connection.js';
import type { DockerHost } from './docker-host.js';
import type { EngineEvents } from './engine-events.js';
import type { Orchestrator } from './orchestrator.js';

export interface Engines {
  dockerHost(target: ConnectionSpec): DockerHost;
  orchestrator(manager: ConnectionSpec): Orchestrator;
  /** the events of a Docker host or a Swarm manager */
  events(target: ConnectionSpec): EngineEvents;
}
