// The production Engines: dockerode adapters for Docker hosts, Swarm managers and their event streams.
import type { Engines } from './engines.js';
import { DockerodeHost } from './dockerode-host.js';
import { DockerodeEvents } from './dockerode-events.js';
import { SwarmOrchestrator } from './swarm-orchestrator.js';

export function dockerEngines(): Engines {
  return {
    dockerHost: (t) => new DockerodeHost({ endpoint: t.endpoint, tls: t.tls, identityFile: t.identityFile }),
    orchestrator: (m) => new SwarmOrchestrator({ endpoint: m.endpoint, tls: m.tls, identityFile: m.identityFile }),
    events: (t) => new DockerodeEvents({ endpoint: t.endpoint, tls: t.tls, identityFile: t.identityFile }),
  };
}
