// Orchestrator over a Swarm manager's Engine API (dockerode).
import { EngineClient } from './connection.js';
import type { ProbeResult, RegistryAuth } from './docker-host.js';
import type { Orchestrator, ServiceSpec, SwarmService, SwarmTask, UpdateState } from './orchestrator.js';

export class SwarmOrchestrator extends EngineClient implements Orchestrator {
  async inspectService(name: string): Promise<SwarmService | undefined> {
    const docker = await this.conn.client();
    let s: any;
    try {
      s = await docker.getService(name).inspect();
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return undefined;
      throw e;
    }
    return {
      id: s.ID,
      version: s.Version.Index,
      spec: s.Spec,
      previousSpec: s.PreviousSpec,
      updateStatus: s.UpdateStatus && {
        state: s.UpdateStatus.State as UpdateState,
        startedAt: s.UpdateStatus.StartedAt,
        completedAt: s.UpdateStatus.CompletedAt,
        message: s.UpdateStatus.Message,
      },
    };
  }

  async createService(spec: ServiceSpec, auth?: RegistryAuth): Promise<string> {
    const docker = await this.conn.client();
    const client = docker as unknown as { createService(auth: unknown, spec: unknown): Promise<{ id: string }> };
    const service = await client.createService(auth, spec);
    return service.id;
  }

  async updateService(id: string, version: number, spec: ServiceSpec, auth?: RegistryAuth): Promise<void> {
    const docker = await this.conn.client();
    // _query/_body keep the spec out of the query string (dockerode would otherwise put it in both).
    const service = docker.getService(id) as unknown as { update(auth: unknown, opts: unknown): Promise<unknown> };
    await service.update(auth, { _query: { version }, _body: spec });
  }

  async healthProbes(containerId: string): Promise<ProbeResult[]> {
    const docker = await this.conn.client();
    try {
      const log = (await docker.getContainer(containerId).inspect()).State.Health?.Log ?? [];
      return log.map((l) => ({ exitCode: l.ExitCode, output: l.Output.trim() }));
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return [];
      throw e;
    }
  }

  async listTasks(service: string): Promise<SwarmTask[]> {
    const docker = await this.conn.client();
    const tasks: any[] = await docker.listTasks({ filters: { service: [service] } });
    return tasks.map((t) => ({
      id: t.ID,
      slot: t.Slot,
      nodeId: t.NodeID,
      desiredState: t.DesiredState,
      state: t.Status?.State ?? 'unknown',
      message: t.Status?.Message ?? '',
      err: t.Status?.Err,
      exitCode: t.Status?.ContainerStatus?.ExitCode,
      image: t.Spec?.ContainerSpec?.Image ?? '',
      containerId: t.Status?.ContainerStatus?.ContainerID,
      createdAt: t.CreatedAt,
    }));
  }
}
