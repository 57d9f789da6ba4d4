// The OpenAPI 3.1 document of the management API, served at /api/v1/openapi.json: generated from the route
// table itself and the zod schemas that validate each route's body and query, so it cannot drift from them.
import { z } from 'zod';
import type { ApiRoute } from './api.js';

const ErrorBody = z.object({
  errors: z.array(z.object({ code: z.string(), message: z.string(), detail: z.unknown() })),
});

/**
 * `^\/api\/v1\/apps\/(?<app>…)\/releases$` → `/api/v1/apps/{app}/releases`. A named group made of named groups
 * (`(?<slot>(?<environment>…)/(?<name>…))`) stands for its parts.
 */
export function pathOf(pattern: RegExp): string {
  return pathPart(pattern.source.replace(/^\^/, '').replace(/\$$/, ''));
}

function pathPart(src: string): string {
  let out = '';
  for (let i = 0; i < src.length; i++) {
    if (src.startsWith('(?<', i)) {
      const end = src.indexOf('>', i);
      const name = src.slice(i + 3, end);
      // Walk to the group's closing paren (groups nest: repository names, slots).
      let depth = 0;
      let j = i;
      for (; j < src.length; j++) {
        if (src[j] === '\\') {
          j++;
          continue;
        }
        if (src[j] === '(') depth++;
        else if (src[j] === ')' && --depth === 0) break;
      }
      const inner = src.slice(end + 1, j);
      out += inner.includes('(?<') ? pathPart(inner) : `{${name}}`;
      i = j;
    } else if (src[i] === '\\') {
      out += src[i + 1];
      i++;
    } else out += src[i];
  }
  return out;
}

const schema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' });

const LINK_NEXT = {
  description: 'RFC 8288 `<…?cursor=…>; rel="next"`: the next page of this list (absent on the last page)',
  schema: { type: 'string' },
};

export function openApiDocument(routes: ApiRoute[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = pathOf(route.pattern);
    const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const query = route.query
      ? Object.entries((schema(route.query) as { properties?: Record<string, Record<string, unknown>>; required?: string[] }).properties ?? {}).map(([name, s]) => ({
          name,
          in: 'query',
          required: ((schema(route.query!) as { required?: string[] }).required ?? []).includes(name),
          ...(typeof s.description === 'string' ? { description: s.description } : {}),
          schema: s,
        }))
      : [];
    const status = String(route.status ?? 200);
    const access = route.access === 'public' ? 'none' : route.access === 'handler' ? 'checked by the handler' : route.access.actions.join(', ') || 'signed in';
    paths[path] ??= {};
    paths[path][route.method.toLowerCase()] = {
      summary: route.summary ?? `${route.method} ${path}`,
      description: `Requires: ${access}.`,
      ...(params.length + query.length > 0 ? { parameters: [...params, ...query] } : {}),
      ...(route.request ? { requestBody: { required: true, content: { 'application/json': { schema: schema(route.request) } } } } : {}),
      responses: {
        [status]: status === '204' ? { description: 'done' } : { description: 'ok', ...(route.linkPaged ? { headers: { Link: LINK_NEXT } } : {}), ...(route.response ? { content: { 'application/json': { schema: z.toJSONSchema(route.response, { io: 'output', unrepresentable: 'any' }) } } } : {}) },
        default: { description: 'error', content: { 'application/json': { schema: schema(ErrorBody) } } },
      },
      security: route.access === 'public' ? [] : [{ basic: [] }, { bearer: [] }, { session: [] }],
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Wharf management API', version: '1' },
    paths,
    components: {
      securitySchemes: {
        basic: { type: 'http', scheme: 'basic' },
        bearer: { type: 'http', scheme: 'bearer' },
        session: { type: 'apiKey', in: 'cookie', name: 'wharf_session', description: 'browser session (POST /api/v1/session); changes also need X-CSRF-Token' },
      },
    },
  };
}

export function openApiRoute(routes: ApiRoute[]): ApiRoute {
  let doc: Record<string, unknown> | undefined;
  const route: ApiRoute = {
    method: 'GET',
    pattern: /^\/api\/v1\/openapi\.json$/,
    access: 'public',
    summary: 'This document',
    handle: async () => (doc ??= openApiDocument([...routes, route])),
  };
  return route;
}
