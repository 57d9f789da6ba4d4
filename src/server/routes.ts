// Every management-API route of the hub, gathered from the feature modules in one place, so the server
// and in-process tests serve exactly the same API.
import type { Wharf } from '../wharf.js';
import type { AccessCheck } from './access.js';
import type { ApiRoute } from './api.js';
import { deliveryRoutes } from '../delivery/routes.js';
import { webhookRoutes } from '../webhooks/routes.js';
import { attestationRoutes } from '../attest/routes.js';
import { gcRoutes } from '../delivery/gc-routes.js';
import { deployAfterRelease, deployRoutes, secretRoutes, targetRoutes } from '../deploy/routes.js';
import { browseRoutes } from './browse-routes.js';

export function hubRoutes(wharf: Wharf, access: AccessCheck): ApiRoute[] {
  return [
    ...deliveryRoutes(wharf.delivery, wharf.tagHistory, access, {
      approvals: wharf.approvals,
      attested: (app, digest) => wharf.attestations.verifiedKinds(app, digest),
      deployed: (releaseIds) => wharf.deploy.latestDeployments(releaseIds),
      after: deployAfterRelease(wharf.deploy),
    }),
    ...deployRoutes(wharf.deploy, access),
    ...targetRoutes(wharf.targets),
    ...secretRoutes(wharf.secrets),
    ...webhookRoutes(wharf.webhooks),
    ...attestationRoutes(wharf.attestations, wharf.registry, wharf.keyring),
    ...gcRoutes(wharf.retention, wharf.gc),
    ...browseRoutes(wharf.meta.browse, wharf.blobs, access),
  ];
}
