// The production Engines: dockerode adapters for Docker hosts and Swarm managers.
import type { Engines } from './engines.js';
import { DockerodeHost } from './dockerode-host.js';
import { SwarmOrchestrator } from './swarm-orchestrator.js';

export function dockerEngines(): Engines {
  return {
    dockerHost: (t) => new DockerodeHost({ endpoint: t.endpoint, tls: t.tls, identityFile: t.identityFile }),
    orchestrator: (m) => new SwarmOrchestrator({ endpoint: m.endpoint, tls: m.tls, identityFile: m.identityFile }),
  };
}
