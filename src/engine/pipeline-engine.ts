// The PipelineEngine port: the container engine a pipeline run builds, tests in and pushes from (the dockerode
// adapter is docker-pipeline-engine.ts).
import type { Readable } from 'node:stream';
import type { RegistryAuth } from './docker-host.js';

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
