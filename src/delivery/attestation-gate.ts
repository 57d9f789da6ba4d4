// The release gate of environments that require attestations (`requires: [tests]`).
// A release, promotion or rollback of a digest goes through only if the digest has an attestation of every required
// kind whose signature verifies under a signer trusted for that app, kind and environment. A release rule, so it lives
// in delivery/ and the arrow runs one way: delivery -> attest (releases read the attestation kinds too).
import { RegistryError } from '../oci/errors.js';
import type { ReleaseGate } from './releases.js';
import type { AttestationRecord, Attestations } from '../attest/attestations.js';

export function attestationGate(attestations: Attestations): ReleaseGate {
  return async ({ app, environment, digest, kind, requires }) => {
    if (requires.length === 0) return;
    const found = await attestations.list(app, digest, environment);
    const missing = requires.filter((k) => !found.some((a) => a.verified && a.kind === k));
    if (missing.length === 0) return;
    const why = missing.map((k) => describeMissing(k, found.filter((a) => a.kind === k)));
    const verb = kind === 'release' ? 'release' : kind === 'promote' ? 'promotion' : 'rollback';
    throw new RegistryError(
      'DENIED',
      `${verb} to ${app}/${environment} refused: it requires verified ${requires.map((k) => `'${k}'`).join(', ')} attestations of ${digest}; ${why.join('; ')}`,
    );
  };
}

function describeMissing(kind: string, candidates: AttestationRecord[]): string {
  if (candidates.length === 0) return `missing: '${kind}' (no such attestation)`;
  return `missing: '${kind}' (${candidates.map((a) => `attestation ${a.digest} does not verify: ${a.reason}`).join('; ')})`;
}
