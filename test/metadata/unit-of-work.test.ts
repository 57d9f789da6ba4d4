// One transaction across concerns: a release row, its environment's compare-and-set, the tag move and a webhook
// outbox row commit together, or none of them does.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openSqlite } from '../../src/metadata/sqlite.js';
import type { MetadataStore } from '../../src/metadata/store.js';
import { digestOf } from '../../src/oci/digest.js';

const APP = 'team/app';

describe('the unit of work', () => {
  let meta: MetadataStore;
  let digest: string;
  let environmentId: number;
  let repositoryId: number;
  let subscriptionId: number;

  before(async () => {
    meta = await openSqlite(':memory:');
    const body = Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}');
    digest = digestOf(body);
    await meta.registry.putManifest(APP, { digest, mediaType: 'application/vnd.oci.image.index.v1+json', artifactType: null, subjectDigest: null, body, blobs: [], children: [] }, 'v1');
    repositoryId = (await meta.registry.repositoryId(APP))!;
    const settings = { requiresPromotionFrom: null, protected: false, autoDeploy: false, requiresAttestations: [], requiresApproval: false };
    environmentId = Number((await meta.delivery.createEnvironment(repositoryId, 'staging', settings)).id);
    subscriptionId = (await meta.webhooks.createSubscription({ url: 'http://127.0.0.1:9/', secret: 's', events: ['*'], repository: null, createdBy: null })).id;
  });
  after(() => meta.close());

  const release = { environmentId: 0, digest: '', sourceTag: 'v1', version: null, kind: 'release' as const, actor: 'alice', note: null, replacesId: null, promotedFromId: null };
  const write = async (fail: boolean) =>
    meta.transaction(async (tx) => {
      const id = await meta.delivery.insertRelease({ ...release, repositoryId, environmentId, digest }, tx);
      assert.equal(await meta.delivery.setCurrent(environmentId, null, id, tx), true);
      await meta.registry.moveTag(APP, 'staging', digest, 'alice', undefined, tx);
      await meta.webhooks.enqueue([{ id: `d${id}`, subscriptionId, event: 'release.created', repository: APP, body: '{}' }], tx);
      // Seen inside the transaction.
      assert.equal((await meta.delivery.release(id, tx))?.digest, digest);
      if (fail) throw new Error('the caller gave up');
      return id;
    });

  it('rolls every concern back when the work throws', async () => {
    await assert.rejects(write(true), /the caller gave up/);
    assert.deepEqual(await meta.delivery.releases(APP), []);
    assert.equal((await meta.delivery.environment(APP, 'staging'))!.current_release_id, null);
    assert.equal(await meta.registry.tagDigest(APP, 'staging'), null);
    assert.deepEqual(await meta.registry.tagHistory(APP, 'staging'), []);
    assert.deepEqual(await meta.webhooks.listDeliveries(), []);
  });

  it('commits every concern together when it resolves', async () => {
    const id = await write(false);
    assert.deepEqual((await meta.delivery.releases(APP)).map((r) => Number(r.id)), [id]);
    assert.equal(Number((await meta.delivery.environment(APP, 'staging'))!.current_release_id), id);
    assert.equal(await meta.registry.tagDigest(APP, 'staging'), digest);
    assert.deepEqual((await meta.webhooks.listDeliveries()).map((d) => d.id), [`d${id}`]);
  });
});
