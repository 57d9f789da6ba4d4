// Management API routes for attestations: a pipeline hands in an envelope it signed (push on the app), anyone
// who may pull lists and verifies the attestations of a digest or tag, and global admins register and revoke
// the signers whose keys count.
import { z } from 'zod';
import { RegistryError } from '../../oci/errors.js';
import { requireRepositoryName } from '../../oci/reference.js';
import { parseQuery, type ApiRequest, type ApiRoute } from '../api.js';
import { arrayPageQuery, keyedArrayPage } from '../pagination.js';
import type { Registry } from '../../registry/registry.js';
import type { Attestations } from '../../attest/attestations.js';
import { signerRegistrationSchema, type TrustedSigners } from '../../attest/signers.js';

const APP = '(?<app>[^?#]+?)';
const globalAdmin = { actions: ['admin' as const] };

/** A DSSE envelope as JSON; its shape is checked by dsse.parseEnvelope, its signature by the signers. */
const attestBody = z.strictObject({ envelope: z.record(z.string(), z.unknown()) });

const attestationsQuery = z.object({ environment: z.string().min(1).max(128).optional().describe('verify against the signers and rules of this environment') });
const signersQuery = arrayPageQuery.extend({ prefix: z.string().min(1).max(256).optional().describe('only the names that begin so') });

function app(r: ApiRequest): string {
  const name = r.params.app!;
  return requireRepositoryName(name);
}

export function attestationRoutes(attestations: Attestations, registry: Registry): ApiRoute[] {
  return [
    {
      method: 'POST',
      pattern: new RegExp(`^/api/v1/apps/${APP}/attestations$`),
      request: attestBody,
      access: { repositoryParam: 'app', actions: ['push'] },
      status: 201,
      summary: 'Store a signed attestation (DSSE envelope of an in-toto Statement) as a referrer of the digest it names',
      // The attestation is a manifest pushed into the repository, like one pushed over /v2.
      audit: { action: 'manifest.push', repositoryParam: 'app' },
      handle: async (r) => {
        const b = await r.body(attestBody);
        r.audited({ detail: { via: 'attestation' } });
        const attested = await attestations.submit(app(r), Buffer.from(JSON.stringify(b.envelope)), { name: r.principal.name, kind: r.principal.kind });
        r.audited({ target: attested.digest, detail: { digest: attested.digest, subject: attested.subject, kind: attested.kind, signer: attested.signer } });
        return attested;
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/apps/${APP}/attestations/(?<ref>[^/?]+)$`),
      access: { repositoryParam: 'app', actions: ['pull'] },
      summary: 'The attestations of a digest or tag, each verified (for one environment with ?environment=)',
      query: attestationsQuery,
      handle: async (r) => {
        const name = app(r);
        const { environment } = parseQuery(r.url, attestationsQuery);
        // A tag is resolved once, here; everything after is about the digest.
        const { digest: resolved } = await registry.getManifest(name, r.params.ref!);
        return { app: name, digest: resolved, ...(environment ? { environment } : {}), attestations: await attestations.list(name, resolved, environment) };
      },
    },
  ];
}

/** Trusted signers: registered and revoked by a global admin only; listed to anyone signed in (public keys). */
export function signerRoutes(signers: TrustedSigners): ApiRoute[] {
  return [
    {
      method: 'GET',
      pattern: /^\/api\/v1\/signers$/,
      access: { actions: [] },
      summary: 'Trusted attestation signers by name, revoked ones too (more pages: the `Link: rel="next"` header)',
      query: signersQuery,
      linkPaged: true,
      handle: async (r) => {
        const q = parseQuery(r.url, signersQuery);
        const rows = (await signers.list()).filter((s) => q.prefix === undefined || s.name.startsWith(q.prefix));
        return keyedArrayPage(r, 'signers', q, rows, (s) => s.name, z.string().max(600));
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/signers$/,
      access: globalAdmin,
      status: 201,
      summary: 'Trust a public key to sign attestations of some apps, kinds and environments',
      request: signerRegistrationSchema,
      audit: { action: 'signer.add' },
      handle: async (r) => {
        const added = await signers.add(await r.body(z.unknown()), r.principal.name);
        r.audited({ target: added.name, detail: { keyid: added.keyid, apps: added.apps, kinds: added.kinds, environments: added.environments } });
        return added;
      },
    },
    {
      // Revoked, not deleted: the row stays, so what the key signed still names who signed it.
      method: 'DELETE',
      pattern: /^\/api\/v1\/signers\/(?<name>[^/?#]+)$/,
      access: globalAdmin,
      summary: 'Revoke a signer: its signatures count no more',
      audit: { action: 'signer.revoke', targetParam: 'name' },
      handle: async (r) => signers.revoke(r.params.name!, r.principal.name),
    },
  ];
}
