// Audit rows for registry changes: manifest pushes (and the tag moves they make), manifest, tag and blob
// deletes, and refused attempts at them. The registry's events say what changed (the digest a tag moved
// from); the finished HTTP response says who asked, from where, and how it ended. They are joined here.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { parseDigest } from '../oci/digest.js';
import type { RegistryEvents } from '../registry/registry.js';
import type { Actor, AuditEntry, AuditLog, AuditResult } from '../audit/audit-log.js';

const MANIFEST = /^\/v2\/(.+)\/manifests\/([^/]+)$/;
const BLOB = /^\/v2\/(.+)\/blobs\/([^/]+)$/;
const UPLOAD = /^\/v2\/(.+)\/blobs\/uploads\/?([^/]*)$/;
const MAX_PENDING = 1_000;

interface Pushed {
  digest: string;
  previous: string | null;
  mediaType: string;
}

export class RegistryAudit {
  private sink: { audit: AuditLog; actorOf: (req: IncomingMessage) => Actor; log: Logger } | undefined;
  /** pushes seen by the registry whose HTTP response has not finished yet, by repository and reference */
  private readonly pushed = new Map<string, Pushed>();

  /** Pass to openWharf, before the audit log can be opened. */
  readonly events: RegistryEvents = {
    manifestPushed: (e) => {
      if (this.pushed.size >= MAX_PENDING) this.pushed.delete(this.pushed.keys().next().value!);
      this.pushed.set(pendingKey(e.repository, e.tag ?? e.digest), { digest: e.digest, previous: e.previous, mediaType: e.mediaType });
    },
  };

  attach(audit: AuditLog, actorOf: (req: IncomingMessage) => Actor, log: Logger): void {
    this.sink = { audit, actorOf, log };
  }

  /** Called when a response has been sent; records the registry changes among them. */
  readonly observe = (req: IncomingMessage, res: ServerResponse): void => {
    if (!this.sink || req.method === 'GET' || req.method === 'HEAD') return;
    const path = new URL(req.url ?? '/', 'http://wharf.invalid').pathname;
    const entry = this.entryFor(req.method ?? '', path, res);
    if (!entry) return;
    const { audit, actorOf, log } = this.sink;
    audit.record({ ...entry, actor: actorOf(req) }).catch((err) => log.error({ err }, 'audit write failed'));
  };

  private entryFor(method: string, path: string, res: ServerResponse): Omit<AuditEntry, 'actor'> | undefined {
    const upload = UPLOAD.exec(path);
    if (upload) {
      // Blob uploads are too many to record one by one; a refused one is the trace of a refused push.
      if (res.statusCode !== 403) return undefined;
      return { action: 'blob.upload', repository: safeDecode(upload[1]!), target: null, result: 'denied', detail: { status: 403 } };
    }
    if (method !== 'PUT' && method !== 'DELETE') return undefined;
    const manifest = MANIFEST.exec(path);
    const blob = manifest ? null : BLOB.exec(path);
    const m = manifest ?? blob;
    // An unauthenticated first try (401: the client then logs in) is noise.
    if (!m || res.statusCode === 401) return undefined;
    const repository = safeDecode(m[1]!);
    const reference = safeDecode(m[2]!);
    const result: AuditResult = res.statusCode < 300 ? 'ok' : res.statusCode === 403 ? 'denied' : 'failed';
    const failure = result === 'ok' ? {} : { status: res.statusCode };
    const isDigest = parseDigest(reference) !== null;
    if (blob) return { action: 'blob.delete', repository, target: reference, result, detail: failure };
    if (method === 'DELETE') return { action: isDigest ? 'manifest.delete' : 'tag.delete', repository, target: reference, result, detail: failure };

    const key = pendingKey(repository, reference);
    const pushed = result === 'ok' ? this.pushed.get(key) : undefined;
    this.pushed.delete(key);
    const moved = !isDigest && pushed?.previous != null && pushed.previous !== pushed.digest;
    return {
      action: moved ? 'tag.move' : 'manifest.push',
      repository,
      target: reference,
      result,
      detail: pushed ? { digest: pushed.digest, mediaType: pushed.mediaType, previous: pushed.previous } : failure,
    };
  }
}

function pendingKey(repository: string, reference: string): string {
  return `${repository}\0${reference}`;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
