// The DockerHost port: what a rollout needs from one Docker Engine. The dockerode adapter (dockerode-host.ts)
// implements it; deploy's rollout and status code see only this.

/** Registry credentials for a pull, sent to the engine as X-Registry-Auth (never logged). */
export interface RegistryAuth {
  serveraddress: string;
  username?: string;
  password?: string;
  /** a bearer token the engine presents to the registry as is */
  registrytoken?: string;
  identitytoken?: string;
}

export interface EngineInfo {
  /** the Engine API version in use: the lower of Wharf's and the engine's */
  apiVersion: string;
  engineVersion: string;
}

/** The outcome of one health probe (the engine's HEALTHCHECK, or an exec run by Wharf). */
export interface ProbeResult {
  exitCode: number;
  output: string;
}

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

export interface ContainerState {
  id: string;
  name: string;
  /** the reference the container was created from: repo@sha256:… for Wharf's, maybe repo:tag for others */
  image: string;
  imageId: string;
  labels: Record<string, string>;
  /** created, running, restarting, exited, … */
  status: string;
  running: boolean;
  /** undefined when the container has no health check */
  health?: HealthStatus;
  /** the engine's latest probes, oldest first (inspect only) */
  healthLog?: ProbeResult[];
  exitCode?: number;
  restartCount?: number;
}

/** The Engine API's HealthConfig, as containers and Swarm services both take it (durations in nanoseconds). */
export interface DockerHealthConfig {
  /** ["CMD", …] or ["CMD-SHELL", "…"] */
  Test: string[];
  Interval?: number;
  Timeout?: number;
  Retries?: number;
  StartPeriod?: number;
}

export interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface ContainerCreate {
  name: string;
  image: string;
  command?: string[];
  /** KEY=value; may hold secret values, so never log it */
  env: string[];
  labels: Record<string, string>;
  network?: string;
  mounts: Mount[];
  healthcheck?: DockerHealthConfig;
  stopTimeoutSec?: number;
  /** options that reach into the host, set only when the target's registration allows them (target-policy.ts) */
  privileged?: boolean;
  capAdd?: string[];
  pid?: 'host';
  ipc?: 'host';
  /** host:container[:permissions], or a single path used for both */
  devices?: string[];
}

/** A port of the host that a running container holds. */
export interface HeldPort {
  port: number;
  protocol: 'tcp' | 'udp';
  /**
   * `published`: the engine binds it for the container (-p). `declared`: the container runs on the host's network
   * and names it (EXPOSE, --expose or PORT=…); the engine cannot see what such a container binds, so that is the
   * best evidence it has.
   */
  how: 'published' | 'declared';
}

export interface PortHolder {
  container: ContainerState;
  ports: HeldPort[];
}

/** A process of a running container, as the engine's `top` lists it. */
export interface ContainerProcess {
  pid: number;
  /** the command line, as the process shows it (nginx retitles its workers: `nginx: worker process`) */
  command: string;
}

export interface DockerHost {
  /** the endpoint as written in the app file, used to name the host in events and results */
  readonly endpoint: string;
  /** Pings the engine and negotiates the API version (fails fast when the host is unreachable). */
  engine(): Promise<EngineInfo>;
  /** Pulls `repo@sha256:…`; rejects with the engine's error message (e.g. manifest unknown, unauthorized). */
  pull(image: string, auth?: RegistryAuth): Promise<void>;
  /** The image's RepoDigests (`repo@sha256:…`), or [] if the engine does not have it. */
  imageRepoDigests(image: string): Promise<string[]>;
  createContainer(spec: ContainerCreate): Promise<string>;
  startContainer(id: string): Promise<void>;
  /**
   * From now on the engine restarts the container (after a crash or a reboot) unless it is stopped. Containers
   * are created without that, so that a crash while a rollout waits for health is seen, with its exit code.
   */
  keepRunning(id: string): Promise<void>;
  /** Stops a container; one that is already stopped is not an error. */
  stopContainer(id: string, timeoutSec?: number): Promise<void>;
  /** Removes a container, running or not; one that is already gone is not an error. */
  removeContainer(id: string): Promise<void>;
  inspectContainer(id: string): Promise<ContainerState>;
  /**
   * Calls `changed` at every engine event that may change what `inspectContainer` says of the container (its health
   * status, its end) from the moment the promise resolves, until `close()`. Events only wake a waiter, which then
   * inspects: a stream that drops loses nothing the next inspection would not see. Optional: an adapter without it
   * is polled.
   */
  watchContainer?(id: string, changed: () => void): Promise<{ close(): void }>;
  /** Containers carrying all the given labels (running only unless `all`). */
  listContainers(opts: { labels?: Record<string, string>; all?: boolean }): Promise<ContainerState[]>;
  /** Every running container with the host ports it holds (empty when it holds none). */
  portHolders(): Promise<PortHolder[]>;
  /** Runs a command in a running container; the output is cut to its last few KiB. */
  exec(id: string, command: string[], timeoutMs: number): Promise<ProbeResult>;
  /** The last `lines` lines of the container's output (stdout and stderr). */
  logs(id: string, lines: number): Promise<string>;
  /** Whether the engine has the image (any reference: name:tag, name@digest, an id). */
  hasImage(image: string): Promise<boolean>;
  /** Writes one file (mode 0644, owned by root) into a container, created or running, through the engine's archive API. */
  putFile(id: string, path: string, content: string): Promise<void>;
  /** The processes of a running container (the engine's `top`). */
  processes(id: string): Promise<ContainerProcess[]>;
}
