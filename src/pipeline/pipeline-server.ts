// The ports a pipeline run needs: a container engine to build, test in and push from (dockerode adapter in
// docker-engine.ts), and the Wharf server to attest, release and deploy through (the CLI's API client).
import type { Readable } from 'node:stream';
import type { RegistryAuth } from '../engine/docker-host.js';
import type { DeployOutcome } from '../deploy/service.js';
import type { EnvironmentStatus } from '../deploy/status.js';
import type { Envelope } from '../attest/dsse.js';

export type { RegistryAuth };

export interface BuildRequest {
  /** the build context as a tar stream */
  context: Readable;
  /** path of the Dockerfile inside the context */
  dockerfile: string;
  /** name:tag given to the image */
  tag: string;
  args: Record<string, string>;
  target?: string;
  network?: string;
  labels: Record<string, string>;
}

export interface TestRun {
  /** the image ID: the tests run in exactly the image just built, never in whatever a tag points at */
  image: string;
  command: string[];
  env: Record<string, string>;
  timeoutMs: number;
  network?: string;
  labels: Record<string, string>;
}

export interface TestOutcome {
  exitCode: number;
  timedOut: boolean;
}

export interface PushProgress {
  /** bytes pushed so far, over all layers the engine reported */
  current: number;
  total: number;
}

export interface PipelineEngine {
  /** Builds and returns the image ID (config digest); build output goes to onLog line by line. */
  build(req: BuildRequest, onLog: (line: string) => void): Promise<{ imageId: string }>;
  /** Runs one command in a fresh container from the image, removed afterwards. */
  test(run: TestRun, onLog: (line: string) => void): Promise<TestOutcome>;
  tag(image: string, repository: string, tag: string): Promise<void>;
  /** Pushes repository:tag and returns the manifest digest the registry stored. */
  push(repository: string, tag: string, auth: RegistryAuth | undefined, onProgress: (p: PushProgress) => void): Promise<{ digest: string }>;
}

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
