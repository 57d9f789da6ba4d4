// An environment's reverse proxy on one Docker host: an nginx container (the image the target's registration names)
// on the host's network, listening on the app file's public port and forwarding to the replicas' ports. A switch
// puts the generated configuration into the container, tests it (`nginx -t`), reloads nginx and waits until the
// new workers serve and the old ones have finished their requests (the drain), as Kamal does with kamal-proxy.
import { setTimeout as sleep } from 'node:timers/promises';
import type { EnvironmentPlan } from '../app-file/plan.js';
import type { ContainerState, DockerHost } from '../engine/docker-host.js';
import type { ProxyRegistration } from './target-registration.js';
import { PROXY_CONFIG_PATH, proxyConfig } from './proxy-config.js';
import { errorText } from './deployment.js';

/** The labels of a proxy container: which environment it serves (not `wharf.app`: it is not a replica). */
export const PROXY_LABELS = { app: 'wharf.proxy.app', env: 'wharf.proxy.env' } as const;

const WORKER = 'nginx: worker process';
const POLL_MS = 50;
/** how long nginx may take to start, or to start its new workers after a reload */
const READY_TIMEOUT_MS = 15_000;
/** beyond the drain, for nginx to close the old workers' connections itself (worker_shutdown_timeout) */
const DRAIN_GRACE_MS = 2_000;
const COMMAND_TIMEOUT_MS = 15_000;
const LOG_LINES = 20;

export class ProxyFailure extends Error {}

export function proxyContainerName(plan: Pick<EnvironmentPlan, 'app' | 'environment'>): string {
  return `wharf-proxy-${plan.app.replaceAll('/', '_')}-${plan.environment}`;
}

export class HostProxy {
  constructor(
    private readonly host: DockerHost,
    private readonly registration: ProxyRegistration,
    private readonly plan: EnvironmentPlan & { proxy: NonNullable<EnvironmentPlan['proxy']> },
    private readonly say: (message: string) => void,
  ) {}

  /** The environment's proxy container on the host, running or not. */
  async container(): Promise<ContainerState | undefined> {
    const found = await this.host.listContainers({ labels: { [PROXY_LABELS.app]: this.plan.app, [PROXY_LABELS.env]: this.plan.environment }, all: true });
    return found[0];
  }

  /**
   * Points the proxy at `ports` (the replicas on this host). Resolves once nginx serves from them and the workers
   * of the previous configuration have finished their requests (or the drain ran out); throws ProxyFailure, with
   * nginx's words, when the configuration is refused or nginx does not take it, leaving the previous one serving.
   */
  async switchTo(ports: number[]): Promise<void> {
    const config = proxyConfig({ address: this.registration.address, port: this.plan.proxy.port, upstreams: ports, drainMs: this.plan.proxy.drain });
    let current = await this.container();
    // The reference it was created from (a list shows an image ID once the tag moved, e.g. after a pull of nginx:stable).
    const createdFrom = current && (await this.host.inspectContainer(current.id)).image;
    if (current !== undefined && createdFrom !== this.registration.image) {
      // The admin named another image: a new container (a short gap, said in the deployment's events).
      this.say(`replacing the proxy: it runs ${createdFrom}, the target's registration names ${this.registration.image}`);
      await this.host.removeContainer(current.id);
      current = undefined;
    }
    if (current === undefined) return this.create(config);
    await this.host.putFile(current.id, PROXY_CONFIG_PATH, config);
    if (!current.running) {
      await this.host.startContainer(current.id);
      await this.waitForWorker(current.id, new Set());
      return;
    }
    const test = await this.host.exec(current.id, ['nginx', '-t', '-q', '-c', PROXY_CONFIG_PATH], COMMAND_TIMEOUT_MS);
    if (test.exitCode !== 0) throw new ProxyFailure(`nginx -t refused the proxy configuration: ${test.output.trim()}`);
    const before = await this.workers(current.id);
    const reload = await this.host.exec(current.id, ['nginx', '-s', 'reload', '-c', PROXY_CONFIG_PATH], COMMAND_TIMEOUT_MS);
    if (reload.exitCode !== 0) throw new ProxyFailure(`nginx -s reload failed: ${reload.output.trim()}`);
    await this.waitForWorker(current.id, before);
    this.say(`proxy on :${this.plan.proxy.port} now forwards to port(s) ${ports.join(', ')}`);
    await this.drain(current.id, before);
  }

  private async create(config: string): Promise<void> {
    const image = this.registration.image;
    if (!(await this.host.hasImage(image))) {
      this.say(`pulling the proxy image ${image}`);
      await this.host.pull(image);
    }
    const id = await this.host.createContainer({
      name: proxyContainerName(this.plan),
      image,
      command: ['nginx', '-c', PROXY_CONFIG_PATH, '-g', 'daemon off;'],
      env: [],
      labels: { [PROXY_LABELS.app]: this.plan.app, [PROXY_LABELS.env]: this.plan.environment },
      network: 'host',
      mounts: [],
    });
    try {
      await this.host.putFile(id, PROXY_CONFIG_PATH, config);
      await this.host.startContainer(id);
      await this.waitForWorker(id, new Set());
      await this.host.keepRunning(id);
    } catch (e) {
      // A proxy that never served is not left behind to confuse the next deployment.
      await this.host.removeContainer(id).catch(() => undefined);
      throw e;
    }
    this.say(`proxy started on ${this.registration.address}:${this.plan.proxy.port} (${image})`);
  }

  private async workers(id: string): Promise<Set<number>> {
    return new Set((await this.host.processes(id)).filter((p) => p.command.startsWith(WORKER)).map((p) => p.pid));
  }

  /** Until a worker that is not among `before` serves: the (new) configuration is live. */
  private async waitForWorker(id: string, before: Set<number>): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      const state = await this.host.inspectContainer(id);
      if (!state.running) throw new ProxyFailure(`the proxy exited with code ${state.exitCode}: ${(await this.host.logs(id, LOG_LINES).catch(() => '')).trim()}`);
      const fresh = (await this.host.processes(id)).some((p) => p.command === WORKER && !before.has(p.pid));
      if (fresh) return;
      if (Date.now() > deadline) {
        const logs = await this.host.logs(id, LOG_LINES).catch((e) => errorText(e));
        throw new ProxyFailure(`nginx did not start workers with the new configuration within ${READY_TIMEOUT_MS / 1000} s: ${logs.trim()}`);
      }
      await sleep(POLL_MS);
    }
  }

  /** The old workers exit once their requests are done; nginx closes what is left after the drain. */
  private async drain(id: string, old: Set<number>): Promise<void> {
    const started = Date.now();
    const deadline = started + this.plan.proxy.drain + DRAIN_GRACE_MS;
    for (;;) {
      const left = [...(await this.workers(id))].filter((pid) => old.has(pid));
      if (left.length === 0) {
        this.say(`drained in ${Date.now() - started} ms`);
        return;
      }
      if (Date.now() > deadline) {
        this.say(`drain over after ${Date.now() - started} ms with ${left.length} old worker(s) left`);
        return;
      }
      await sleep(POLL_MS);
    }
  }
}
