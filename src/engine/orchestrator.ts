// The Orchestrator port: what a deployment needs from a Swarm manager. Service specs are the Engine API's own
// JSON shape (only the fields Wharf sets are typed), so nothing is lost between inspect and update.
import type { DockerHealthConfig, EngineInfo, ProbeResult, RegistryAuth } from './docker-host.js';

export interface SwarmUpdateConfig {
  Parallelism: number;
  /** nanoseconds */
  Delay: number;
  FailureAction: 'pause' | 'continue' | 'rollback';
  /** nanoseconds */
  Monitor: number;
  MaxFailureRatio: number;
  Order: 'stop-first' | 'start-first';
}

export interface ServiceSpec {
  Name: string;
  Labels?: Record<string, string>;
  TaskTemplate: {
    ContainerSpec: {
      Image: string;
      Args?: string[];
      Env?: string[];
      Labels?: Record<string, string>;
      Mounts?: { Type: 'bind' | 'volume'; Source: string; Target: string; ReadOnly: boolean }[];
      Healthcheck?: DockerHealthConfig;
      /** nanoseconds */
      StopGracePeriod?: number;
      [field: string]: unknown;
    };
    Networks?: { Target: string; Aliases?: string[] }[];
    RestartPolicy?: { Condition: 'none' | 'on-failure' | 'any'; Delay?: number; MaxAttempts?: number };
    ForceUpdate?: number;
    [field: string]: unknown;
  };
  Mode?: { Replicated?: { Replicas: number }; [mode: string]: unknown };
  UpdateConfig?: SwarmUpdateConfig;
  RollbackConfig?: SwarmUpdateConfig;
  [field: string]: unknown;
}

export type UpdateState = 'updating' | 'paused' | 'completed' | 'rollback_started' | 'rollback_paused' | 'rollback_completed';

export interface UpdateStatus {
  state: UpdateState;
  startedAt?: string;
  completedAt?: string;
  message?: string;
}

export interface SwarmService {
  id: string;
  /** the object version an update must name (optimistic concurrency) */
  version: number;
  spec: ServiceSpec;
  previousSpec?: ServiceSpec;
  updateStatus?: UpdateStatus;
}

export interface SwarmTask {
  id: string;
  slot?: number;
  nodeId?: string;
  /** running, shutdown, … */
  desiredState: string;
  /** new, pending, assigned, accepted, preparing, starting, running, complete, failed, shutdown, rejected, orphaned, remove */
  state: string;
  message: string;
  err?: string;
  exitCode?: number;
  /** the image reference of the task's spec */
  image: string;
  containerId?: string;
  createdAt: string;
}

export interface Orchestrator {
  /** the manager endpoint */
  readonly endpoint: string;
  engine(): Promise<EngineInfo>;
  inspectService(name: string): Promise<SwarmService | undefined>;
  createService(spec: ServiceSpec, auth?: RegistryAuth): Promise<string>;
  updateService(id: string, version: number, spec: ServiceSpec, auth?: RegistryAuth): Promise<void>;
  listTasks(service: string): Promise<SwarmTask[]>;
  /**
   * The engine's recent health probes of a task's container, oldest first, if that container is on the manager's
   * own engine (the manager cannot see into other nodes' containers); [] otherwise or without a health check.
   */
  healthProbes(containerId: string): Promise<ProbeResult[]>;
}
