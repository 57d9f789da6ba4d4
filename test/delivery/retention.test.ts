// Retention: the rules themselves (pure), then policies applied by a running hub over the management API —
// newest tags kept, old untagged manifests deleted, rollback targets, referrers and index children kept.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { planRetention, type ManifestState, type RepositoryState, type RetentionPolicy } from '../../src/delivery/retention-policy.js';
import { loadConfig } from '../../src/config.js';
import { expectError, expectStatus, type Registry } from '../server/v2-harness.js';
import { api, pushImage } from './delivery-harness.js';
import { assertFsckClean, assertPullable, blobFileExists, manifestStatus, pushIndex, pushManifest, pushReferrer, startHub } from './gc-harness.js';
import { startAuthHub, basic, ADMIN_PASSWORD } from '../auth/auth-harness.js';
import { onDatabase } from '../support/database.js';

const DAY = 86_400_000;
const NOW = 1_700_000_000_000;
const d = (n: number | string) => `sha256:${String(n).padStart(64, '0')}`;

function manifest(digest: string, over: Partial<ManifestState> = {}): ManifestState {
  return { digest, subject: null, children: [], createdAt: NOW - 30 * DAY, untaggedAt: null, ...over };
}

function state(over: Partial<RepositoryState>): RepositoryState {
  return { repository: 'app', tags: [], manifests: [], protectedDigests: new Set(), reservedTags: new Set(), ...over };
}

const all = (p: Partial<RetentionPolicy>): RetentionPolicy => ({ repositories: '*', tags: '*', ...p });

describe('retention rules', () => {
  const tags = [1, 2, 3, 4, 5].map((i) => ({ name: `b${i}`, digest: d(i), pushedAt: NOW - (6 - i) * DAY }));
  const manifests = [1, 2, 3, 4, 5].map((i) => manifest(d(i)));

  it('keeps the N most recently pushed tags matching the pattern', () => {
    const plan = planRetention(state({ tags: [...tags, { name: 'latest', digest: d(1), pushedAt: NOW - 9 * DAY }], manifests }), [all({ tags: 'b*', keepLast: 2 })], NOW);
    assert.deepEqual(plan.tags.map((t) => t.tag).sort(), ['b1', 'b2', 'b3'], 'latest does not match b* and is not counted');
    assert.match(plan.tags[0]!.reason, /not among the 2 newest tags matching b\*/);
    assert.deepEqual(plan.manifests, [], 'no untagged rule: manifests stay');
  });

  it('keeps tags pushed within D, and a tag any matching policy keeps', () => {
    const within = planRetention(state({ tags, manifests }), [all({ keepWithin: 2 * DAY })], NOW);
    assert.deepEqual(within.tags.map((t) => t.tag).sort(), ['b1', 'b2', 'b3']);
    const union = planRetention(state({ tags, manifests }), [all({ keepLast: 1 }), all({ tags: 'b2', keepLast: 1 })], NOW);
    assert.deepEqual(union.tags.map((t) => t.tag).sort(), ['b1', 'b3', 'b4']);
  });

  it('never touches environment tags, nor tags of protected releases', () => {
    const plan = planRetention(
      state({ tags: [...tags, { name: 'production', digest: d(1), pushedAt: NOW - 99 * DAY }], manifests, protectedDigests: new Set([d(2)]), reservedTags: new Set(['production']) }),
      [all({ keepLast: 1 })],
      NOW,
    );
    assert.deepEqual(plan.tags.map((t) => t.tag).sort(), ['b1', 'b3', 'b4']);
  });

  it('deletes manifests untagged for longer than X, counting from when they lost their last tag', () => {
    const plan = planRetention(
      state({
        tags: [{ name: 'latest', digest: d(1), pushedAt: NOW }],
        manifests: [
          manifest(d(1)),
          manifest(d(2), { createdAt: NOW - 3 * DAY }),
          manifest(d(3), { createdAt: NOW - 1 * DAY }),
          manifest(d(4), { createdAt: NOW - 9 * DAY, untaggedAt: NOW - 1 * DAY }),
          manifest(d(5), { createdAt: NOW - 9 * DAY }),
        ],
        protectedDigests: new Set([d(5)]),
      }),
      [all({ untaggedOlderThan: 2 * DAY })],
      NOW,
    );
    assert.deepEqual(plan.manifests.map((m) => m.digest), [d(2)]);
    assert.match(plan.manifests[0]!.reason, /untagged for 3d \(policy: 2d\)/);
    assert.deepEqual(planRetention(state({ manifests: [manifest(d(2))] }), [all({ untaggedOlderThan: 2 * DAY }), all({ untaggedOlderThan: 60 * DAY })], NOW).manifests, [], 'the largest X of the matching policies decides');
  });

  it('keeps the children of a kept index and the referrers of a kept manifest, and orders deletions parents first', () => {
    const plan = planRetention(
      state({
        tags: [{ name: 'multi', digest: d('i1'), pushedAt: NOW }],
        manifests: [
          manifest(d('i1'), { children: [d('c1'), d('c2')] }),
          manifest(d('c1')),
          manifest(d('c2')),
          manifest(d('sig-c1'), { subject: d('c1') }),
          manifest(d('att-sig'), { subject: d('sig-c1') }),
          manifest(d('c3')),
          manifest(d('sig-c3'), { subject: d('c3') }),
          manifest(d('i2'), { children: [d('c3')] }),
        ],
      }),
      [all({ untaggedOlderThan: 0 })],
      NOW,
    );
    const order = plan.manifests.map((m) => m.digest);
    assert.deepEqual([...order].sort(), [d('c3'), d('i2'), d('sig-c3')].sort());
    assert.equal(order[2], d('c3'), 'the child goes after its index and its referrer');
  });

  it('deletes cosign-style tags with their subject, and counts no such tag', () => {
    const hex = d(7).slice('sha256:'.length);
    const plan = planRetention(
      state({ tags: [{ name: `sha256-${hex}.sig`, digest: d(8), pushedAt: NOW - 50 * DAY }, { name: 'keep', digest: d(9), pushedAt: NOW }], manifests: [manifest(d(7)), manifest(d(8)), manifest(d(9))] }),
      [all({ keepLast: 1, untaggedOlderThan: DAY })],
      NOW,
    );
    assert.deepEqual(plan.manifests.map((m) => m.digest), [d(7)]);
    assert.deepEqual(plan.tags.map((t) => t.tag), [`sha256-${hex}.sig`]);
  });
});

describe('retention policies in a running hub', () => {
  let r: Registry;
  before(async () => {
    r = await startHub(
      [
        'gc:',
        '  grace: 0',
        '  keepReleases: 3',
        'retention:',
        '  - repositories: shop/*',
        '    keepLast: 1',
        '    untaggedOlderThan: 0',
        '  - repositories: refs/*',
        '    untaggedOlderThan: 0',
      ].join('\n'),
    );
  });
  after(() => r.close());

  const collect = async (dryRun = false) => (await api(r, 'POST', '/api/v1/gc', { dryRun }, 200)).body;
  const repoId = async (repo: string) => (await r.wharf.meta.registry.repositoryId(repo))!;

  it('lists the policies of the config file and manages those of the API', async () => {
    const listed = await api(r, 'GET', '/api/v1/retention/policies', undefined, 200);
    assert.deepEqual(listed.body[0], { id: null, source: 'config', repositories: 'shop/*', tags: '*', keepLast: 1, untaggedOlderThan: '0ms' });
    await expectError(await r.req('/api/v1/retention/policies', { method: 'POST', body: JSON.stringify({ repositories: 'x/*' }) }), 400, 'INVALID');
    await expectError(await r.req('/api/v1/retention/policies', { method: 'POST', body: JSON.stringify({ repositories: 'x//y', keepLast: 1 }) }), 400, 'INVALID');
    await expectError(await r.req('/api/v1/retention/policies', { method: 'POST', body: JSON.stringify({ repositories: 'x/*', keepWithin: 'soon' }) }), 400, 'INVALID');
    const added = await api(r, 'POST', '/api/v1/retention/policies', { repositories: 'tmp/*', tags: 'pr-*', keepWithin: '7d', untaggedOlderThan: 3600 }, 201);
    assert.equal(added.body.source, 'api');
    assert.equal(added.body.keepWithin, '7d');
    assert.equal(added.body.untaggedOlderThan, '1h');
    await expectStatus(await r.req(`/api/v1/retention/policies/${added.body.id}`, { method: 'DELETE' }), 204);
    await expectError(await r.req(`/api/v1/retention/policies/${added.body.id}`, { method: 'DELETE' }), 404, 'NOT_FOUND');
    assert.equal((await api(r, 'GET', '/api/v1/retention/policies')).body.length, 2);
  });

  it('keeps the N newest tags and those pushed within D days; a dry run deletes nothing', async () => {
    const repo = 'keep/app';
    for (let i = 1; i <= 6; i++) await pushImage(r, repo, `b${i}`);
    await pushImage(r, repo, 'latest', 'latest');
    const id = await repoId(repo);
    for (let i = 1; i <= 6; i++) {
      await onDatabase(r.dataDir, (db) => db.updateTable('tags').set({ updated_at: Date.now() - (7 - i) * 86_400_000 }).where('repository_id', '=', id).where('name', '=', `b${i}`).execute());
    }
    const policy = await api(r, 'POST', '/api/v1/retention/policies', { repositories: repo, tags: 'b*', keepLast: 2, keepWithin: '84h' }, 201);
    try {
      const dry = await collect(true);
      assert.deepEqual(dry.tags.map((t: any) => t.tag).sort(), ['b1', 'b2', 'b3']);
      assert.deepEqual((await api(r, 'GET', `/v2/${repo}/tags/list`)).body.tags.length, 7, 'a dry run deletes nothing');

      const run = await collect();
      assert.deepEqual(run.tags.map((t: any) => `${t.repository}:${t.tag}`).sort(), [`${repo}:b1`, `${repo}:b2`, `${repo}:b3`]);
      assert.deepEqual((await api(r, 'GET', `/v2/${repo}/tags/list`)).body.tags.sort(), ['b4', 'b5', 'b6', 'latest']);
      const history = await api(r, 'GET', `/api/v1/repositories/${repo}/tags/history?tag=b1`, undefined, 200);
      assert.equal(history.body[0].actor, 'retention');
      assert.equal(history.body[0].newDigest, null);
    } finally {
      await api(r, 'DELETE', `/api/v1/retention/policies/${policy.body.id}`, undefined, 204);
    }
  });

  it('deletes untagged manifests older than X and leaves younger ones', async () => {
    const repo = 'untagged/app';
    const old = await pushManifest(r, repo, 'old');
    const young = await pushManifest(r, repo, 'young');
    const moved = await pushImage(r, repo, 'latest', 'first');
    await pushImage(r, repo, 'latest', 'second');
    const id = await repoId(repo);
    const twoDaysAgo = Date.now() - 2 * 86_400_000;
    await onDatabase(r.dataDir, (db) => db.updateTable('manifests').set({ created_at: twoDaysAgo }).where('repository_id', '=', id).where('digest', 'in', [old.digest, moved]).execute());
    const policy = await api(r, 'POST', '/api/v1/retention/policies', { repositories: repo, untaggedOlderThan: '1d' }, 201);
    try {
      const run = await collect();
      assert.deepEqual(run.manifests.map((m: any) => m.digest), [old.digest], 'the manifest that lost its tag just now is not old yet');
      assert.equal(await manifestStatus(r, repo, old.digest), 404);
      assert.equal(await manifestStatus(r, repo, young.digest), 200);
      assert.equal(await manifestStatus(r, repo, moved), 200);

      await onDatabase(r.dataDir, (db) => db.updateTable('tag_history').set({ at: twoDaysAgo }).where('repository_id', '=', id).where('old_digest', '=', moved).execute());
      assert.deepEqual((await collect()).manifests.map((m: any) => m.digest), [moved]);
      await assertPullable(r, repo, 'latest');
    } finally {
      await api(r, 'DELETE', `/api/v1/retention/policies/${policy.body.id}`, undefined, 204);
    }
  });

  it('keeps the current and last K releases: a rollback target survives retention and GC and pulls afterwards', async () => {
    const app = 'shop/app';
    const releases: { id: number; digest: string }[] = [];
    await pushImage(r, app, 'latest', 'seed-0');
    await api(r, 'POST', `/api/v1/apps/${app}/environments`, { name: 'staging' }, 201);
    for (let i = 1; i <= 4; i++) {
      const digest = await pushImage(r, app, 'latest', `release-${i}`);
      const rel = await api(r, 'POST', `/api/v1/apps/${app}/releases`, { environment: 'staging', ref: 'latest' }, 201);
      releases.push({ id: rel.body.id, digest });
    }
    const unreleased = await pushImage(r, app, 'latest', 'unreleased');
    const head = await pushImage(r, app, 'latest', 'head');
    const [r1, r2, r3, r4] = releases as [{ id: number; digest: string }, { id: number; digest: string }, { id: number; digest: string }, { id: number; digest: string }];
    // keepReleases 3: r4 (current), r3 and r2 are protected; r1 and the images never released are not.
    const goneBlobs = JSON.parse((await (await r.req(`/v2/${app}/manifests/${r1.digest}`)).text())).layers.map((l: { digest: string }) => l.digest);

    const dry = await collect(true);
    const doomed = dry.manifests.filter((m: any) => m.repository === app).map((m: any) => m.digest).sort();
    assert.ok(doomed.includes(r1.digest) && doomed.includes(unreleased), JSON.stringify(dry.manifests));
    assert.ok(!doomed.includes(r2.digest) && !doomed.includes(r3.digest) && !doomed.includes(r4.digest));
    assert.ok(dry.blobs.some((b: any) => b.digest === goneBlobs[0]), 'the dry run lists the blobs that would go');
    assert.equal(await manifestStatus(r, app, r1.digest), 200, 'a dry run deletes nothing');
    assert.ok(await blobFileExists(r, goneBlobs[0]));

    const run = await collect();
    assert.deepEqual(run.manifests.filter((m: any) => m.repository === app).map((m: any) => m.digest).sort(), doomed);
    assert.ok(run.bytes > 0);
    assert.equal(await manifestStatus(r, app, r1.digest), 404);
    assert.equal(await blobFileExists(r, goneBlobs[0]), false, 'GC deleted the blobs only the deleted manifests had');
    for (const rel of [r2, r3, r4]) await assertPullable(r, app, rel.digest);
    await assertPullable(r, app, 'latest');
    assert.equal((await r.req(`/v2/${app}/manifests/latest`)).headers.get('docker-content-digest'), head);

    const back = await api(r, 'POST', `/api/v1/apps/${app}/rollback`, { environment: 'staging' }, 201);
    assert.equal(back.body.digest, r3.digest);
    await assertPullable(r, app, 'staging');
    const further = await api(r, 'POST', `/api/v1/apps/${app}/rollback`, { environment: 'staging', to: String(r2.id) }, 201);
    assert.equal(further.body.digest, r2.digest);
    await assertPullable(r, app, 'staging');
    const tooFar = await api(r, 'POST', `/api/v1/apps/${app}/rollback`, { environment: 'staging', to: String(r1.id) });
    assert.equal(tooFar.status, 404, 'a release beyond the K kept ones may be gone');

    // The last three releases are now the two rollbacks (to r3 and r2) and r4.
    await collect();
    for (const rel of [r2, r3, r4]) await assertPullable(r, app, rel.digest);
    await assertFsckClean(r);
  });

  it('keeps referrers and index children of kept manifests, and deletes a referrer with its subject', async () => {
    const repo = 'refs/app';
    const image = await pushManifest(r, repo, 'image', 'image');
    const sig = await pushReferrer(r, repo, image, 'signature');
    const attestation = (await pushReferrer(r, repo, sig, 'attestation-of-signature')).digest;
    const c1 = await pushManifest(r, repo, 'child-1');
    const c2 = await pushManifest(r, repo, 'child-2');
    const sbom = (await pushReferrer(r, repo, c1, 'sbom-of-child')).digest;
    await pushIndex(r, repo, [c1.body, c2.body], 'multi');
    const lone = await pushManifest(r, repo, 'lone');
    const loneSig = (await pushReferrer(r, repo, lone, 'lone-signature')).digest;
    const cosignSig = (await pushManifest(r, repo, 'cosign-sig', `sha256-${lone.digest.slice(7)}.sig`)).digest;
    const c3 = await pushManifest(r, repo, 'child-3');
    const orphanIndex = await pushIndex(r, repo, [c3.body]);

    const run = await collect();
    const deleted = run.manifests.filter((m: any) => m.repository === repo).map((m: any) => m.digest);
    assert.deepEqual([...deleted].sort(), [lone.digest, loneSig, orphanIndex, c3.digest].sort());
    assert.ok(deleted.indexOf(loneSig) < deleted.indexOf(lone.digest), 'a referrer goes before its subject');
    assert.ok(deleted.indexOf(orphanIndex) < deleted.indexOf(c3.digest), 'an index goes before its child');
    assert.deepEqual(run.tags.filter((t: any) => t.repository === repo).map((t: any) => t.tag), [`sha256-${lone.digest.slice(7)}.sig`]);
    for (const kept of [image.digest, sig.digest, attestation, c1.digest, c2.digest, sbom, 'multi']) await assertPullable(r, repo, kept);
    const referrers = await api(r, 'GET', `/v2/${repo}/referrers/${image.digest}`, undefined, 200);
    assert.deepEqual(referrers.body.manifests.map((m: any) => m.digest), [sig.digest]);

    // The cosign signature lost its tag with its subject; untagged now, it goes on the next run.
    assert.deepEqual((await collect()).manifests.map((m: any) => m.digest), [cosignSig]);
    await assertFsckClean(r);
  });
});

describe('retention and gc over the API need admin', () => {
  it('refuses anonymous callers and members, serves the admin', async () => {
    const hub = await startAuthHub('auth:\n  policyRefresh: 0\n');
    try {
      await hub.accounts.addUser('writer', 'member', 'writer-password');
      await hub.accounts.grant('writer', 'pull,push,delete', '*');
      const post = (auth?: string) => hub.req('/api/v1/gc', { method: 'POST', body: '{"dryRun":true}', ...(auth ? { auth } : {}) });
      assert.equal((await post()).status, 401);
      assert.equal((await post(basic('writer', 'writer-password'))).status, 403);
      assert.equal((await hub.req('/api/v1/retention/policies', { auth: basic('writer', 'writer-password') })).status, 403);
      const ok = await post(basic('admin', ADMIN_PASSWORD));
      assert.equal(ok.status, 200, await ok.clone().text());
      assert.equal(((await ok.json()) as { dryRun: boolean }).dryRun, true);
    } finally {
      await hub.close();
    }
  });
});

describe('retention in the config file', () => {
  it('parses policies with durations and refuses a policy without a rule', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-retention-config-'));
    try {
      const file = join(dir, 'wharf.yaml');
      await writeFile(file, 'retention:\n  - repositories: team-a/*\n    tags: "v*"\n    keepLast: 5\n    keepWithin: 30d\n  - repositories: "*"\n    untaggedOlderThan: 12h\ngc:\n  interval: 6h\n');
      const config = loadConfig({ env: { WHARF_CONFIG: file } });
      assert.deepEqual(config.retention, [
        { repositories: 'team-a/*', tags: 'v*', keepLast: 5, keepWithin: 30 * DAY },
        { repositories: '*', tags: '*', untaggedOlderThan: 12 * 3_600_000 },
      ]);
      assert.deepEqual(config.gc, { interval: 6 * 3_600_000, grace: 3_600_000, keepReleases: 10 });
      await writeFile(file, 'retention:\n  - repositories: team-a/*\n    tags: "v*"\n');
      assert.throws(() => loadConfig({ env: { WHARF_CONFIG: file } }), /retention\.0: a policy needs keepLast, keepWithin or untaggedOlderThan/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
