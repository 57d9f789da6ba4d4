// The promotion gate of deployments: a digest whose newest deployment to the source environment failed (rolled
// back, paused, or failed outright) is not promoted, even if it is still that environment's current release.
import { RegistryError } from '../oci/errors.js';
import type { ReleaseGate } from '../delivery/releases.js';
import type { DeliveryMetadata, DeploymentMetadata, DeploymentRow } from '../metadata/metadata.js';

const FAILED: Partial<Record<DeploymentRow['status'], string>> = {
  failed: 'failed',
  rolled_back: 'failed and was rolled back',
  paused: 'failed and was paused',
  needs_operator: 'failed and needs an operator',
};

export function deploymentGate(deliveryStore: DeliveryMetadata, deployments: DeploymentMetadata): ReleaseGate {
  return async ({ app, environment, digest, kind, from }) => {
    if (kind !== 'promote' || from === undefined) return;
    const source = await deliveryStore.environment(app, from);
    if (!source) return;
    const last = await deployments.newest(Number(source.id), { digest });
    const outcome = last && FAILED[last.status];
    if (!last || !outcome) return;
    const release = last.release_id === null ? '' : ` of release #${last.release_id}`;
    throw new RegistryError(
      'DENIED',
      `promotion to ${app}/${environment} refused: deployment #${last.id}${release} (${digest}) to ${app}/${from} ${outcome}` +
        `${last.reason ? `: ${last.reason}` : ''}; deploy it to ${from} successfully first, or promote another release`,
    );
  };
}
