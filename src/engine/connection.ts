// A connection to one Docker Engine (unix socket, tcp with TLS client certificates, or ssh), with the Engine
// API version negotiated once: the lower of what Wharf speaks and what the engine speaks, so that old engines
// (dockerd 20.10, API 1.41) and new ones both work.
import { readFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import { parseEndpoint } from './endpoint.js';
import type { EngineInfo } from './docker-host.js';

/** The newest Engine API Wharf is written against. */
export const WHARF_API_VERSION = '1.47';
/** The oldest Engine API whose container, health check and Swarm fields Wharf relies on (Docker 19.03). */
export const MIN_API_VERSION = '1.40';

const PING_TIMEOUT_MS = 10_000;

export interface ConnectionSpec {
  endpoint: string;
  tls?: { ca: string; cert: string; key: string };
  identityFile?: string;
}

/** "1.41" vs "1.47" → -1 */
export function compareApiVersions(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('.').map(Number);
  const [bm = 0, bn = 0] = b.split('.').map(Number);
  return am - bm || an - bn;
}

/** The version to speak: the lower of ours and the engine's; refused if below what either side supports. */
export function negotiateApiVersion(engine: { ApiVersion: string; MinAPIVersion?: string }, ours = WHARF_API_VERSION): string {
  const chosen = compareApiVersions(engine.ApiVersion, ours) < 0 ? engine.ApiVersion : ours;
  if (compareApiVersions(chosen, MIN_API_VERSION) < 0) {
    throw new Error(`engine speaks Docker API ${engine.ApiVersion}; Wharf needs at least ${MIN_API_VERSION} (Docker 19.03)`);
  }
  if (engine.MinAPIVersion !== undefined && compareApiVersions(chosen, engine.MinAPIVersion) < 0) {
    throw new Error(`engine needs Docker API ${engine.MinAPIVersion} or newer; Wharf speaks up to ${ours}`);
  }
  return chosen;
}

/** dockerode options for an endpoint, reading the TLS files (their contents never leave this process). */
export async function dockerodeOptions(spec: ConnectionSpec): Promise<Docker.DockerOptions> {
  const e = parseEndpoint(spec.endpoint);
  switch (e.scheme) {
    case 'unix':
      return { socketPath: e.socketPath };
    case 'tcp': {
      if (spec.tls === undefined) return { protocol: 'http', host: e.host, port: e.port };
      const [ca, cert, key] = await Promise.all([spec.tls.ca, spec.tls.cert, spec.tls.key].map((p) => readFile(p)));
      return { protocol: 'https', host: e.host, port: e.port, ca, cert, key };
    }
    case 'ssh':
      return {
        protocol: 'ssh',
        host: e.host,
        port: e.port,
        username: e.user,
        sshOptions: spec.identityFile !== undefined ? { privateKey: await readFile(spec.identityFile) } : { agent: process.env.SSH_AUTH_SOCK },
      };
  }
}

/** Lazily connects and negotiates; a failed attempt is forgotten, so the next call tries again. */
export class EngineConnection {
  private connecting?: Promise<{ docker: Docker; info: EngineInfo }>;

  constructor(
    readonly spec: ConnectionSpec,
    private readonly clientVersion = WHARF_API_VERSION,
  ) {}

  get endpoint(): string {
    return this.spec.endpoint;
  }

  async client(): Promise<Docker> {
    return (await this.connect()).docker;
  }

  /** The negotiated version; the engine is pinged every time, so a host that went away is noticed. */
  async check(): Promise<EngineInfo> {
    const { docker, info } = await this.connect();
    await withTimeout(docker.ping(), PING_TIMEOUT_MS, `${this.endpoint}: no answer within ${PING_TIMEOUT_MS / 1000}s`);
    return info;
  }

  private connect(): Promise<{ docker: Docker; info: EngineInfo }> {
    if (this.connecting === undefined) {
      this.connecting = this.negotiate();
      this.connecting.catch(() => (this.connecting = undefined));
    }
    return this.connecting;
  }

  private async negotiate(): Promise<{ docker: Docker; info: EngineInfo }> {
    const options = await dockerodeOptions(this.spec);
    // Loaded on first use: dockerode and its ssh/protobuf dependencies are about 25 MiB of a registry's resident
    // memory, and a hub that deploys nothing never needs them.
    const { default: Docker } = await import('dockerode');
    // Unversioned paths reach the engine's own newest API, which always answers /version.
    const version = await withTimeout(new Docker(options).version(), PING_TIMEOUT_MS, `${this.endpoint}: no answer within ${PING_TIMEOUT_MS / 1000}s`);
    const apiVersion = negotiateApiVersion(version as { ApiVersion: string; MinAPIVersion?: string }, this.clientVersion);
    return { docker: new Docker({ ...options, version: `v${apiVersion}` }), info: { apiVersion, engineVersion: version.Version } };
  }
}

export async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** What both engine adapters (Docker host, Swarm manager) share: a connection, its endpoint and the reachability check. */
export abstract class EngineClient {
  protected readonly conn: EngineConnection;

  constructor(spec: ConnectionSpec, clientVersion?: string) {
    this.conn = new EngineConnection(spec, clientVersion);
  }

  get endpoint(): string {
    return this.conn.endpoint;
  }

  engine(): Promise<EngineInfo> {
    return this.conn.check();
  }
}
