// Management API routes for webhooks (/api/v1/webhooks…), admin only. Input is validated here, once.
import { z } from 'zod';
import { RegistryError } from '../../oci/errors.js';
import { parseQuery, type ApiRoute } from '../api.js';
import { arrayPage, arrayPageQuery, decodeCursor, keyedArrayPage } from '../pagination.js';
import { EVENT_TYPES, parseEventFilter } from '../../webhooks/events.js';
import { isRepositoryPattern } from '../../auth/actions.js';
import type { Webhooks } from '../../webhooks/service.js';
import type { DeliveryFilter } from '../../metadata/metadata.js';

const admin = { actions: ['admin' as const] };

const httpUrl = z
  .string()
  .max(2048)
  .refine((u) => URL.canParse(u) && ['http:', 'https:'].includes(new URL(u).protocol), 'must be an http:// or https:// URL')
  // Credentials in the URL would be stored and shown in listings; receivers authenticate by the signature.
  .refine((u) => !URL.canParse(u) || (new URL(u).username === '' && new URL(u).password === ''), 'must not contain credentials (user:password@); the receiver checks the X-Wharf-Signature instead');

export const subscriptionInput = z
  .object({
    url: httpUrl,
    events: z
      .array(z.string().refine((f) => parseEventFilter(f) !== null, { error: (i) => `unknown event ${JSON.stringify(i.input)} (known: ${EVENT_TYPES.join(', ')}, or a wildcard like deploy.* or *)` }))
      .min(1),
    secret: z.string().min(8).max(256).optional(),
    repository: z.string().refine(isRepositoryPattern, 'must be a repository name or glob (* any characters, ? one)').nullable().optional(),
  })
  .strict();

const subscriptionsQuery = arrayPageQuery.extend({ repository: z.string().min(1).max(256).optional().describe('only the subscriptions of this repository pattern') });
const deliveryQuery = arrayPageQuery
  .extend({
    subscription: z.coerce.number().int().positive().optional(),
    status: z.enum(['pending', 'succeeded', 'failed']).optional(),
    event: z.string().optional(),
  })
  .strict();
/** The page the delivery log answered before it was paged (the CLI shows it without --limit). */
const DELIVERIES_DEFAULT = 100;
const deliveryPosition = z.object({ createdAt: z.number().int(), id: z.string().min(1).max(200) });

function deliveryFilter(url: URL): DeliveryFilter {
  const parsed = deliveryQuery.safeParse(Object.fromEntries(url.searchParams));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new RegistryError('INVALID', `query ${issue.path.join('.') || ''}: ${issue.message}`);
  }
  const { subscription, cursor, limit, ...rest } = parsed.data;
  return { ...rest, subscriptionId: subscription, limit: (limit ?? DELIVERIES_DEFAULT) + 1, after: decodeCursor('webhook deliveries', cursor, deliveryPosition) };
}

const subscriptionId = (params: Record<string, string>) => Number(params.id);

export function webhookRoutes(webhooks: Webhooks): ApiRoute[] {
  return [
    {
      method: 'POST',
      pattern: /^\/api\/v1\/webhooks$/,
      request: subscriptionInput,
      access: admin,
      status: 201,
      // A subscription receives every matching event, tag moves included: who added one is worth knowing.
      audit: { action: 'webhook.add' },
      async handle(r) {
        const input = await r.body(subscriptionInput);
        const { subscription, secret } = await webhooks.addSubscription({ ...input, createdBy: r.principal.name });
        // The host only: webhook URLs often carry a secret in their path or query.
        r.audited({ target: String(subscription.id), detail: { host: new URL(subscription.url).host, events: subscription.events } });
        // A generated secret is shown this once; no listing ever returns it.
        return secret === undefined ? subscription : { ...subscription, secret };
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/webhooks$/,
      access: admin,
      summary: 'Webhook subscriptions, oldest first (more pages: the `Link: rel="next"` header)',
      query: subscriptionsQuery,
      linkPaged: true,
      handle: async (r) => {
        const q = parseQuery(r.url, subscriptionsQuery);
        const rows = (await webhooks.listSubscriptions()).filter((s) => q.repository === undefined || s.repository === q.repository);
        return keyedArrayPage(r, 'webhooks', q, rows, (s) => s.id, z.number().int().positive());
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/webhooks\/(?<id>\d+)$/,
      access: admin,
      handle: (r) => webhooks.subscription(subscriptionId(r.params)),
    },
    {
      method: 'DELETE',
      pattern: /^\/api\/v1\/webhooks\/(?<id>\d+)$/,
      access: admin,
      audit: { action: 'webhook.remove', targetParam: 'id' },
      async handle(r) {
        await webhooks.removeSubscription(subscriptionId(r.params));
        r.res.writeHead(204).end();
        return undefined;
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/webhooks\/deliveries$/,
      access: admin,
      summary: 'Webhook deliveries, newest first, with filters (more pages: the `Link: rel="next"` header)',
      query: deliveryQuery,
      linkPaged: true,
      handle: async (r) => {
        const filter = deliveryFilter(r.url);
        const rows = await webhooks.listDeliveries(filter);
        return arrayPage(r, 'webhook deliveries', filter.limit! - 1, rows, (d) => ({ createdAt: d.createdAt, id: d.id }));
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/webhooks\/deliveries\/(?<id>[^/]+)$/,
      access: admin,
      handle: (r) => webhooks.delivery(r.params.id!),
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/webhooks\/deliveries\/(?<id>[^/]+)\/redeliver$/,
      access: admin,
      status: 202,
      handle: (r) => webhooks.redeliver(r.params.id!),
    },
  ];
}
