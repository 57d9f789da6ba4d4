// The production Engines: dockerode adapters for Docker hosts and Swarm managers.
import type { Engines } from './engines.js';
import { DockerodeHost } from './dockerode-host.js';
import { SwarmOrchestrator } from './swarm-orchestrator.js';

export function dockerEngines(): Engines {
  return {
    dockerHost: (t) => new DockerodeHost(t),
    orchestrator: (s) => new SwarmOrchestrator({ endpoint: s.manager, tls: s.tls, identityFile: s.identityFile }),
  };
}
