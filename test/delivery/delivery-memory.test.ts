// The release workflow as a domain service over an in-memory metadata store: no HTTP server, no data directory.
// Release, promote and rollback move the environment's tag with their release row; a deferred release waits for
// its deployment; a concurrent change of the environment makes a release fail whole.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Delivery } from '../../src/delivery/releases.js';
import { TagRules } from '../../src/delivery/tag-rules.js';
import { openSqlite } from '../../src/metadata/sqlite.js';
import type { MetadataStore } from '../../src/metadata/store.js';
import { digestOf } from '../../src/oci/digest.js';
import { RegistryError } from '../../src/oci/errors.js';

const APP = 'team/app';

async function pushManifest(meta: MetadataStore, tag: string, seed: string): Promise<string> {
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [], annotations: { seed } }));
  const digest = digestOf(body);
  await meta.registry.putManifest(APP, { digest, mediaType: 'application/vnd.oci.image.index.v1+json', artifactType: null, subjectDigest: null, body, blobs: [], children: [] }, tag, 'ci');
  return digest;
}

describe('delivery over an in-memory metadata store', () => {
  let meta: MetadataStore;
  let deferred = false;
  let delivery: Delivery;
  let one: string;
  let two: string;

  before(async () => {
    meta = await openSqlite(':memory:');
    delivery = new Delivery(meta.registry, meta.delivery, meta, { defers: async () => deferred });
    one = await pushManifest(meta, '1.0.0', 'one');
    two = await pushManifest(meta, '2.0.0', 'two');
    await delivery.createEnvironment(APP, 'staging');
    await delivery.createEnvironment(APP, 'production', { requiresPromotionFrom: 'staging' });
  });
  after(() => meta.close());

  it('release, promote and rollback each record a release and move APP:ENV with it', async () => {
    const r1 = await delivery.release(APP, 'staging', '1.0.0', { actor: 'alice' });
    assert.equal(r1.digest, one);
    assert.equal(r1.version, '1.0.0');
    assert.equal(await meta.registry.tagDigest(APP, 'staging'), one);
    const p = await delivery.promote(APP, 'staging', 'production', { actor: 'bob' });
    assert.equal(p.promotedFrom, r1.id);
    assert.equal(await meta.registry.tagDigest(APP, 'production'), one);

    const r2 = await delivery.release(APP, 'staging', two, { actor: 'alice' });
    assert.equal(r2.replaces, r1.id);
    assert.equal(r2.version, '2.0.0', 'the version tag pointing at the digest');
    assert.equal(await meta.registry.tagDigest(APP, 'staging'), two);
    const back = await delivery.rollback(APP, 'staging', { actor: 'carol' });
    assert.equal(back.kind, 'rollback');
    assert.equal(back.digest, one);
    assert.equal(await meta.registry.tagDigest(APP, 'staging'), one);

    const history = await meta.registry.tagHistory(APP, 'staging');
    assert.deepEqual(
      history.map((h) => [h.newDigest, h.actor]),
      [
        [one, 'carol'],
        [two, 'alice'],
        [one, 'alice'],
      ],
    );
    assert.deepEqual((await delivery.releases(APP, 'staging')).map((r) => r.kind), ['rollback', 'release', 'release']);
  });

  it('an environment tag is reserved: the tag rules refuse moving it by hand', async () => {
    const rules = new TagRules(meta.delivery);
    await assert.rejects(meta.registry.moveTag(APP, 'staging', two, 'mallory', rules.guard), (e) => e instanceof RegistryError && e.code === 'DENIED' && /reserved/.test(e.message));
    assert.equal(await meta.registry.tagDigest(APP, 'staging'), one);
  });

  it('a deferred release waits as pending, and becomes current (its tag moving) when deployed', async () => {
    deferred = true;
    try {
      const r = await delivery.release(APP, 'staging', '2.0.0', { actor: 'alice' });
      assert.equal(r.pending, true);
      assert.equal(r.currentSince, null);
      assert.equal(await meta.registry.tagDigest(APP, 'staging'), one, 'the tag stays on what runs');
      assert.equal((await delivery.environment(APP, 'staging')).pending?.id, r.id);
      const done = await delivery.deployed(APP, 'staging', r.id, 'wharf');
      assert.notEqual(done.currentSince, null);
      assert.equal(await meta.registry.tagDigest(APP, 'staging'), two);
      assert.equal((await delivery.environment(APP, 'staging')).pending, null);
    } finally {
      deferred = false;
    }
  });

  it('a release that loses the compare-and-set writes nothing: no release row, the tag unmoved', async () => {
    const before = await delivery.releases(APP, 'staging');
    const current = (await delivery.environment(APP, 'staging')).current!;
    // Another writer moves the environment between the read of the environment and the release's transaction.
    const moving = new Delivery(meta.registry, meta.delivery, meta, {
      gates: [
        async () => {
          await delivery.rollback(APP, 'staging', { actor: 'other', to: String(before.at(-1)!.id) });
        },
      ],
    });
    await assert.rejects(moving.release(APP, 'staging', '2.0.0', { actor: 'alice' }), (e) => e instanceof RegistryError && e.code === 'CONFLICT');
    const after = await delivery.releases(APP, 'staging');
    assert.equal(after.length, before.length + 1, 'only the other writer’s rollback was recorded');
    assert.equal(after[0]!.actor, 'other');
    assert.notEqual(after[0]!.digest, current.digest);
    assert.equal(await meta.registry.tagDigest(APP, 'staging'), after[0]!.digest);
  });
});
