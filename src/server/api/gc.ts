// Management API routes for retention policies and garbage collection (/api/v1/retention…, /api/v1/gc…),
// admin only. Policies are validated by the same schema as those of the config file.
import { z } from 'zod';
import { retentionPolicySchema } from '../../config.js';
import { parseQuery, type ApiRoute } from '../api.js';
import { DEFAULT_LIMIT, arrayPage, arrayPageQuery, decodeCursor } from '../pagination.js';
import type { GarbageCollector } from '../../delivery/gc.js';
import type { Retention } from '../../delivery/retention.js';

const admin = { actions: ['admin' as const] };

const collectBody = z.object({ dryRun: z.boolean().optional() }).strict();

const listQuery = arrayPageQuery;

export function gcRoutes(retention: Retention, gc: GarbageCollector): ApiRoute[] {
  return [
    {
      method: 'GET',
      pattern: /^\/api\/v1\/retention\/policies$/,
      access: admin,
      summary: 'Retention policies, oldest first (more pages: the `Link: rel="next"` header)',
      query: listQuery,
      linkPaged: true,
      handle: async (r) => {
        const q = parseQuery(r.url, listQuery);
        const limit = q.limit ?? DEFAULT_LIMIT;
        const after = decodeCursor('retention policies', q.cursor, z.number().int()) ?? Number.NEGATIVE_INFINITY;
        // Few policies, in memory already, but paged like every list. The config file's (no id) come first, in
        // file order, at negative positions; then the stored ones by id.
        const all = await retention.policies();
        const configured = all.filter((p) => p.id === null).length;
        const keyed = all.map((p, i) => ({ p, key: p.id ?? i - configured })).sort((x, y) => x.key - y.key);
        const rows = keyed.filter((k) => k.key > after).slice(0, limit + 1);
        return (await arrayPage(r, 'retention policies', limit, rows, (k) => k.key)).map((k) => k.p);
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/retention\/policies$/,
      request: retentionPolicySchema,
      access: admin,
      status: 201,
      audit: { action: 'retention.policy.add' },
      handle: async (r) => {
        const policy = await retention.addPolicy(await r.body(retentionPolicySchema), r.principal.name);
        r.audited({ target: String(policy.id), detail: { ...policy } });
        return policy;
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/api\/v1\/retention\/policies\/(?<id>\d+)$/,
      access: admin,
      audit: { action: 'retention.policy.remove', targetParam: 'id' },
      async handle(r) {
        await retention.removePolicy(Number(r.params.id));
        r.res.writeHead(204).end();
        return undefined;
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/gc$/,
      request: collectBody,
      access: admin,
      handle: async (r) => {
        const body = await r.body(collectBody);
        return gc.collect({ dryRun: body.dryRun ?? false, trigger: 'api', actor: r.actor });
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/gc\/runs$/,
      access: admin,
      summary: 'Garbage collection runs, newest first (more pages: the `Link: rel="next"` header)',
      query: listQuery,
      linkPaged: true,
      handle: async (r) => {
        const q = parseQuery(r.url, listQuery);
        const limit = q.limit ?? DEFAULT_LIMIT;
        return arrayPage(r, 'gc runs', limit, await gc.runs(limit + 1, decodeCursor('gc runs', q.cursor, z.number().int().positive())), (run) => run.id);
      },
    },
  ];
}
