// The management API (/api/v1): JSON over HTTP, explicit route registration, the same access check as
// the registry. Feature modules (auth, delivery, deploy) contribute routes; this file only dispatches, and
// writes the audit row of each call to a route that declares one.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Actor, AuditLog, AuditResult } from '../audit/audit-log.js';
import { RegistryError } from '../oci/errors.js';
import type { Action, Principal } from '../auth/access.js';
import type { RequestAccess } from './access.js';
import { readBody } from './request-body.js';
import { httpErrorOf, sendError } from './http-errors.js';

export interface ApiRequest {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** named groups of the route pattern, decoded */
  params: Record<string, string>;
  principal: Principal;
  /** for a failure found after the response has begun (a streamed deployment), which sendError can no longer log */
  log: Logger;
  /** who is calling and from where, for changes a service records itself (garbage collection) */
  actor: Actor;
  /** parses and validates the JSON body (400 with the offending field on failure) */
  body<T>(schema: z.ZodType<T>): Promise<T>;
  /**
   * Adds to the route's audit row (see ApiRoute.audit) what the call learned: its target, digests …;
   * `done` once the change is made, so that a later step failing (a deploy after a release) does not
   * record the change itself as failed.
   */
  audited(fields: { target?: string | null; detail?: Record<string, unknown>; done?: boolean }): void;
}

/** Where audit rows go, and who a request's caller is (after the access check). */
export interface ApiAudit {
  log: AuditLog;
  actorOf(req: IncomingMessage): Actor;
}

export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** e.g. /^\/api\/v1\/apps\/(?<app>.+)\/releases$/ */
  pattern: RegExp;
  /**
   * What the caller must be allowed: a repository-scoped check (repository from a param), a registry-wide
   * one, or a custom check made inside the handler (then `access` is 'handler').
   */
  access: { repositoryParam: string; actions: Action[] } | { actions: Action[] } | 'handler' | 'public';
  /** returns the JSON body (status 200), or undefined after writing the response itself */
  handle(r: ApiRequest): Promise<unknown>;
  status?: number;
  /** for the OpenAPI document (server/openapi.ts): one line, and the zod schemas of body, query and answer */
  summary?: string;
  request?: z.ZodType;
  query?: z.ZodType;
  response?: z.ZodType;
  /** the answer is a JSON array, its next page named by a `Link: <…?cursor=…>; rel="next"` header */
  linkPaged?: true;
  /**
   * A route that changes what the audit log answers for (tags, manifests, policies) names its row: every
   * call is one row, ok, denied (403) or failed, with the repository and target from these params or from
   * what the handler passes to `audited`. Calls refused for want of credentials (401) are not rows: clients
   * send those first as a matter of course.
   */
  audit?: { action: string; repositoryParam?: string; targetParam?: string; detail?: Record<string, unknown> };
}

const MAX_JSON = 1 << 20;

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const json = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(json) });
  res.end(json);
}

/** A call's audit row as it is gathered: declared by its route, completed by its handler. */
interface AuditRow {
  route: ApiRoute;
  params: Record<string, string>;
  target?: string | null;
  detail: Record<string, unknown>;
  done?: boolean;
}

/** The actor of a request when no audit log is wired (tests of single features): the principal, no address. */
const actorOfPrincipal = (principal: Principal): Actor => ({ name: principal.name ?? 'anonymous', kind: principal.kind, address: null });

function resultOf(err: unknown): { result: AuditResult; detail: Record<string, unknown> } | undefined {
  if (err === undefined) return { result: 'ok', detail: {} };
  const { status, known } = httpErrorOf(err);
  if (status === 401) return undefined;
  return { result: status === 403 ? 'denied' : 'failed', detail: { status, ...(known ? { error: known.code } : {}) } };
}

export function managementApi(routes: ApiRoute[], access: RequestAccess, log: Logger, audit?: ApiAudit) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    let row: AuditRow | undefined;
    let failure: unknown;
    let failed = false;
    let answer: { status: number; body: unknown } | undefined;
    try {
      let matched = false;
      let methodMismatch = false;
      for (const route of routes) {
        const m = route.pattern.exec(url.pathname);
        if (!m) continue;
        if (route.method !== req.method) {
          methodMismatch = true;
          continue;
        }
        const params: Record<string, string> = {};
        for (const [k, v] of Object.entries(m.groups ?? {})) if (v !== undefined) params[k] = decodeParam(k, v);
        const auditRow: AuditRow | undefined = route.audit ? (row = { route, params, detail: { ...route.audit.detail } }) : undefined;
        let principal: Principal;
        if (route.access === 'public') principal = { name: null, kind: 'anonymous' };
        else if (route.access === 'handler') principal = await access.authorize(req, undefined, []);
        else if ('repositoryParam' in route.access) principal = await access.authorize(req, params[route.access.repositoryParam], route.access.actions);
        else principal = await access.authorize(req, undefined, route.access.actions);
        const body = async <T>(schema: z.ZodType<T>): Promise<T> => {
          let raw: unknown;
          try {
            const buf = await readBody(req, MAX_JSON);
            raw = buf.length === 0 ? {} : JSON.parse(buf.toString('utf8'));
          } catch (e) {
            if (e instanceof RegistryError) throw e;
            throw new RegistryError('INVALID', 'request body is not valid JSON');
          }
          const parsed = schema.safeParse(raw);
          if (!parsed.success) {
            const issue = parsed.error.issues[0]!;
            throw new RegistryError('INVALID', `${issue.path.join('.') || 'body'}: ${issue.message}`);
          }
          return parsed.data;
        };
        const actor = audit ? audit.actorOf(req) : actorOfPrincipal(principal);
        const audited: ApiRequest['audited'] = (fields) => {
          if (!auditRow) return;
          if (fields.target !== undefined) auditRow.target = fields.target;
          if (fields.done) auditRow.done = true;
          Object.assign(auditRow.detail, fields.detail);
        };
        const result = await route.handle({ req, res, url, params, principal, log, actor, body, audited });
        if (!res.headersSent && result !== undefined) answer = { status: route.status ?? 200, body: result };
        matched = true;
        break;
      }
      if (!matched) {
        if (methodMismatch) throw new RegistryError('UNSUPPORTED', `method ${req.method} not allowed on ${url.pathname}`);
        throw new RegistryError('NOT_FOUND', `no route for ${req.method} ${url.pathname}`);
      }
    } catch (e) {
      failed = true;
      failure = e;
      if (!req.readableEnded) req.resume();
    }
    // The audit row is written before the answer goes out: a client that has its answer finds the row in the
    // log, and two calls made one after the other are recorded in that order (the log's ids are its order).
    if (row && audit) await record(audit, req, row, failure, log);
    if (failed) sendError(res, failure, log);
    else if (answer) sendJson(res, answer.status, answer.body);
  };
}

/** A path part as sent, percent-decoded; a malformed escape (`%zz`) is the client's mistake, answered before auth. */
function decodeParam(name: string, value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new RegistryError('INVALID', `${name}: malformed percent-encoding in the path`);
  }
}

/** Validates a route's query string with its schema once, at the boundary (400 naming the parameter). */
export function parseQuery<T>(url: URL, schema: z.ZodType<T>): T {
  const parsed = schema.safeParse(Object.fromEntries(url.searchParams));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RegistryError('INVALID', `query ${issue.path.join('.') || ''}: ${issue.message}`);
  }
  return parsed.data;
}

/** `limit` of a listing: a whole number within the page bound (`1e30`, `abc` and `-1` are refused). */
export const limitParam = (max: number) => z.coerce.number().int().min(1).max(max).optional();

function record(
  audit: ApiAudit,
  req: IncomingMessage,
  row: AuditRow,
  failure: unknown,
  log: Logger,
): Promise<void> {
  const outcome = resultOf(row.done ? undefined : failure);
  const declared = row.route.audit!;
  if (!outcome) return Promise.resolve();
  return audit.log
    .record({
      actor: audit.actorOf(req),
      action: declared.action,
      repository: declared.repositoryParam === undefined ? null : (row.params[declared.repositoryParam] ?? null),
      target: row.target !== undefined ? row.target : declared.targetParam === undefined ? null : (row.params[declared.targetParam] ?? null),
      result: outcome.result,
      detail: { ...row.detail, ...outcome.detail },
    })
    .catch((err) => log.error({ err }, 'audit write failed'));
}
