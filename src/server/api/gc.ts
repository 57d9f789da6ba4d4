// Management API routes for retention policies and garbage collection (/api/v1/retention…, /api/v1/gc…),
// admin only. Policies are validated by the same schema as those of the config file.
import { z } from 'zod';
import { retentionPolicySchema } from '../../config.js';
import { RegistryError } from '../../oci/errors.js';
import type { ApiRoute } from '../api.js';
import type { GarbageCollector } from '../../delivery/gc.js';
import type { Retention } from '../../delivery/retention.js';

const admin = { actions: ['admin' as const] };

const collectBody = z.object({ dryRun: z.boolean().optional() }).strict();

function limitOf(url: URL): number {
  const raw = url.searchParams.get('limit');
  const limit = raw === null ? 50 : Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new RegistryError('INVALID', 'limit must be an integer from 1 to 1000');
  return limit;
}

export function gcRoutes(retention: Retention, gc: GarbageCollector): ApiRoute[] {
  return [
    {
      method: 'GET',
      pattern: /^\/api\/v1\/retention\/policies$/,
      access: admin,
      handle: async () => retention.policies(),
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
      handle: async (r) => gc.runs(limitOf(r.url)),
    },
  ];
}
