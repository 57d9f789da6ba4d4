// PipelineEngine over the Docker Engine API (dockerode), reached like the docker CLI reaches it: DOCKER_HOST
// (unix, tcp with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, ssh), else the local socket.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type Docker from 'dockerode';
import { EngineConnection, type ConnectionSpec } from './connection.js';
import type { BuildRequest, PipelineEngine, PushProgress, RegistryAuth, TestOutcome, TestRun } from './pipeline-engine.js';

/** Push statuses that mean a layer is in the registry. */
const LAYER_DONE = new Set(['Pushed', 'Layer already exists', 'Mounted from']);

/** How long a killed test container may take to report its exit. */
const KILL_GRACE_MS = 10_000;

interface ProgressMessage {
  stream?: string;
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  aux?: { ID?: string; Digest?: string; Tag?: string };
  error?: string;
  errorDetail?: { message?: string };
}

/** The engine the docker CLI would talk to in this environment. */
export function engineFromEnvironment(env: NodeJS.ProcessEnv = process.env): ConnectionSpec {
  const endpoint = env.DOCKER_HOST || 'unix:///var/run/docker.sock';
  if (!endpoint.startsWith('tcp://') || !env.DOCKER_TLS_VERIFY) return { endpoint };
  const certs = env.DOCKER_CERT_PATH || join(homedir(), '.docker');
  return { endpoint, tls: { ca: join(certs, 'ca.pem'), cert: join(certs, 'cert.pem'), key: join(certs, 'key.pem') } };
}

export class DockerPipelineEngine implements PipelineEngine {
  private readonly conn: EngineConnection;
  /** test containers that exist right now, so an interrupted run can still remove them */
  private readonly live = new Set<string>();

  constructor(spec: ConnectionSpec = engineFromEnvironment()) {
    this.conn = new EngineConnection(spec);
  }

  async build(req: BuildRequest, onLog: (line: string) => void): Promise<{ imageId: string }> {
    const docker = await this.conn.client();
    const stream = await docker.buildImage(req.context as unknown as NodeJS.ReadableStream, {
      t: req.tag,
      dockerfile: req.dockerfile,
      buildargs: req.args,
      target: req.target,
      networkmode: req.network,
      labels: req.labels,
      rm: true,
      forcerm: true,
    });
    const lines = lineWriter(onLog);
    await follow(docker, stream, (m) => {
      if (m.stream !== undefined) lines.write(m.stream);
    });
    lines.end();
    return { imageId: (await docker.getImage(req.tag).inspect()).Id };
  }

  async test(run: TestRun, onLog: (line: string) => void): Promise<TestOutcome> {
    const docker = await this.conn.client();
    const container = await docker.createContainer({
      Image: run.image,
      // The step's command is the whole argv: an ENTRYPOINT of the image must not wrap it.
      Entrypoint: [''],
      Cmd: run.command,
      Env: Object.entries(run.env).map(([k, v]) => `${k}=${v}`),
      Labels: run.labels,
      Tty: false,
      AttachStdout: true,
      AttachStderr: true,
      HostConfig: { NetworkMode: run.network },
    });
    this.live.add(container.id);
    try {
      const stream = await container.attach({ stream: true, stdout: true, stderr: true });
      const out = lineWriter(onLog);
      const err = lineWriter(onLog);
      docker.modem.demuxStream(stream, out, err);
      const ended = new Promise<void>((resolve) => {
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', () => resolve());
      });
      await container.start();
      // Asked only once started: for a container that has not started yet, `not-running` answers at once, with
      // 0 — a test that never ran would pass. (`next-exit` asked before the start races with a fast exit.)
      const exited = container.wait({ condition: 'not-running' }) as Promise<{ StatusCode: number }>;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), run.timeoutMs)));
      const first = await Promise.race([exited, timeout]);
      clearTimeout(timer);
      let outcome: TestOutcome;
      if (first === 'timeout') {
        await container.kill().catch(() => {});
        const after = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), KILL_GRACE_MS).unref())]);
        outcome = { exitCode: after?.StatusCode ?? 137, timedOut: true };
      } else {
        outcome = { exitCode: first.StatusCode, timedOut: false };
      }
      await Promise.race([ended, new Promise((r) => setTimeout(r, 2_000).unref())]);
      out.end();
      err.end();
      return outcome;
    } finally {
      await container.remove({ force: true, v: true }).catch(() => {});
      this.live.delete(container.id);
    }
  }

  async tag(image: string, repository: string, tag: string): Promise<void> {
    const docker = await this.conn.client();
    await docker.getImage(image).tag({ repo: repository, tag });
  }

  async push(repository: string, tag: string, auth: RegistryAuth | undefined, onProgress: (p: PushProgress) => void): Promise<{ digest: string }> {
    const docker = await this.conn.client();
    const stream = await docker.getImage(repository).push({ tag, ...(auth ? { authconfig: auth } : {}) });
    const layers = new Map<string, { current: number; total: number }>();
    let digest: string | undefined;
    await follow(docker, stream, (m) => {
      if (m.aux?.Digest) digest = m.aux.Digest;
      if (m.id === undefined) return;
      const d = m.progressDetail;
      const layer = layers.get(m.id);
      // The engine's byte counts can overshoot a layer's size; a finished layer reports no counts at all.
      if (d?.total) layers.set(m.id, { current: Math.min(d.current ?? 0, d.total), total: d.total });
      else if (layer && LAYER_DONE.has(m.status ?? '')) layer.current = layer.total;
      else return;
      const sum = { current: 0, total: 0 };
      for (const l of layers.values()) {
        sum.current += l.current;
        sum.total += l.total;
      }
      onProgress(sum);
    });
    if (!digest) throw new Error(`the engine did not report the digest of ${repository}:${tag}`);
    return { digest };
  }

  /** Removes the test containers of a run that is being interrupted. */
  async abort(): Promise<void> {
    const docker = await this.conn.client();
    await Promise.all([...this.live].map((id) => docker.getContainer(id).remove({ force: true, v: true }).catch(() => {})));
  }
}

/** Follows an engine progress stream; the engine reports failures inside a 200 stream as {"error": …}. */
async function follow(docker: Docker, stream: NodeJS.ReadableStream, onMessage: (m: ProgressMessage) => void): Promise<void> {
  let failure: string | undefined;
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(err) : resolve()),
      (m: ProgressMessage) => {
        if (m.error !== undefined || m.errorDetail !== undefined) failure ??= (m.errorDetail?.message ?? m.error ?? 'failed').trim();
        else onMessage(m);
      },
    ),
  );
  if (failure !== undefined) throw new Error(failure);
}

/** A sink that hands complete lines (without \r\n) to `onLine`, and the unterminated rest at the end. */
function lineWriter(onLine: (line: string) => void): Writable {
  let rest = '';
  return new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      rest += chunk.toString();
      const lines = rest.split('\n');
      rest = lines.pop()!;
      for (const l of lines) onLine(l.replace(/\r$/, ''));
      cb();
    },
    final(cb) {
      if (rest !== '') onLine(rest.replace(/\r$/, ''));
      rest = '';
      cb();
    },
  });
}
