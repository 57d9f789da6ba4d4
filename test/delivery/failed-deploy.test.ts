// Releases and deployments agree, over the HTTP API with Docker hosts in memory: in an environment with targets a
// release is pending until its deployment succeeds, and only then becomes current with its APP:ENV tag; a failed
// deployment leaves the current release (and the tag) where they were, and so does a paused one, which calls for an
// operator; a release made meanwhile stays pending.
import { pino } from 'pino';
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
  canary:
    autoDeploy: true
    targets: [canary-1]
    rollout: { failureAction: pause }
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
    // What the deploy service warns about (its records name an app and an environment).
    const log = pino({ level: 'warn' }, {
      write: (line: string) => {
        const fields = JSON.parse(line) as { app?: string; environment?: string; why: string };
        if (fields.app !== undefined && fields.environment !== undefined) warnings.push(fields);
      },
    });
    r = await startRegistry({ engines, env: { WHARF_WEBHOOK_ALLOW_TARGETS: '127.0.0.1' }, log });
    for (const v of ['1.0.0', '1.1.0', '1.2.0', 'bad']) digests[v] = await pushImage(r, APP, v);
    engines.failing.set(digests.bad!, 'boom');
    for (const name of ['staging-1', 'production-1', 'qa-1', 'canary-1']) await r.wharf.targets.add({ name, endpoint: `unix:///${name}`, apps: ['shop/*'] }, 'admin');
    await api(r, 'POST', '/api/v1/apply', { file: APP_FILE }, 200);
    await r.wharf.webhooks.addSubscription({ url: 'http://127.0.0.1:9/hook', events: ['*'] });
  });
  after(() => r.close());

  it('a release becomes current, and APP:ENV moves, only when its deployment succeeds', async () => {
    for (const v of ['1.0.0', '1.1.0']) assert.equal((await deploying(r, 'releases', { environment: 'staging', ref: v })).outcome.result.status, 'succeeded');
    const before = await current('staging');
    assert.equal(before.digest, digests['1.1.0']);
    const { release: bad, outcome } = await deploying(r, 'releases', { environment: 'staging', ref: 'bad' });
    assert.equal((bad as { pending?: boolean }).pending, true, 'the release is announced as pending');
    assert.equal(outcome.result.status, 'rolled_back');
    assert.deepEqual(running('unix:///staging-1'), [digests['1.1.0']], 'the hosts run 1.1.0 again');
    assert.equal(outcome.revert, undefined, 'nothing to revert: the failed release never became current');
    assert.equal((await current('staging')).id, before.id, 'the current release never moved');
    assert.equal(await tagged('staging'), digests['1.1.0'], 'shop/web:staging never named the failing digest');
    const env = (await api(r, 'GET', `/api/v1/apps/${APP}/environments/staging`, undefined, 200)).body;
    assert.equal(env.pending, null, 'a failed deployment leaves nothing pending');

    const list = (await api(r, 'GET', `/api/v1/apps/${APP}/releases?environment=staging`, undefined, 200)).body as any[];
    assert.deepEqual(
      list.slice(0, 2).map((x) => [x.id, x.deployment?.status ?? null, x.currentSince === null]),
      [
        [bad.id, 'rolled_back', true],
        [before.id, 'succeeded', false],
      ],
    );
    assert.match(list[0].deployment.reason, /boom/);
    assert.equal(warnings.length, 0);

    // Promotion takes what runs; a plain rollback goes to a release that ran, never to the failed one.
    const promoted = await api(r, 'POST', `/api/v1/apps/${APP}/promote`, { from: 'staging', to: 'production', deploy: false }, 201);
    assert.equal(promoted.body.digest, digests['1.1.0']);
    const manual = await api(r, 'POST', `/api/v1/apps/${APP}/rollback`, { environment: 'staging', deploy: false }, 201);
    assert.equal(manual.body.digest, digests['1.0.0']);
    assert.equal(manual.body.pending, true);
  });

  it('a release without a deployment waits, visible as pending, until deployed', async () => {
    const env = (await api(r, 'GET', `/api/v1/apps/${APP}/environments/production`, undefined, 200)).body;
    assert.equal(env.current, null);
    assert.equal(env.pending.digest, digests['1.1.0']);
    assert.equal(env.pending.pending, true);
    assert.equal(await tagged('production'), null, 'shop/web:production does not exist until something runs');
    const res = await r.req(`/api/v1/apps/${APP}/deployments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ environment: 'production' }) });
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    const outcome = lines.find((l) => l.result)!;
    assert.equal(outcome.result.status, 'succeeded');
    assert.equal(outcome.current.id, env.pending.id);
    const after = (await api(r, 'GET', `/api/v1/apps/${APP}/environments/production`, undefined, 200)).body;
    assert.deepEqual([after.current.id, after.pending], [env.pending.id, null]);
    assert.equal(await tagged('production'), digests['1.1.0']);
  });

  it('a first deployment that fails leaves nothing current, and there is nothing to promote', async () => {
    const { outcome } = await deploying(r, 'releases', { environment: 'qa', ref: 'bad' });
    assert.equal(outcome.result.status, 'failed', 'nothing ran before, so nothing was rolled back');
    assert.equal(outcome.revert, undefined);
    const env = (await api(r, 'GET', `/api/v1/apps/${APP}/environments/qa`, undefined, 200)).body;
    assert.deepEqual([env.current, env.pending], [null, null]);
    assert.deepEqual(running('unix:///qa-1'), []);
    await api(r, 'POST', `/api/v1/apps/${APP}/environments`, { name: 'demo' }, 201);
    const refused = await api(r, 'POST', `/api/v1/apps/${APP}/promote`, { from: 'qa', to: 'demo' });
    assert.equal(refused.status, 404);
    assert.match(errorMessage(refused.body), /qa has no release to promote/);
  });

  it('a paused deployment leaves the current release and APP:ENV where they were, and calls for an operator', async () => {
    assert.equal((await deploying(r, 'releases', { environment: 'canary', ref: '1.0.0' })).outcome.result.status, 'succeeded');
    const before = await current('canary');
    const { outcome } = await deploying(r, 'releases', { environment: 'canary', ref: 'bad' });
    assert.equal(outcome.result.status, 'paused');
    assert.match(outcome.result.reason!, /boom/);
    assert.equal(outcome.revert, undefined);
    const env = (await api(r, 'GET', `/api/v1/apps/${APP}/environments/canary`, undefined, 200)).body;
    assert.deepEqual([env.current.id, env.pending], [before.id, null], 'the paused release neither became current nor stays pending');
    assert.equal(await tagged('canary'), digests['1.0.0'], 'shop/web:canary never named the failing digest');
    const hook = await eventually(async () => (await r.wharf.webhooks.listDeliveries()).find((d) => d.event === 'deploy.needs_operator'), 'the deploy.needs_operator webhook', 10_000);
    const payload = (await r.wharf.webhooks.delivery(hook.id)).payload as { environment: string; deployment: number; status: string };
    assert.deepEqual([payload.environment, payload.deployment, payload.status], ['canary', outcome.deployment, 'paused']);
  });

  it('a release made while a deployment runs stays pending, and is what the next deploy ships', async () => {
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
    const env = (await api(r, 'GET', `/api/v1/apps/${APP}/environments/staging`, undefined, 200)).body;
    assert.equal(env.current.digest, digests['1.1.0']);
    assert.equal(env.pending.id, meanwhile.body.id, 'the newer release is still pending');
    assert.equal(await tagged('staging'), digests['1.1.0']);
    const res = await r.req(`/api/v1/apps/${APP}/deployments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ environment: 'staging' }) });
    const done = (await res.text()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>).find((l) => l.result)!;
    assert.equal(done.result.status, 'succeeded');
    assert.equal(done.digest, digests['1.2.0']);
    assert.equal(await tagged('staging'), digests['1.2.0']);
  });
});
