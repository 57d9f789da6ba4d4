// Management API routes for attestations: the server signs what an authenticated pipeline reports (push on
// the app), lists and verifies the attestations of a digest or tag (pull), and publishes its public keys.
import { z } from 'zod';
import { parseDigest } from '../../oci/digest.js';
import { RegistryError } from '../../oci/errors.js';
import { isValidRepositoryName } from '../../oci/reference.js';
import type { ApiRequest, ApiRoute } from '../api.js';
import type { Registry } from '../../registry/registry.js';
import type { Attestations } from '../../attest/attestations.js';
import type { Keyring } from '../../attest/keyring.js';

const APP = '(?<app>[^?#]+?)';

const digest = z.string().refine((d) => parseDigest(d) !== null, 'expected a digest (sha256:…)');

const step = z.strictObject({
  name: z.string().min(1).max(200),
  kind: z.enum(['build', 'test']),
  command: z.array(z.string()).max(1000).optional(),
  exitCode: z.number().int().optional(),
  durationMs: z.number().nonnegative(),
});

/** What a pipeline reports for a `tests` attestation; `builder` and `timestamp` are the server's to add. */
const testsPredicate = z.strictObject({
  commit: z.string().regex(/^[0-9a-f]{7,64}$/, 'a commit SHA (hex)'),
  runId: z.string().min(1).max(200),
  image: z.strictObject({ id: digest }),
  steps: z.array(step).min(1).max(1000),
  startedAt: z.string().max(64),
  finishedAt: z.string().max(64),
  ci: z.record(z.string(), z.string().max(2000)).optional(),
});

const attestBody = z.strictObject({ digest, kind: z.string(), predicate: z.record(z.string(), z.unknown()) });

function app(r: ApiRequest): string {
  const name = r.params.app!;
  if (!isValidRepositoryName(name)) throw new RegistryError('NAME_INVALID', `invalid repository name ${JSON.stringify(name)}`);
  return name;
}

export function attestationRoutes(attestations: Attestations, registry: Registry, keyring: Keyring): ApiRoute[] {
  return [
    {
      method: 'POST',
      pattern: new RegExp(`^/api/v1/apps/${APP}/attestations$`),
      request: attestBody,
      access: { repositoryParam: 'app', actions: ['push'] },
      status: 201,
      // The attestation is a manifest pushed into the repository, like one pushed over /v2.
      audit: { action: 'manifest.push', repositoryParam: 'app' },
      handle: async (r) => {
        const b = await r.body(attestBody);
        r.audited({ detail: { via: 'attestation', subject: b.digest, kind: b.kind } });
        let predicate = b.predicate;
        if (b.kind === 'tests') {
          const parsed = testsPredicate.safeParse(predicate);
          if (!parsed.success) {
            const issue = parsed.error.issues[0]!;
            throw new RegistryError('INVALID', `predicate.${issue.path.join('.')}: ${issue.message}`);
          }
          predicate = parsed.data;
        }
        const attested = await attestations.attest(app(r), b.digest, b.kind, predicate, { name: r.principal.name, kind: r.principal.kind });
        r.audited({ target: attested.digest, detail: { digest: attested.digest } });
        return attested;
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/apps/${APP}/attestations/(?<ref>[^/]+)$`),
      access: { repositoryParam: 'app', actions: ['pull'] },
      handle: async (r) => {
        const name = app(r);
        // A tag is resolved once, here; everything after is about the digest.
        const { digest: resolved } = await registry.getManifest(name, r.params.ref!);
        return { app: name, digest: resolved, attestations: await attestations.list(name, resolved) };
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/attestations\/keys$/,
      access: { actions: [] },
      handle: async () => keyring.publicKeys(),
    },
  ];
}
