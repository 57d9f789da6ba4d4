// Engines: how the deploy code reaches the engines an app file names. Production wiring hands in
// dockerEngines() (dockerode-engines.ts); tests may hand in their own.
import type { SwarmSpec, TargetSpec } from './app-file.js';
import type { DockerHost } from './docker-host.js';
import type { Orchestrator } from './orchestrator.js';

export interface Engines {
  dockerHost(target: TargetSpec): DockerHost;
  orchestrator(swarm: SwarmSpec): Orchestrator;
}
