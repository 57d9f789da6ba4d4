// DockerHost over the Docker Engine API (dockerode), for one engine.
import type Docker from 'dockerode';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { EngineClient, withTimeout } from './connection.js';
import type { ContainerCreate, ContainerProcess, ContainerState, DockerHost, HealthStatus, HeldPort, PortHolder, ProbeResult, RegistryAuth } from './docker-host.js';

/** Health output and logs end up in deployment records: keep the tail, where the error usually is. */
const MAX_OUTPUT_CHARS = 4_000;
/** A container's event stream that takes longer than this to open is not waited for: its watcher polls instead. */
const WATCH_OPEN_TIMEOUT_MS = 5_000;

export class DockerodeHost extends EngineClient implements DockerHost {
  async pull(image: string, auth?: RegistryAuth): Promise<void> {
    const docker = await this.conn.client();
    const at = image.lastIndexOf('@');
    const [fromImage, tag] = at > 0 ? [image.slice(0, at), image.slice(at + 1)] : [image, undefined];
    const stream = await docker.createImage(auth ?? {}, tag === undefined ? { fromImage } : { fromImage, tag });
    const messages = await new Promise<{ error?: string; errorDetail?: { message?: string } }[]>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null, out: any[]) => (err ? reject(err) : resolve(out))),
    );
    // The engine reports a failed pull inside a 200 stream, as a final {"error": …} message.
    const failed = messages.find((m) => m.error !== undefined || m.errorDetail !== undefined);
    if (failed) throw new Error(failed.errorDetail?.message ?? failed.error ?? 'pull failed');
  }

  async imageRepoDigests(image: string): Promise<string[]> {
    const docker = await this.conn.client();
    try {
      return (await docker.getImage(image).inspect()).RepoDigests ?? [];
    } catch (e) {
      if (statusOf(e) === 404) return [];
      throw e;
    }
  }

  async createContainer(spec: ContainerCreate): Promise<string> {
    const docker = await this.conn.client();
    const container = await docker.createContainer({
      name: spec.name,
      Image: spec.image,
      Cmd: spec.command,
      Env: spec.env,
      Labels: spec.labels,
      StopTimeout: spec.stopTimeoutSec,
      Healthcheck: spec.healthcheck,
      HostConfig: {
        NetworkMode: spec.network,
        Mounts: spec.mounts.map((m) => ({ Type: m.source.startsWith('/') ? 'bind' : 'volume', Source: m.source, Target: m.target, ReadOnly: m.readOnly })),
        Privileged: spec.privileged ?? false,
        CapAdd: spec.capAdd,
        PidMode: spec.pid,
        IpcMode: spec.ipc,
        Devices: spec.devices?.map((d) => {
          const [host, container = host, permissions = 'rwm'] = d.split(':');
          return { PathOnHost: host!, PathInContainer: container!, CgroupPermissions: permissions };
        }),
      },
    });
    return container.id;
  }

  async startContainer(id: string): Promise<void> {
    await ignoreStatus((await this.conn.client()).getContainer(id).start(), 304);
  }

  async keepRunning(id: string): Promise<void> {
    await (await this.conn.client()).getContainer(id).update({ RestartPolicy: { Name: 'unless-stopped' } });
  }

  async stopContainer(id: string, timeoutSec?: number): Promise<void> {
    await ignoreStatus((await this.conn.client()).getContainer(id).stop(timeoutSec === undefined ? {} : { t: timeoutSec }), 304, 404);
  }

  async removeContainer(id: string): Promise<void> {
    await ignoreStatus((await this.conn.client()).getContainer(id).remove({ force: true, v: true }), 404);
  }

  async inspectContainer(id: string): Promise<ContainerState> {
    const c = await (await this.conn.client()).getContainer(id).inspect();
    const health = c.State.Health;
    return {
      id: c.Id,
      name: c.Name.replace(/^\//, ''),
      image: c.Config.Image,
      imageId: c.Image,
      labels: c.Config.Labels ?? {},
      status: c.State.Status,
      running: c.State.Running && !c.State.Restarting,
      health: health && health.Status !== 'none' ? (health.Status as HealthStatus) : undefined,
      healthLog: health?.Log?.map((l) => ({ exitCode: l.ExitCode, output: tail(l.Output) })),
      exitCode: c.State.ExitCode,
      restartCount: c.RestartCount,
    };
  }

  async watchContainer(id: string, changed: () => void): Promise<{ close(): void }> {
    const docker = await this.conn.client();
    const abort = new AbortController();
    // health_status matches every `health_status: …` (the engine's prefix rule for it); a probe's own exec events
    // (several a second) are left out, they change nothing the waiter looks at.
    const query = { filters: { type: ['container'], container: [id], event: ['health_status', 'die', 'stop', 'kill', 'oom', 'destroy', 'restart', 'start'] }, abortSignal: abort.signal };
    // The engine answers the request at once, so that nothing that happens after this resolves is missed.
    const opened = docker.getEvents(query as never) as unknown as Promise<Readable>;
    const stream = await withTimeout(opened, WATCH_OPEN_TIMEOUT_MS, `${this.endpoint}: the event stream did not open within ${WATCH_OPEN_TIMEOUT_MS} ms`).catch((e) => {
      abort.abort();
      throw e;
    });
    // Which event it was does not matter: the waiter inspects the container.
    stream.on('data', () => changed());
    stream.on('error', () => undefined);
    return {
      close: () => {
        abort.abort();
        stream.destroy();
      },
    };
  }

  async listContainers(opts: { labels?: Record<string, string>; all?: boolean }): Promise<ContainerState[]> {
    const label = Object.entries(opts.labels ?? {}).map(([k, v]) => `${k}=${v}`);
    const list = await (await this.conn.client()).listContainers({ all: opts.all ?? false, filters: label.length ? { label } : {} });
    return list.map(listedState);
  }

  async portHolders(): Promise<PortHolder[]> {
    const docker = await this.conn.client();
    const list = await docker.listContainers({ all: false });
    return Promise.all(
      list.map(async (c) => {
        const ports: HeldPort[] = (c.Ports ?? []).filter((p) => p.PublicPort).map((p) => ({ port: p.PublicPort, protocol: p.Type === 'udp' ? 'udp' : 'tcp', how: 'published' }));
        // On the host's network nothing is published: what the container says it listens on is all there is.
        if (c.HostConfig?.NetworkMode === 'host') {
          const config = await docker.getContainer(c.Id).inspect().then((i) => i.Config, () => undefined);
          for (const key of Object.keys(config?.ExposedPorts ?? {})) {
            const [port, protocol] = key.split('/');
            ports.push({ port: Number(port), protocol: protocol === 'udp' ? 'udp' : 'tcp', how: 'declared' });
          }
          const env = config?.Env?.find((e) => /^PORT=\d{1,5}$/.test(e));
          if (env !== undefined) ports.push({ port: Number(env.slice(5)), protocol: 'tcp', how: 'declared' });
        }
        const unique = ports.filter((p, i) => ports.findIndex((q) => q.port === p.port && q.protocol === p.protocol) === i);
        return {
          container: listedState(c),
          ports: unique,
        };
      }),
    );
  }

  async exec(id: string, command: string[], timeoutMs: number): Promise<ProbeResult> {
    const docker = await this.conn.client();
    const exec = await docker.getContainer(id).exec({ Cmd: command, AttachStdout: true, AttachStderr: true });
    const stream = await exec.start({ hijack: true, stdin: false });
    const chunks: Buffer[] = [];
    const sink = { write: (b: Buffer) => chunks.push(b) } as unknown as NodeJS.WritableStream;
    docker.modem.demuxStream(stream, sink, sink);
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', reject);
    });
    try {
      await withTimeout(ended, timeoutMs, `timed out after ${timeoutMs} ms`);
    } catch (e) {
      stream.destroy();
      return { exitCode: -1, output: `${(e as Error).message}\n${tail(Buffer.concat(chunks).toString('utf8'))}` };
    }
    const info = await exec.inspect();
    return { exitCode: info.ExitCode ?? -1, output: tail(Buffer.concat(chunks).toString('utf8')) };
  }

  async hasImage(image: string): Promise<boolean> {
    try {
      await (await this.conn.client()).getImage(image).inspect();
      return true;
    } catch (e) {
      if (statusOf(e) === 404) return false;
      throw e;
    }
  }

  async putFile(id: string, path: string, content: string): Promise<void> {
    const pack = tar.pack();
    pack.entry({ name: posix.basename(path), mode: 0o644, uid: 0, gid: 0, mtime: new Date() }, content);
    pack.finalize();
    const archive = await streamToBuffer(pack);
    await (await this.conn.client()).getContainer(id).putArchive(archive, { path: posix.dirname(path) });
  }

  async processes(id: string): Promise<ContainerProcess[]> {
    const top = (await (await this.conn.client()).getContainer(id).top({ ps_args: '-o pid,args' })) as { Titles: string[]; Processes: string[][] };
    const pid = top.Titles.indexOf('PID');
    const command = top.Titles.findIndex((t) => t === 'COMMAND' || t === 'CMD');
    return top.Processes.map((p) => ({ pid: Number(p[pid]), command: p[command] ?? '' }));
  }

  async logs(id: string, lines: number): Promise<string> {
    const raw = (await (await this.conn.client()).getContainer(id).logs({ stdout: true, stderr: true, tail: lines, follow: false })) as unknown as Buffer;
    return tail(demux(raw));
  }
}

async function streamToBuffer(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function listedState(c: Docker.ContainerInfo): ContainerState {
  return {
    id: c.Id,
    name: (c.Names[0] ?? '').replace(/^\//, ''),
    image: c.Image,
    imageId: c.ImageID,
    labels: c.Labels ?? {},
    status: c.State,
    running: c.State === 'running',
    health: healthFromStatus(c.Status),
  };
}

/** Splits a non-TTY log buffer (8-byte frame headers) into its text; plain text passes through. */
function demux(buf: Buffer): string {
  const parts: Buffer[] = [];
  let at = 0;
  while (at + 8 <= buf.length && buf[at]! <= 2 && buf[at + 1] === 0 && buf[at + 2] === 0 && buf[at + 3] === 0) {
    const size = buf.readUInt32BE(at + 4);
    parts.push(buf.subarray(at + 8, at + 8 + size));
    at += 8 + size;
  }
  return at === 0 ? buf.toString('utf8') : Buffer.concat(parts).toString('utf8');
}

/** "Up 5 seconds (healthy)", "(unhealthy)", "(health: starting)" → the health status. */
function healthFromStatus(status: string): HealthStatus | undefined {
  if (status.includes('(healthy)')) return 'healthy';
  if (status.includes('(unhealthy)')) return 'unhealthy';
  if (status.includes('(health: starting)')) return 'starting';
  return undefined;
}

function tail(text: string): string {
  return text.length <= MAX_OUTPUT_CHARS ? text : `…${text.slice(-MAX_OUTPUT_CHARS)}`;
}

function statusOf(e: unknown): number | undefined {
  return (e as { statusCode?: number }).statusCode;
}

async function ignoreStatus(p: Promise<unknown>, ...codes: number[]): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!codes.includes(statusOf(e) ?? 0)) throw e;
  }
}

