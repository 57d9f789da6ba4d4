// Management API routes of the token signing keys (/api/v1/keys…), global admin only: list them, rotate (with
// --retire, refuse every token issued so far). The keys are the database's, so every instance follows.
import { z } from 'zod';
import type { TokenService } from '../../auth/token-service.js';
import { parseQuery, type ApiRoute } from '../api.js';
import { arrayPageQuery, keyedArrayPage } from '../pagination.js';

const admin = { actions: ['admin' as const] };

const SigningKey = z.object({
  kid: z.string(),
  algorithm: z.string(),
  state: z.enum(['signing', 'verifying', 'retired']),
  createdAt: z.number(),
  supersededAt: z.number().nullable(),
  trustedUntil: z.number().nullable(),
  retiredAt: z.number().nullable(),
});
const RotateBody = z.object({ retire: z.boolean().optional().describe('stop trusting every earlier key at once: every token issued so far is refused') }).strict();

export function keyRoutes(tokens: TokenService): ApiRoute[] {
  return [
    {
      method: 'GET',
      pattern: /^\/api\/v1\/keys$/,
      access: admin,
      summary: 'The token signing keys, oldest first (public facts only: never a private key; more pages: the `Link: rel="next"` header)',
      query: arrayPageQuery,
      response: z.array(SigningKey),
      linkPaged: true,
      handle: async (r) => {
        const q = parseQuery(r.url, arrayPageQuery);
        // Oldest first: by when each was made (zero-padded, so the text sorts as the number), then by kid.
        return keyedArrayPage(r, 'keys', q, await tokens.list(), (k) => `${String(k.createdAt).padStart(16, '0')}\u0000${k.kid}`, z.string().max(600));
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/keys\/rotate$/,
      access: admin,
      status: 201,
      summary: 'Make a new signing key; earlier keys verify their tokens until those expire (or, with retire, no more)',
      request: RotateBody,
      response: SigningKey,
      audit: { action: 'keys.rotate' },
      handle: async (r) => {
        const body = await r.body(RotateBody);
        const key = await tokens.rotate(body.retire ?? false);
        r.audited({ target: key.kid, detail: { retire: body.retire ?? false } });
        return key;
      },
    },
  ];
}
