// Docker hosts in memory, for rollout decisions and deployments that are awkward or slow to stage on real engines:
// containers of a digest listed in `failing` report unhealthy with that probe output.
import type { TargetConnection } from '../../src/deploy/target-policy.js';
import type { ContainerCreate, ContainerState, DockerHost, EngineInfo, PortHolder, ProbeResult } from '../../src/engine/docker-host.js';
import type { Engines } from '../../src/engine/engines.js';

/** An engine in memory: containers of a digest listed in `failing` report unhealthy with that probe output. */
export class MemoryHost implements DockerHost {
  containers = new Map<string, ContainerState & { env: string[] }>();
  private seq = 0;
  constructor(
    readonly endpoint: string,
    private readonly failing: Map<string, string> = new Map(),
  ) {}
  async engine(): Promise<EngineInfo> {
    return { apiVersion: '1.41', engineVersion: 'memory' };
  }
  /** awaited by every pull: a test holds a deployment here to act while it runs */
  onPull?: () => Promise<void>;
  async pull(): Promise<void> {
    await this.onPull?.();
  }
  async imageRepoDigests(): Promise<string[]> {
    return [];
  }
  async createContainer(spec: ContainerCreate): Promise<string> {
    const id = `${this.endpoint}-${++this.seq}`;
    this.containers.set(id, { id, name: spec.name, image: spec.image, imageId: '', labels: spec.labels, status: 'created', running: false, env: spec.env });
    return id;
  }
  async startContainer(id: string): Promise<void> {
    const c = this.containers.get(id)!;
    const failure = this.failing.get(c.labels['wharf.digest']!);
    Object.assign(c, { status: 'running', running: true, health: failure === undefined ? 'healthy' : 'unhealthy', healthLog: failure === undefined ? [] : [{ exitCode: 1, output: failure }] });
  }
  async keepRunning(): Promise<void> {}
  async stopContainer(id: string): Promise<void> {
    Object.assign(this.containers.get(id)!, { status: 'exited', running: false });
  }
  async removeContainer(id: string): Promise<void> {
    this.containers.delete(id);
  }
  async inspectContainer(id: string): Promise<ContainerState> {
    return { ...this.containers.get(id)! };
  }
  async listContainers(opts: { labels?: Record<string, string>; all?: boolean }): Promise<ContainerState[]> {
    // Copies, as an engine's answer is: what a rollout listed must not change when the containers do.
    return [...this.containers.values()].filter((c) => (opts.all || c.running) && Object.entries(opts.labels ?? {}).every(([k, v]) => c.labels[k] === v)).map((c) => ({ ...c }));
  }
  /** containers started outside Wharf, with the host ports they hold (a test puts them here) */
  others: PortHolder[] = [];
  async portHolders(): Promise<PortHolder[]> {
    const own = [...this.containers.values()].filter((c) => c.running).map((c) => ({ container: { ...c }, ports: [] }));
    return [...own, ...this.others];
  }
  async exec(): Promise<ProbeResult> {
    return { exitCode: 0, output: '' };
  }
  async logs(): Promise<string> {
    return '';
  }
  // No reverse proxy in memory: proxy switches are tested on real engines (test/e2e/deploy-proxy.test.ts).
  async hasImage(): Promise<boolean> {
    return false;
  }
  async putFile(): Promise<void> {
    throw new Error('no files in memory containers');
  }
  async processes(): Promise<never[]> {
    return [];
  }
  /** digests of running containers */
  running(): string[] {
    return [...this.containers.values()].filter((c) => c.running).map((c) => c.labels['wharf.digest']!);
  }
}

/** Engines over memory hosts, one per endpoint, made on first use (no Swarm). */
export class MemoryEngines implements Engines {
  readonly hosts = new Map<string, MemoryHost>();
  /** digest → probe output of its failing health check, for every host */
  readonly failing = new Map<string, string>();
  dockerHost(target: TargetConnection): MemoryHost {
    let host = this.hosts.get(target.endpoint);
    if (!host) this.hosts.set(target.endpoint, (host = new MemoryHost(target.endpoint, this.failing)));
    return host;
  }
  orchestrator(): never {
    throw new Error('no Swarm in memory');
  }
  events(): never {
    throw new Error('no engine events in memory');
  }
}
