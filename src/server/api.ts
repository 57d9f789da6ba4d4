// The management API (/api/v1): JSON over HTTP, explicit route registration, the same access check as
// the registry. Feature modules (auth, delivery, deploy) contribute routes; this file only dispatches.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { RegistryError } from '../oci/errors.js';
import type { AccessCheck, Action, Principal } from './access.js';
import { readBody } from './request-body.js';
import { sendError } from './http-errors.js';

export interface ApiRequest {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** named groups of the route pattern, decoded */
  params: Record<string, string>;
  principal: Principal;
  /** parses and validates the JSON body (400 with the offending field on failure) */
  body<T>(schema: z.ZodType<T>): Promise<T>;
}

export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** e.g. /^\/api\/v1\/apps\/(?<app>.+)\/releases$/ */
  pattern: RegExp;
  /**
   * What the caller must be allowed: a repository-scoped check (repository from a param), a registry-wide
   * one, or a custom check made inside the handler (then `access` is 'handler').
   */
  access: { repositoryParam: string; actions: Action[] } | { actions: Action[] } | 'handler';
  /** returns the JSON body (status 200), or undefined after writing the response itself */
  handle(r: ApiRequest): Promise<unknown>;
  status?: number;
}

const MAX_JSON = 1 << 20;

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const json = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(json) });
  res.end(json);
}

export function managementApi(routes: ApiRoute[], access: AccessCheck, log: Logger) {
  return async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    try {
      let methodMismatch = false;
      for (const route of routes) {
        const m = route.pattern.exec(url.pathname);
        if (!m) continue;
        if (route.method !== req.method) {
          methodMismatch = true;
          continue;
        }
        const params: Record<string, string> = {};
        for (const [k, v] of Object.entries(m.groups ?? {})) if (v !== undefined) params[k] = decodeURIComponent(v);
        let principal: Principal;
        if (route.access === 'handler') principal = await access.authorize(req, undefined, []);
        else if ('repositoryParam' in route.access) principal = await access.authorize(req, params[route.access.repositoryParam], route.access.actions);
        else principal = await access.authorize(req, undefined, route.access.actions);
        const body = async <T>(schema: z.ZodType<T>): Promise<T> => {
          let raw: unknown;
          try {
            const buf = await readBody(req, MAX_JSON);
            raw = buf.length === 0 ? {} : JSON.parse(buf.toString('utf8'));
          } catch (e) {
            if (e instanceof RegistryError) throw e;
            throw new RegistryError('UNSUPPORTED', 'request body is not valid JSON', undefined, 400);
          }
          const parsed = schema.safeParse(raw);
          if (!parsed.success) {
            const issue = parsed.error.issues[0]!;
            throw new RegistryError('UNSUPPORTED', `${issue.path.join('.') || 'body'}: ${issue.message}`, undefined, 400);
          }
          return parsed.data;
        };
        const result = await route.handle({ req, res, url, params, principal, body });
        if (!res.headersSent && result !== undefined) sendJson(res, route.status ?? 200, result);
        return;
      }
      if (methodMismatch) throw new RegistryError('UNSUPPORTED', `method ${req.method} not allowed on ${url.pathname}`);
      throw new RegistryError('NOT_FOUND', `no route for ${req.method} ${url.pathname}`);
    } catch (e) {
      if (!req.readableEnded) req.resume();
      sendError(res, e, log);
    }
  };
}
