// Management API routes for deploys: apply and read the app file, deploy an environment (progress streamed as
// NDJSON, also of a deployment that follows a release), deployment history, and live status.
import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import { RegistryError } from '../../oci/errors.js';
import { requireRepositoryName } from '../../oci/reference.js';
import type { RequestAccess } from '../access.js';
import { httpErrorOf } from '../http-errors.js';
import { parseQuery, type ApiRequest, type ApiRoute } from '../api.js';
import { DEFAULT_LIMIT, arrayPage, arrayPageQuery, decodeCursor, historyFilters, keyedArrayPage } from '../pagination.js';
import type { Release } from '../../delivery/releases.js';
import { AppFileError, parseAppFile } from '../../app-file/parse.js';
import type { DeployOutcome, DeployService } from '../../deploy/service.js';
import type { ReleaseWorkflow } from '../../deploy/release-workflow.js';
import type { DeployTargets } from '../../deploy/targets.js';
import type { ManagedSecrets } from '../../deploy/secrets.js';

const APP = '(?<app>[^?#]+?)';
const applyBody = z.object({ file: z.string().max(1 << 20), dryRun: z.boolean().optional() }).strict();
const secretBody = z.object({ value: z.string() }).strict();
const globalAdmin = { actions: ['admin' as const] };
const deployBody = z.object({ environment: z.string(), force: z.boolean().optional() }).strict();
const prefix = z.string().min(1).max(256).optional().describe('only the names that begin so');
const targetsQuery = arrayPageQuery.extend({ prefix });
const secretsQuery = arrayPageQuery.extend({ environment: z.string().min(1).max(128).optional().describe('only the secrets of this environment'), prefix });
const namePosition = z.string().max(600);
const statusQuery = z.object({ environment: z.string().min(1).max(128).optional().describe('only this environment (default: every environment of the app file)') });
const historyQuery = arrayPageQuery.extend({ environment: z.string({ error: 'environment is required' }).min(1, 'environment is required'), ...historyFilters });

function appOf(r: ApiRequest): string {
  const name = r.params.app!;
  return requireRepositoryName(name);
}

/**
 * Streams a deployment as NDJSON: `{"release":…}` first when it follows a release, then `{"event":…}` lines
 * as the rollout goes, then `{"deployment":…,"result":…}`; an error after the headers is an `{"error":…}` line
 * with the code and message an API error would have (an internal one says no more than that, and is logged).
 */
export async function streamDeployment(res: ServerResponse, log: Logger, run: (onEvent: (e: unknown) => void) => Promise<DeployOutcome>, release?: Release): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'application/x-ndjson; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  const line = (v: unknown) => {
    if (!res.destroyed) res.write(JSON.stringify(v) + '\n');
  };
  if (release) line({ release });
  try {
    const outcome = await run((event) => line({ event }));
    line(outcome);
  } catch (e) {
    const { error, known } = httpErrorOf(e);
    if (!known) log.error({ err: e }, 'deployment failed');
    line({ error: { code: error.code, message: error.message } });
  }
  res.end();
}

export function deployRoutes(service: DeployService, releases: ReleaseWorkflow, access: RequestAccess): ApiRoute[] {
  return [
    {
      method: 'POST',
      pattern: /^\/api\/v1\/apply$/,
      request: applyBody,
      access: 'handler',
      handle: async (r) => {
        const b = await r.body(applyBody);
        let app: string;
        try {
          app = parseAppFile(b.file).app;
        } catch (e) {
          if (e instanceof AppFileError) throw new RegistryError('INVALID', e.message);
          throw e;
        }
        const principal = await access.authorize(r.req, app, ['admin']);
        // An app's admin may not lift the protection an environment has: that takes a global admin.
        const lifted = await service.unprotects(b.file);
        if (lifted.length > 0 && !b.dryRun) await access.authorize(r.req, undefined, ['admin']);
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
      request: deployBody,
      access: 'handler',
      audit: { action: 'deploy', repositoryParam: 'app' },
      handle: async (r) => {
        const b = await r.body(deployBody);
        const app = appOf(r);
        r.audited({ target: b.environment });
        const principal = await access.authorize(r.req, app, ['release'], b.environment, await service.isProtected(app, b.environment));
        r.audited({ done: true });
        await streamDeployment(r.res, r.log, (onEvent) => releases.deploy(app, b.environment, { actor: principal.name, trigger: b.force ? 'deploy --force' : 'deploy', force: b.force, onEvent }));
        return undefined;
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/apps/${APP}/deployments$`),
      access: { repositoryParam: 'app', actions: ['pull'] },
      summary: "An environment's deployments, newest first, with their steps per target",
      query: historyQuery,
      linkPaged: true,
      handle: async (r) => {
        const q = parseQuery(r.url, historyQuery);
        const limit = q.limit ?? DEFAULT_LIMIT;
        const before = decodeCursor('deployments', q.cursor, z.number().int().positive());
        const rows = await service.history(appOf(r), q.environment, limit + 1, before, { actor: q.actor, since: q.since, until: q.until });
        return arrayPage(r, 'deployments', limit, rows, (d) => Number(d.id));
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/apps/${APP}/status$`),
      access: { repositoryParam: 'app', actions: ['pull'] },
      summary: 'What runs on each target of each environment against what should, with drift and what needs an operator',
      query: statusQuery,
      handle: async (r) => service.status(appOf(r), parseQuery(r.url, statusQuery).environment),
    },
  ];
}

/** Deploy targets: registered, listed and removed by a global admin only (an engine is root on its host). */
export function targetRoutes(targets: DeployTargets): ApiRoute[] {
  return [
    {
      method: 'GET',
      pattern: /^\/api\/v1\/targets$/,
      access: globalAdmin,
      summary: 'Deploy targets by name (more pages: the `Link: rel="next"` header)',
      query: targetsQuery,
      linkPaged: true,
      handle: async (r) => {
        const q = parseQuery(r.url, targetsQuery);
        const rows = (await targets.list()).filter((t) => q.prefix === undefined || t.name.startsWith(q.prefix));
        return keyedArrayPage(r, 'targets', q, rows, (t) => t.name, namePosition);
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/v1\/targets$/,
      access: globalAdmin,
      status: 201,
      audit: { action: 'target.add' },
      handle: async (r) => {
        const added = await targets.add(await r.body(z.unknown()), r.principal.name);
        r.audited({ target: added.name, detail: { endpoint: added.endpoint, apps: added.apps, allow: added.allow } });
        return added;
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/api\/v1\/targets\/(?<name>[^/?#]+)$/,
      access: globalAdmin,
      audit: { action: 'target.remove', targetParam: 'name' },
      handle: async (r) => {
        await targets.remove(r.params.name!);
        r.res.writeHead(204).end();
        return undefined;
      },
    },
  ];
}

/**
 * Secrets of an app's environments: set and removed by an admin of the app, listed by name. No route returns a
 * value: a secret goes in through the API and out only to the engine at deploy time.
 */
export function secretRoutes(secrets: ManagedSecrets): ApiRoute[] {
  // `slot` (ENV/NAME) names the audit row, also of a call refused before its handler runs
  const slot = new RegExp(`^/api/v1/apps/${APP}/secrets/(?<slot>(?<environment>[^/?#]+)/(?<name>[^/?#]+))$`);
  return [
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/apps/${APP}/secrets$`),
      access: { repositoryParam: 'app', actions: ['admin'] },
      summary: "An app's secrets by environment and name, without their values (more pages: the `Link: rel=\"next\"` header)",
      query: secretsQuery,
      linkPaged: true,
      handle: async (r) => {
        const q = parseQuery(r.url, secretsQuery);
        const rows = (await secrets.list(appOf(r), q.environment)).filter((s) => q.prefix === undefined || s.name.startsWith(q.prefix));
        // NUL sorts before every character a name may hold: the key orders by environment, then name.
        return keyedArrayPage(r, 'secrets', q, rows, (s) => `${s.environment}\u0000${s.name}`, namePosition);
      },
    },
    {
      method: 'PUT',
      pattern: slot,
      request: secretBody,
      access: { repositoryParam: 'app', actions: ['admin'] },
      audit: { action: 'secret.set', repositoryParam: 'app', targetParam: 'slot' },
      handle: async (r) => {
        const { value } = await r.body(secretBody);
        await secrets.set(appOf(r), r.params.environment!, r.params.name!, value, r.principal.name);
        r.res.writeHead(204).end();
        return undefined;
      },
    },
    {
      method: 'DELETE',
      pattern: slot,
      access: { repositoryParam: 'app', actions: ['admin'] },
      audit: { action: 'secret.remove', repositoryParam: 'app', targetParam: 'slot' },
      handle: async (r) => {
        await secrets.remove(appOf(r), r.params.environment!, r.params.name!);
        r.res.writeHead(204).end();
        return undefined;
      },
    },
  ];
}
