// Every management-API route of the hub, gathered from the feature modules in one place, so the server
// and in-process tests serve exactly the same API.
import type { Wharf } from '../hub.js';
import type { RequestAccess } from './access.js';
import type { ApiRoute } from './api.js';
import { deliveryRoutes } from './api/delivery.js';
import { webhookRoutes } from './api/webhooks.js';
import { attestationRoutes, signerRoutes } from './api/attestations.js';
import { gcRoutes } from './api/gc.js';
import { deployRoutes, secretRoutes, streamDeployment, targetRoutes } from './api/deploy.js';
import { browseRoutes } from './api/browse.js';

export function hubRoutes(wharf: Wharf, access: RequestAccess): ApiRoute[] {
  return [
    ...deliveryRoutes(wharf.delivery, wharf.releases, wharf.approvals, wharf.tagHistory, access, (r, run, release) => streamDeployment(r.res, r.log, run, release), {
      attested: (app, digest) => wharf.attestations.verifiedKinds(app, digest),
      deployed: (releaseIds) => wharf.deploy.latestDeployments(releaseIds),
    }),
    ...deployRoutes(wharf.deploy, wharf.releases, access),
    ...targetRoutes(wharf.targets),
    ...secretRoutes(wharf.secrets),
    ...webhookRoutes(wharf.webhooks),
    ...attestationRoutes(wharf.attestations, wharf.registry),
    ...signerRoutes(wharf.signers),
    ...gcRoutes(wharf.retention, wharf.gc),
    ...browseRoutes(wharf.meta.browse, wharf.blobs, access),
  ];
}
