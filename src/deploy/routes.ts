// Management API routes for deploys: apply and read the app file, deploy an environment (progress streamed as
// NDJSON), deployment history, and live status. Also the "deploy after release" step of release routes.
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import { RegistryError } from '../oci/errors.js';
import { isValidRepositoryName } from '../oci/reference.js';
import type { AccessCheck } from '../server/access.js';
import type { ApiRequest, ApiRoute } from '../server/api.js';
import type { Release } from '../delivery/releases.js';
import { parseAppFile, AppFileError } from './app-file.js';
import type { DeployOutcome, DeployService } from './service.js';

const APP = '(?<app>[^?#]+?)';
const applyBody = z.object({ file: z.string().max(1 << 20), dryRun: z.boolean().optional() }).strict();
const deployBody = z.object({ environment: z.string() }).strict();

function appOf(r: ApiRequest): string {
  const name = r.params.app!;
  if (!isValidRepositoryName(name)) throw new RegistryError('NAME_INVALID', `invalid repository name ${JSON.stringify(name)}`);
  return name;
}

/**
 * Streams a deployment as NDJSON: `{"release":…}` first when it follows a release, then `{"event":…}` lines
 * as the rollout goes, then `{"deployment":…,"result":…}`; an error after the headers is an `{"error":…}` line.
 */
export async function streamDeployment(res: ServerResponse, run: (onEvent: (e: unknown) => void) => Promise<DeployOutcome>, release?: Release): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  const line = (v: unknown) => {
    if (!res.destroyed) res.write(JSON.stringify(v) + '\n');
  };
  if (release) line({ release });
  try {
    const outcome = await run((event) => line({ event }));
    line(outcome);
  } catch (e) {
    const err = e instanceof RegistryError ? { code: e.code, message: e.message } : { code: 'UNKNOWN', message: (e as Error).message };
    line({ error: err });
  }
  res.end();
}

/** Returns what a release route answers: the release, or (deploying) nothing after streaming the deployment. */
export function deployAfterRelease(service: DeployService) {
  return async (r: ApiRequest, release: Release, requested: boolean | undefined): Promise<Release | undefined> => {
    const wanted = requested ?? (await service.autoDeploys(release.app, release.environment));
    if (!wanted) return release;
    await streamDeployment(
      r.res,
      (onEvent) => service.deploy(release.app, release.environment, { actor: r.principal.name, trigger: release.kind, onEvent }),
      release,
    );
    return undefined;
  };
}

export function deployRoutes(service: DeployService, access: AccessCheck): ApiRoute[] {
  return [
    {
      method: 'POST',
      pattern: /^\/api\/v1\/apply$/,
      access: 'handler',
      handle: async (r) => {
        const b = await r.body(applyBody);
        let app: string;
        try {
          app = parseAppFile(b.file).app;
        } catch (e) {
          if (e instanceof AppFileError) throw new RegistryError('UNSUPPORTED', e.message, undefined, 400);
          throw e;
        }
        const principal = await access.authorize(r.req, app, ['admin']);
        return service.apply(b.file, { dryRun: b.dryRun ?? false, actor: principal.name });
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/apps/${APP}/app-file$`),
      access: { repositoryParam: 'app', actions: ['pull'] },
      handle: async (r) => ({ app: appOf(r), yaml: await service.render(appOf(r)) }),
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/api/v1/apps/${APP}/deployments$`),
      access: 'handler',
      handle: async (r) => {
        const b = await r.body(deployBody);
        const app = appOf(r);
        const principal = await access.authorize(r.req, app, ['release'], b.environment);
        await streamDeployment(r.res, (onEvent) => service.deploy(app, b.environment, { actor: principal.name, trigger: 'deploy', onEvent }));
        return undefined;
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/apps/${APP}/deployments$`),
      access: { repositoryParam: 'app', actions: ['pull'] },
      handle: async (r) => {
        const env = r.url.searchParams.get('environment');
        if (!env) throw new RegistryError('UNSUPPORTED', 'environment is required', undefined, 400);
        const limit = r.url.searchParams.get('limit');
        return service.history(appOf(r), env, limit === null ? undefined : Number(limit));
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/apps/${APP}/status$`),
      access: { repositoryParam: 'app', actions: ['pull'] },
      handle: async (r) => service.status(appOf(r), r.url.searchParams.get('environment') ?? undefined),
    },
  ];
}
