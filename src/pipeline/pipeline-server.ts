// The Wharf server a pipeline run attests, releases and deploys through (the CLI's API client implements it);
// the container engine it builds, tests in and pushes from is engine/pipeline-engine.ts.
import type { RegistryAuth } from '../engine/docker-host.js';
import type { DeployOutcome } from '../deploy/service.js';
import type { EnvironmentStatus } from '../deploy/status.js';
import type { Envelope } from '../attest/dsse.js';

/** A deployment the server runs for a release, followed from the pipeline as it goes. */
export interface DeploymentProgress {
  /** Hands each progress line to onLine as it comes; resolves with the outcome once the deployment has finished. */
  follow(onLine: (line: string) => void): Promise<DeployOutcome>;
  /** Stops listening; the deployment itself goes on on the server. */
  abandon(): Promise<void>;
}

export interface ReleaseMade {
  id: number;
  digest: string;
  /** the deployment of this release, when it was asked for */
  deployment?: DeploymentProgress;
}

export interface PipelineServer {
  /** host[:port] of this Wharf's registry, as the engine reaches it */
  registryHost: string;
  registryAuth: RegistryAuth | undefined;
  /** Hands the server an attestation the pipeline signed; the server stores it once it verifies. */
  attest(app: string, envelope: Envelope): Promise<{ digest: string }>;
  /**
   * The targets (host endpoints, or the Swarm service) the app file applied on the server gives the environment:
   * the server deploys by that file, not by the wharf.yaml at hand. null when no app file is applied.
   */
  deployTargets(app: string, environment: string): Promise<string[] | null>;
  /** Releases the digest; with `deploy` the server deploys that release too, in the same request. */
  release(app: string, environment: string, digest: string, note: string, deploy: boolean, origin?: { commit: string; pipelineRun: string }): Promise<ReleaseMade>;
  /** What the environment's targets run, asked of the live engines. */
  status(app: string, environment: string): Promise<EnvironmentStatus>;
}
