// Docker hosts in memory, for rollout decisions and deployments that are awkward or slow to stage on real engines:
// containers of a digest listed in `failing` report unhealthy with that probe output.
import type { TargetConnection } from '../../src/deploy/target-policy.js';
import type { ContainerCreate, ContainerState, DockerHost, EngineInfo, PortHolder, ProbeResult } from '../../src/engine/docker-host.js';
import type { Engines } from '../../src/engine/engines.js';
import type { EngineEvent, EngineEvents, EventFilters, EventListener } from '../../src/engine/engine-events.js';

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
    const c = this.containers.get(id)!;
    const was = c.running;
    Object.assign(c, { status: 'exited', running: false });
    if (was) this.announce(c, 'die');
  }
  async removeContainer(id: string): Promise<void> {
    const c = this.containers.get(id);
    this.containers.delete(id);
    if (c?.running) this.announce(c, 'die');
    if (c) this.announce(c, 'destroy');
  }
  /** the event streams open on this host, as the engine would filter them (type, label key, action) */
  readonly watchers = new Set<{ filters: EventFilters; listener: EventListener }>();
  private announce(c: ContainerState, action: string): void {
    const e: EngineEvent = { type: 'container', action, id: c.id, attributes: { ...c.labels, name: c.name }, time: Date.now() };
    for (const w of this.watchers) {
      const label = (w.filters.label ?? []).every((l) => (l.includes('=') ? e.attributes[l.slice(0, l.indexOf('='))] === l.slice(l.indexOf('=') + 1) : l in e.attributes));
      if (w.filters.type.includes('container') && label && (w.filters.event ?? [action]).includes(action)) w.listener.event(e);
    }
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
  /** the events of a memory host: its containers stopping and going away */
  events(target: TargetConnection): EngineEvents {
    const host = this.dockerHost(target);
    return {
      endpoint: target.endpoint,
      watch: (filters, listener) => {
        const w = { filters, listener };
        host.watchers.add(w);
        setImmediate(() => host.watchers.has(w) && listener.connected(false));
        return { close: () => void host.watchers.delete(w) };
      },
    };
  }
}
