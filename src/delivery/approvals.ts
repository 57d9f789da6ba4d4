// Second-person approval of releases, promotions and rollbacks (`requiresApproval: true`): the operation is
// recorded as a pending request, and only another person's `wharf approve` carries it out — as the requester's
// operation, its note saying who approved it. The approver needs the same right as the requester (the route checks).
// A pending request can instead be denied — by another person with that right, or withdrawn by the requester —
// and is then never carried out.
import { RegistryError } from '../oci/errors.js';
import type { ApprovalListQuery, ApprovalMetadata, ApprovalRow, DeliveryMetadata } from '../metadata/metadata.js';
import type { Delivery, Release, ReleaseKind } from './releases.js';

export interface ApprovalRequest {
  id: number;
  app: string;
  environment: string;
  kind: ReleaseKind;
  ref: string | null;
  from: string | null;
  note: string | null;
  deploy: boolean | null;
  requestedBy: string | null;
  requestedAt: string;
  status: 'pending' | 'approved' | 'denied';
  approvedBy: string | null;
  approvedAt: string | null;
  deniedBy: string | null;
  deniedAt: string | null;
  release: number | null;
}

export interface Operation {
  kind: ReleaseKind;
  environment: string;
  ref?: string;
  from?: string;
  note?: string;
  deploy?: boolean;
}

function toRequest(app: string, r: ApprovalRow): ApprovalRequest {
  return {
    id: Number(r.id),
    app,
    environment: r.environment,
    kind: r.kind,
    ref: r.ref,
    from: r.from_environment,
    note: r.note,
    deploy: r.deploy === null ? null : r.deploy === 1,
    requestedBy: r.requested_by,
    requestedAt: new Date(Number(r.requested_at)).toISOString(),
    status: r.status,
    // One pair of columns holds whoever decided: an approval's approver, a denial's denier.
    approvedBy: r.status === 'approved' ? r.approved_by : null,
    approvedAt: r.status === 'approved' && r.approved_at !== null ? new Date(Number(r.approved_at)).toISOString() : null,
    deniedBy: r.status === 'denied' ? r.approved_by : null,
    deniedAt: r.status === 'denied' && r.approved_at !== null ? new Date(Number(r.approved_at)).toISOString() : null,
    release: r.release_id === null ? null : Number(r.release_id),
  };
}

export class Approvals {
  constructor(
    private readonly delivery: Delivery,
    private readonly deliveryStore: DeliveryMetadata,
    private readonly store: ApprovalMetadata,
  ) {}

  async request(app: string, op: Operation, actor: string | null): Promise<ApprovalRequest> {
    const env = await this.deliveryStore.environment(app, op.environment);
    if (!env) throw new RegistryError('NOT_FOUND', `environment ${app}/${op.environment} does not exist`);
    const id = await this.store.create({
      environment_id: Number(env.id),
      kind: op.kind,
      ref: op.ref ?? null,
      from_environment: op.from ?? null,
      note: op.note ?? null,
      deploy: op.deploy === undefined ? null : op.deploy ? 1 : 0,
      requested_by: actor,
      requested_at: Date.now(),
    });
    return this.get(app, id);
  }

  async get(app: string, id: number): Promise<ApprovalRequest> {
    const row = await this.store.get(app, id);
    if (!row) throw new RegistryError('NOT_FOUND', `approval request ${id} of ${app} does not exist`);
    return toRequest(app, row);
  }

  /** Newest first; only pending ones unless `all`; paged by keyset (`before` a request id). */
  async list(app: string, q: ApprovalListQuery = {}): Promise<ApprovalRequest[]> {
    return (await this.store.list(app, q)).map((r) => toRequest(app, r));
  }

  /** Carries out a pending request as `approver`, who must not be the requester. */
  async approve(app: string, id: number, approver: string | null): Promise<{ request: ApprovalRequest; release: Release }> {
    const req = await this.get(app, id);
    if (req.status !== 'pending') throw decided(req);
    if (approver === null || approver === req.requestedBy) {
      throw new RegistryError('DENIED', `approval request ${id} was made by ${req.requestedBy ?? 'an anonymous caller'}: a second person must approve it`);
    }
    if (!(await this.store.claim(id, approver))) throw new RegistryError('CONFLICT', `approval request ${id} was decided meanwhile`);
    const note = `${req.note ? `${req.note}; ` : ''}approved by ${approver} (request #${id})`;
    const opts = { actor: req.requestedBy, note };
    let release: Release;
    try {
      if (req.kind === 'release') release = await this.delivery.release(app, req.environment, req.ref!, opts);
      else if (req.kind === 'promote') release = await this.delivery.promote(app, req.from!, req.environment, opts);
      else release = await this.delivery.rollback(app, req.environment, { ...opts, to: req.ref ?? undefined });
    } catch (e) {
      await this.store.unclaim(id);
      throw e;
    }
    await this.store.recordRelease(id, release.id);
    return { request: await this.get(app, id), release };
  }

  /**
   * Refuses a pending request as `by`: nothing is released. Anyone with the approver's right may (the route
   * checks), the requester too: for them it is withdrawing it.
   */
  async deny(app: string, id: number, by: string | null): Promise<ApprovalRequest> {
    const req = await this.get(app, id);
    if (req.status !== 'pending') throw decided(req);
    if (!(await this.store.deny(id, by))) throw new RegistryError('CONFLICT', `approval request ${id} was decided meanwhile`);
    return this.get(app, id);
  }
}

/** A request that was already decided cannot be decided again. */
function decided(req: ApprovalRequest): RegistryError {
  return new RegistryError(
    'CONFLICT',
    req.status === 'approved' ? `approval request ${req.id} was already approved by ${req.approvedBy ?? 'someone'}` : `approval request ${req.id} was denied by ${req.deniedBy ?? 'someone'}`,
  );
}
