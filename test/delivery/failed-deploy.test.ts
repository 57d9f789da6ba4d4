// A failed deployment and the delivery history, over the HTTP API with Docker hosts in memory: a rolled-back
// deployment takes the environment's current release (and its tag) back with the hosts, recorded as a rollback by
// `wharf`; a release made meanwhile is never overwritten; promotion refuses a digest whose deployment failed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startRegistry, type Registry } from '../server/v2-harness.js';
import { MemoryEngines } from '../support/memory-host.js';
import { eventually } from '../webhooks/receiver.js';
import { api, errorMessage, pushImage } from './delivery-harness.js';

const APP = 'shop/web';
const APP_FILE = `app: ${APP}
rollout: { healthTimeout: 2s, monitor: 0s }
environments:
  staging:
    autoDeploy: true
    targets: [staging-1]
  production:
    requiresPromotionFrom: staging
    targets: [production-1]
  qa:
    autoDeploy: true
    targets: [qa-1]
`;

interface Outcome {
  deployment: number;
  release: number;
  result: { status: string; reason: string | null };
  revert?: { release: { id: number; digest: string; kind: string; actor: string; note: string; replaces: number } } | { skipped: string };
}

/** A release-like request that deploys: its NDJSON answer as the release and the deployment's outcome. */
async function deploying(r: Registry, path: string, body: unknown): Promise<{ release: { id: number; digest: string }; outcome: Outcome }> {
  const res = await r.req(`/api/v1/apps/${APP}/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
  assert.equal(lines.find((l) => l.error), undefined, text);
  return { release: lines.find((l) => l.release)!.release, outcome: lines.find((l) => l.result) as Outcome };
}

describe('a failed deployment in the delivery history', () => {
  let r: Registry;
  const engines = new MemoryEngines();
  const digests: Record<string, string> = {};
  const warnings: { why: string }[] = [];
  const current = async (env: string) => (await api(r, 'GET', `/api/v1/apps/${APP}/environments/${env}`, undefined, 200)).body.current as { id: number; digest: string; kind: string };
  const tagged = async (env: string) => (await r.req(`/v2/${APP}/manifests/${env}`, { method: 'HEAD' })).headers.get('docker-content-digest');
  const running = (endpoint: string) => engines.hosts.get(endpoint)!.running();

  before(async () => {
    r = await startRegistry({ engines });
    for (const v of ['1.0.0', '1.1.0', '1.2.0', 'bad']) digests[v] = await pushImage(r, APP, v);
    engines.failing.set(digests.bad!, 'boom');
    for (const name of ['staging-1', 'production-1', 'qa-1']) await r.wharf.targets.add({ name, endpoint: `unix:///${name}`, apps: ['shop/*'] }, 'admin');
    await api(r, 'POST', '/api/v1/apply', { file: APP_FILE }, 200);
    await r.wharf.webhooks.addSubscription({ url: 'http://127.0.0.1:9/hook', events: ['*'] });
    r.wharf.deploy.log = { info: () => {}, warn: (fields) => warnings.push(fields as { why: string }) };
  });
  after(() => r.close());

  it('a rolled-back deployment takes the current release and the APP:ENV tag back with the hosts', async () => {
    for (const v of ['1.0.0', '1.1.0']) assert.equal((await deploying(r, 'releases', { environment: 'staging', ref: v })).outcome.result.status, 'succeeded');
    const { release: bad, outcome } = await deploying(r, 'releases', { environment: 'staging', ref: 'bad' });
    assert.equal(outcome.result.status, 'rolled_back');
    assert.deepEqual(running('unix:///staging-1'), [digests['1.1.0']], 'the hosts run 1.1.0 again');

    assert.ok(outcome.revert && 'release' in outcome.revert, JSON.stringify(outcome.revert));
    const back = outcome.revert.release;
    assert.deepEqual([back.digest, back.kind, back.actor, back.replaces], [digests['1.1.0'], 'rollback', 'wharf', bad.id]);
    assert.match(back.note, new RegExp(`^deployment #${outcome.deployment} of release #${bad.id} failed: .*boom; rolled back$`));
    assert.deepEqual([(await current('staging')).id, (await current('staging')).digest], [back.id, digests['1.1.0']]);
    assert.equal(await tagged('staging'), digests['1.1.0'], 'shop/web:staging follows');

    // The listing shows the failed release with its deployment, and the rollback that followed it.
    const list = (await api(r, 'GET', `/api/v1/apps/${APP}/releases?environment=staging`, undefined, 200)).body as any[];
    assert.deepEqual(
      list.slice(0, 3).map((x) => [x.id, x.kind, x.actor, x.deployment?.status ?? null]),
      [
        [back.id, 'rollback', 'wharf', null],
        [bad.id, 'release', null, 'rolled_back'],
        [bad.id - 1, 'release', null, 'succeeded'],
      ],
    );
    assert.match(list[1].deployment.reason, /boom/);

    // The rollback goes out like any rollback: a release.created webhook.
    const hook = await eventually(async () => {
      const queued = await r.wharf.webhooks.listDeliveries({ event: 'release.created' });
      const bodies = await Promise.all(queued.map(async (d) => (await r.wharf.webhooks.delivery(d.id)).payload as { release: number; kind: string; actor: string }));
      return bodies.find((b) => b.release === back.id);
    }, 'the release.created webhook of the rollback');
    assert.deepEqual([hook.kind, hook.actor], ['rollback', 'wharf']);

    // Promotion takes the good release; a later manual rollback does not return to the failed one.
    const promoted = await api(r, 'POST', `/api/v1/apps/${APP}/promote`, { from: 'staging', to: 'production', deploy: false }, 201);
    assert.equal(promoted.body.digest, digests['1.1.0']);
    const manual = await api(r, 'POST', `/api/v1/apps/${APP}/rollback`, { environment: 'staging', deploy: false }, 201);
    assert.equal(manual.body.digest, digests['1.0.0']);
  });

  it('refuses to promote a digest whose latest deployment to the source failed', async () => {
    // The failed digest released again without deploying: current, but known to fail there.
    const again = await api(r, 'POST', `/api/v1/apps/${APP}/releases`, { environment: 'staging', ref: 'bad', deploy: false }, 201);
    const failed = (await api(r, 'GET', `/api/v1/apps/${APP}/deployments?environment=staging`, undefined, 200)).body[0] as { id: number; release_id: number };
    const refused = await api(r, 'POST', `/api/v1/apps/${APP}/promote`, { from: 'staging', to: 'production', deploy: false });
    assert.equal(refused.status, 403);
    assert.match(
      errorMessage(refused.body),
      new RegExp(`^promotion to ${APP}/production refused: deployment #${failed.id} of release #${failed.release_id} \\(${digests.bad}\\) to ${APP}/staging failed and was rolled back: .*boom; deploy it to staging successfully first`),
    );
    assert.notEqual(failed.release_id, again.body.id, 'the digest is what counts, not the release row');
    assert.equal(await tagged('production'), digests['1.1.0'], 'production is untouched');
  });

  it('a first deployment that fails leaves the release current, and promotion refuses it', async () => {
    const { release, outcome } = await deploying(r, 'releases', { environment: 'qa', ref: 'bad' });
    assert.equal(outcome.result.status, 'failed', 'nothing ran before, so nothing was rolled back');
    assert.equal(outcome.revert, undefined);
    assert.equal((await current('qa')).id, release.id);
    assert.deepEqual(running('unix:///qa-1'), []);
    await api(r, 'POST', `/api/v1/apps/${APP}/environments`, { name: 'demo' }, 201);
    const refused = await api(r, 'POST', `/api/v1/apps/${APP}/promote`, { from: 'qa', to: 'demo' });
    assert.equal(refused.status, 403);
    assert.match(errorMessage(refused.body), new RegExp(`deployment #${outcome.deployment} of release #${release.id} .* to ${APP}/qa failed: `));
  });

  it('never overwrites a release made while the failing deployment ran', async () => {
    await deploying(r, 'releases', { environment: 'staging', ref: '1.1.0' });
    const host = engines.hosts.get('unix:///staging-1')!;
    let pulling!: () => void;
    let resume!: () => void;
    const reached = new Promise<void>((res) => (pulling = res));
    host.onPull = () => {
      pulling();
      return new Promise<void>((res) => (resume = res));
    };
    const failing = deploying(r, 'releases', { environment: 'staging', ref: 'bad' });
    await reached;
    host.onPull = undefined;
    const meanwhile = await api(r, 'POST', `/api/v1/apps/${APP}/releases`, { environment: 'staging', ref: '1.2.0', deploy: false }, 201);
    resume();
    const { outcome } = await failing;
    assert.equal(outcome.result.status, 'rolled_back');
    assert.ok(outcome.revert && 'skipped' in outcome.revert);
    assert.match(outcome.revert.skipped, new RegExp(`is on release #${meanwhile.body.id} now, not the failed #${outcome.release}`));
    assert.equal((await current('staging')).id, meanwhile.body.id, 'the newer release stays current');
    assert.equal(await tagged('staging'), digests['1.2.0']);
    assert.ok(warnings.some((w) => w.why === (outcome.revert as { skipped: string }).skipped), 'and the server logs why');
  });
});
