// Management API routes for delivery: tag history and restore, environments, releases, promote, rollback.
import { z } from 'zod';
import { RegistryError } from '../../oci/errors.js';
import { isValidTag, requireRepositoryName } from '../../oci/reference.js';
import type { RequestAccess } from '../access.js';
import type { Principal } from '../../auth/access.js';
import { parseQuery, type ApiRoute, type ApiRequest } from '../api.js';
import { DEFAULT_LIMIT, arrayPage, arrayPageQuery, decodeCursor, historyFilters } from '../pagination.js';
import type { Delivery, Release } from '../../delivery/releases.js';
import type { ApprovalRequest, Approvals } from '../../delivery/approvals.js';
import type { ReleaseOperation, ReleaseStep, ReleaseWorkflow } from '../../deploy/release-workflow.js';
import type { DeployOutcome } from '../../deploy/service.js';
import { sendJson } from '../api.js';
import type { TagHistory } from '../../delivery/tags.js';

const APP = '(?<app>[^?#]+?)';

const environmentBody = z
  .object({
    name: z.string(),
    requiresPromotionFrom: z.string().nullable().optional(),
    protected: z.boolean().optional(),
    autoDeploy: z.boolean().optional(),
    requires: z.array(z.string()).optional(),
    requiresApproval: z.boolean().optional(),
  })
  .strict();
const releaseBody = z
  .object({
    environment: z.string(),
    ref: z.string(),
    note: z.string().optional(),
    deploy: z.boolean().optional(),
    /** where the digest came from, as the pipeline reports it */
    commit: z.string().regex(/^[0-9a-fA-F]{7,64}$/, 'a commit is 7 to 64 hex digits').optional(),
    pipelineRun: z.string().min(1).max(200).optional(),
  })
  .strict();
const promoteBody = z
  .object({ from: z.string(), to: z.string(), note: z.string().optional(), deploy: z.boolean().optional() })
  .strict()
  .refine((b) => b.from !== b.to, { message: 'cannot promote an environment to itself (from and to are the same)', path: ['to'] });
const rollbackBody = z.object({ environment: z.string(), to: z.string().optional(), note: z.string().optional(), deploy: z.boolean().optional() }).strict();
const approveBody = z.object({ deploy: z.boolean().optional() }).strict();
const denyBody = z.object({ reason: z.string().max(500).optional() }).strict();
const releasesQuery = arrayPageQuery.extend({
  environment: z.string().min(1).optional().describe('only the releases of this environment'),
  kind: z.enum(['release', 'promote', 'rollback']).optional().describe('only releases, promotions or rollbacks'),
  digest: z.string().regex(/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/, 'a digest is ALGORITHM:HEX').optional().describe('only the releases of this digest (an image page: where it was released)'),
  ...historyFilters,
});
const historyQuery = arrayPageQuery.extend({ tag: z.string().min(1).max(128).optional().describe('only the changes of this tag'), ...historyFilters });
const position = z.number().int().positive();
const approvalsQuery = arrayPageQuery.extend({
  all: z.enum(['true', 'false']).optional().describe('true: approved requests too, not only the pending ones'),
  environment: z.string().min(1).max(128).optional().describe('only the requests of this environment'),
});
/** The most the approvals list answered before it was paged: a first page stays that long. */
const APPROVALS_DEFAULT = 100;
const restoreBody = z
  .object({ to: z.string().optional(), at: z.union([z.number(), z.string()]).optional(), force: z.boolean().optional() })
  .strict();

function app(r: ApiRequest, key = 'app'): string {
  const name = r.params[key]!;
  return requireRepositoryName(name);
}

/** The audit detail of a release: the environment's reserved tag moves to its digest. */
function releaseDetail(release: Release): Record<string, unknown> {
  return { digest: release.digest, via: release.kind, release: release.id, replaces: release.replaces, tag: release.tag, version: release.version };
}

function parseTime(v: number | string): number {
  const t = typeof v === 'number' ? v : Date.parse(v);
  if (!Number.isFinite(t)) throw new RegistryError('INVALID', `invalid time ${JSON.stringify(v)}`);
  return t;
}

/** What the caller of a list may do with an approval request: approve (another person's), deny, or why not. */
export interface ApprovalChoice {
  approve: boolean;
  deny: boolean;
  reason: string | null;
}

function callerMay(access: RequestAccess, principal: Principal, a: ApprovalRequest, isProtected: boolean): ApprovalChoice {
  if (a.status !== 'pending') return { approve: false, deny: false, reason: `request #${a.id} was already ${a.status}` };
  const may = access.allowed ? access.allowed(principal, a.app, 'release', a.environment, isProtected) : true;
  if (!may) {
    const reason = isProtected
      ? `${a.app}/${a.environment} is protected: only users and tokens granted release:${a.environment} on it may approve or deny`
      : `You may not release to ${a.environment} on ${a.app}: approving needs the same right as asking`;
    return { approve: false, deny: false, reason };
  }
  if (principal.name === null || principal.name === a.requestedBy) return { approve: false, deny: true, reason: `${a.requestedBy ?? 'An anonymous caller'} asked for it: a second person must approve it` };
  return { approve: true, deny: true, reason: null };
}

/** The attestation kinds a digest carries, verified (releases list them so people see what is attested). */
export type AttestedKinds = (app: string, digest: string) => Promise<string[]>;

/** Streams a deployment that follows a release (server/api/deploy.ts: NDJSON). */
export type StreamDeployment = (r: ApiRequest, run: (onEvent: (e: unknown) => void) => Promise<DeployOutcome>, release: Release) => Promise<void>;

/** The newest deployment of each release (releases listings show whether it ran, failed or was rolled back). */
export type LatestDeployments = (releaseIds: number[]) => Promise<Map<number, { id: number; status: string; reason: string | null }>>;

export interface DeliveryRouteOptions {
  attested?: AttestedKinds;
  deployed?: LatestDeployments;
}

/**
 * `releases` carries out releases, promotions and rollbacks (and approved requests), deploying them when asked or
 * by autoDeploy; `stream` sends such a deployment's progress.
 */
export function deliveryRoutes(
  delivery: Delivery,
  releases: ReleaseWorkflow,
  approvals: Approvals,
  tags: TagHistory,
  access: RequestAccess,
  stream: StreamDeployment,
  opts: DeliveryRouteOptions = {},
): ApiRoute[] {
  const { attested, deployed } = opts;
  /** Answers a recorded release: the release, or (deploying) nothing after streaming the deployment. */
  const answer = async (r: ApiRequest, step: ReleaseStep): Promise<Release | undefined> => {
    if (!step.deployment) return step.release;
    await stream(r, step.deployment, step.release);
    return undefined;
  };
  /** Carries out an operation; in an environment that requires approval it waits: answered 202 with the request. */
  const carryOut = async (r: ApiRequest, op: ReleaseOperation, actor: string | null): Promise<Release | undefined> => {
    const step = await releases.carryOut(app(r), op, actor, (release) => r.audited({ detail: releaseDetail(release), done: true }));
    if ('approval' in step) {
      r.audited({ detail: { approval: step.approval.id, pending: true }, done: true });
      sendJson(r.res, 202, { approval: step.approval });
      return undefined;
    }
    return answer(r, step);
  };
  /**
   * The request of route param `id` and who may decide it (approve or deny): the same right as making the request.
   * A caller without it learns nothing, not even whether the request exists (a missing one is checked against
   * the plain release right first).
   */
  const decide = async (r: ApiRequest, detail: Record<string, unknown> = {}): Promise<{ request: ApprovalRequest; decider: Principal }> => {
    const id = Number(r.params.id);
    const request = await approvals.get(app(r), id).catch(async (e: unknown) => {
      await access.authorize(r.req, app(r), ['release']);
      throw e;
    });
    r.audited({ target: request.environment, detail: { request: id, kind: request.kind, requestedBy: request.requestedBy, ...detail } });
    const decider = await access.authorize(r.req, app(r), ['release'], request.environment, await delivery.isProtected(app(r), request.environment));
    return { request, decider };
  };
  return [
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/apps/${APP}/approvals$`),
      access: { repositoryParam: 'app', actions: ['pull'] },
      summary: 'Approval requests of an app, newest first: pending ones, or all with ?all=true (more pages: the `Link: rel="next"` header)',
      query: approvalsQuery,
      linkPaged: true,
      handle: async (r) => {
        const q = parseQuery(r.url, approvalsQuery);
        const limit = q.limit ?? APPROVALS_DEFAULT;
        const rows = await approvals.list(app(r), { all: q.all === 'true', environment: q.environment, limit: limit + 1, before: decodeCursor('approvals', q.cursor, position) });
        const page = await arrayPage(r, 'approvals', limit, rows, (a) => a.id);
        // What the caller may do with each request, decided here as the approve and deny routes decide it, so
        // the UI offers only what the server would accept and says why not.
        const protection = new Map<string, Promise<boolean>>();
        const isProtected = (env: string) => protection.get(env) ?? protection.set(env, delivery.isProtected(app(r), env)).get(env)!;
        return Promise.all(page.map(async (a) => ({ ...a, caller: callerMay(access, r.principal, a, await isProtected(a.environment)) })));
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/api/v1/apps/${APP}/approvals/(?<id>\\d+)/deny$`),
      request: denyBody,
      access: 'handler',
      summary: 'Deny a pending approval request (nothing is released); the requester may withdraw their own',
      audit: { action: 'approval.deny', repositoryParam: 'app', detail: {} },
      handle: async (r) => {
        const b = await r.body(denyBody);
        const { request, decider } = await decide(r, b.reason === undefined ? {} : { reason: b.reason });
        return approvals.deny(app(r), request.id, decider.name);
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/api/v1/apps/${APP}/approvals/(?<id>\\d+)$`),
      request: approveBody,
      access: 'handler',
      status: 201,
      audit: { action: 'approval.approve', repositoryParam: 'app', detail: {} },
      handle: async (r) => {
        const b = await r.body(approveBody);
        const { request, decider } = await decide(r);
        return answer(r, await releases.approve(app(r), request.id, decider.name, b.deploy, (release) => r.audited({ detail: releaseDetail(release), done: true })));
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/repositories/${APP.replace('app', 'repo')}/tags/history$`),
      access: { repositoryParam: 'repo', actions: ['pull'] },
      summary: 'Tag history of a repository, newest first (more pages: the `Link: rel="next"` header)',
      query: historyQuery,
      linkPaged: true,
      handle: async (r) => {
        const q = parseQuery(r.url, historyQuery);
        const limit = q.limit ?? DEFAULT_LIMIT;
        const rows = await tags.history(app(r, 'repo'), q.tag, { before: decodeCursor('tag history', q.cursor, position), limit: limit + 1, actor: q.actor, since: q.since, until: q.until });
        return arrayPage(r, 'tag history', limit, rows, (c) => c.id);
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/api/v1/repositories/${APP.replace('app', 'repo')}/tags/(?<tag>[^/]+)/restore$`),
      request: restoreBody,
      access: { repositoryParam: 'repo', actions: ['pull', 'push'] },
      audit: { action: 'tag.move', repositoryParam: 'repo', targetParam: 'tag', detail: { via: 'restore' } },
      handle: async (r) => {
        const body = await r.body(restoreBody);
        const repo = app(r, 'repo');
        // The same rule as a push: a tag /v2 could neither fetch nor delete must not be made here either.
        if (!isValidTag(r.params.tag!)) throw new RegistryError('TAG_INVALID', `invalid tag ${JSON.stringify(r.params.tag)}`);
        if (body.force) r.audited({ detail: { force: true } });
        if (body.force) await access.authorize(r.req, repo, ['admin']);
        const move = await tags.restore(repo, r.params.tag!, { to: body.to, at: body.at === undefined ? undefined : parseTime(body.at) }, r.principal.name, body.force);
        r.audited({ detail: { digest: move.digest, previous: move.previous } });
        return move;
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/apps/${APP}/environments$`),
      access: { repositoryParam: 'app', actions: ['pull'] },
      summary: 'Environments of an app, in the order they were made (more pages: the `Link: rel="next"` header)',
      query: arrayPageQuery,
      linkPaged: true,
      handle: async (r) => {
        const q = parseQuery(r.url, arrayPageQuery);
        const limit = q.limit ?? DEFAULT_LIMIT;
        const rows = await delivery.environments(app(r), { after: decodeCursor('environments', q.cursor, position), limit: limit + 1 });
        return arrayPage(r, 'environments', limit, rows, (e) => e.id);
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/api/v1/apps/${APP}/environments$`),
      request: environmentBody,
      access: { repositoryParam: 'app', actions: ['admin'] },
      status: 201,
      audit: { action: 'environment.create', repositoryParam: 'app' },
      handle: async (r) => {
        const b = await r.body(environmentBody);
        r.audited({ target: b.name, detail: { requiresPromotionFrom: b.requiresPromotionFrom ?? null, protected: b.protected ?? false, requires: b.requires ?? [] } });
        return delivery.createEnvironment(app(r), b.name, b);
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/apps/${APP}/environments/(?<env>[^/]+)$`),
      access: { repositoryParam: 'app', actions: ['pull'] },
      handle: async (r) => delivery.environment(app(r), r.params.env!),
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/apps/${APP}/releases$`),
      access: { repositoryParam: 'app', actions: ['pull'] },
      summary: 'Releases of an app, newest first (more pages: the `Link: rel="next"` header)',
      query: releasesQuery,
      linkPaged: true,
      handle: async (r) => {
        const q = parseQuery(r.url, releasesQuery);
        const limit = q.limit ?? DEFAULT_LIMIT;
        const rows = await delivery.releases(app(r), q.environment, limit + 1, decodeCursor('releases', q.cursor, position), { digest: q.digest, kind: q.kind, actor: q.actor, since: q.since, until: q.until });
        const list = await arrayPage(r, 'releases', limit, rows, (rel) => rel.id);
        const byDigest = new Map<string, Promise<string[]>>();
        if (attested) for (const rel of list) if (!byDigest.has(rel.digest)) byDigest.set(rel.digest, attested(rel.app, rel.digest));
        const deployments = deployed ? await deployed(list.map((rel) => rel.id)) : undefined;
        return Promise.all(
          list.map(async (rel) => ({
            ...rel,
            ...(attested ? { attestations: await byDigest.get(rel.digest)! } : {}),
            ...(deployments ? { deployment: deployments.get(rel.id) ?? null } : {}),
          })),
        );
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/api/v1/apps/${APP}/releases$`),
      request: releaseBody,
      access: 'handler',
      status: 201,
      audit: { action: 'tag.move', repositoryParam: 'app', detail: { via: 'release' } },
      handle: async (r) => {
        const b = await r.body(releaseBody);
        r.audited({ target: b.environment, detail: { ref: b.ref } });
        const principal = await access.authorize(r.req, app(r), ['release'], b.environment, await delivery.isProtected(app(r), b.environment));
        return carryOut(r, { kind: 'release', environment: b.environment, ref: b.ref, note: b.note, deploy: b.deploy, commit: b.commit?.toLowerCase(), pipelineRun: b.pipelineRun }, principal.name);
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/api/v1/apps/${APP}/promote$`),
      request: promoteBody,
      access: 'handler',
      status: 201,
      audit: { action: 'tag.move', repositoryParam: 'app', detail: { via: 'promote' } },
      handle: async (r) => {
        const b = await r.body(promoteBody);
        r.audited({ target: b.to, detail: { from: b.from } });
        const principal = await access.authorize(r.req, app(r), ['release'], b.to, await delivery.isProtected(app(r), b.to));
        return carryOut(r, { kind: 'promote', environment: b.to, from: b.from, note: b.note, deploy: b.deploy }, principal.name);
      },
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/api/v1/apps/${APP}/rollback$`),
      request: rollbackBody,
      access: 'handler',
      status: 201,
      audit: { action: 'tag.move', repositoryParam: 'app', detail: { via: 'rollback' } },
      handle: async (r) => {
        const b = await r.body(rollbackBody);
        r.audited({ target: b.environment });
        const principal = await access.authorize(r.req, app(r), ['release'], b.environment, await delivery.isProtected(app(r), b.environment));
        return carryOut(r, { kind: 'rollback', environment: b.environment, ref: b.to, note: b.note, deploy: b.deploy }, principal.name);
      },
    },
  ];
}
