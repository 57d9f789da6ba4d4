// Tag history (every create, move and delete with who and when), immutable version tags, and restore.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { expectError, imageManifest, putManifest, startRegistry, type Registry } from '../server/v2-harness.js';
import { api, errorMessage, pushImage } from './delivery-harness.js';

describe('tag history and immutability', () => {
  let r: Registry;
  before(async () => {
    r = await startRegistry();
  });
  after(() => r.close());

  it('records every create, move and delete of a tag, newest first', async () => {
    const a = await pushImage(r, 'team/api', 'latest', 'a');
    const b = await pushImage(r, 'team/api', 'latest', 'b');
    await pushImage(r, 'team/api', 'latest', 'b'); // same digest again: no change, no row
    assert.equal((await r.req('/v2/team/api/manifests/latest', { method: 'DELETE' })).status, 202);
    const h = (await api(r, 'GET', '/api/v1/repositories/team/api/tags/history?tag=latest', undefined, 200)).body as any[];
    assert.deepEqual(
      h.map((c) => [c.oldDigest, c.newDigest]),
      [
        [b, null],
        [a, b],
        [null, a],
      ],
    );
    assert.ok(h.every((c) => c.tag === 'latest' && typeof c.at === 'number'));
  });

  it('refuses to move a version tag, accepts re-pushing the same digest, and changes nothing', async () => {
    const v = await pushImage(r, 'team/api', '1.4.2', 'v1');
    const again = await putManifest(r, 'team/api', '1.4.2', await imageManifest(r, 'team/api', { seed: 'v1' }));
    assert.equal(again.status, 201);
    for (const tag of ['1.4.2']) {
      const err = await expectError(await putManifest(r, 'team/api', tag, await imageManifest(r, 'team/api', { seed: 'other' })), 403, 'DENIED');
      assert.equal(err.message, 'tag 1.4.2 is immutable');
    }
    assert.equal((await r.req('/v2/team/api/manifests/1.4.2', { method: 'HEAD' })).headers.get('docker-content-digest'), v);
    await expectError(await r.req('/v2/team/api/manifests/1.4.2', { method: 'DELETE' }), 403, 'DENIED');
    const h = (await api(r, 'GET', '/api/v1/repositories/team/api/tags/history?tag=1.4.2')).body as any[];
    assert.equal(h.length, 1, 'a refused push leaves no history row');
  });

  it('treats v-prefixed and pre-release versions as immutable, other tags as mutable', async () => {
    for (const tag of ['v2.0.0', '2.0.0-rc.1']) {
      await pushImage(r, 'team/api', tag, `${tag}-a`);
      await expectError(await putManifest(r, 'team/api', tag, await imageManifest(r, 'team/api', { seed: `${tag}-b` })), 403, 'DENIED');
    }
    for (const tag of ['main', 'sha-abc123', '2.0']) {
      await pushImage(r, 'team/api', tag, `${tag}-a`);
      await pushImage(r, 'team/api', tag, `${tag}-b`);
    }
  });

  it('restores a tag to a digest or to where it pointed at a time, recording the move', async () => {
    const a = await pushImage(r, 'team/web', 'edge', 'a');
    await new Promise((res) => setTimeout(res, 5));
    const t = Date.now();
    await new Promise((res) => setTimeout(res, 5));
    const b = await pushImage(r, 'team/web', 'edge', 'b');
    const atTime = await api(r, 'POST', '/api/v1/repositories/team/web/tags/edge/restore', { at: new Date(t).toISOString() }, 200);
    assert.deepEqual([atTime.body.digest, atTime.body.previous], [a, b]);
    const toDigest = await api(r, 'POST', '/api/v1/repositories/team/web/tags/edge/restore', { to: b }, 200);
    assert.equal(toDigest.body.digest, b);
    const h = (await api(r, 'GET', '/api/v1/repositories/team/web/tags/history?tag=edge')).body as any[];
    assert.equal(h.length, 4);
    assert.deepEqual([h[0].oldDigest, h[0].newDigest], [a, b]);
    const unknown = await api(r, 'POST', '/api/v1/repositories/team/web/tags/edge/restore', { to: `sha256:${'2'.repeat(64)}` });
    assert.equal(unknown.status, 404);
    const before = await api(r, 'POST', '/api/v1/repositories/team/web/tags/edge/restore', { at: '2001-01-01T00:00:00Z' });
    assert.equal(before.status, 404);
    assert.match(errorMessage(before.body), /did not exist/);
  });

  it('lets an explicit override move an immutable tag, and names the override in the history', async () => {
    const v = await pushImage(r, 'team/web', '3.0.0', 'x');
    const other = await pushImage(r, 'team/web', 'scratch', 'y');
    const refused = await api(r, 'POST', '/api/v1/repositories/team/web/tags/3.0.0/restore', { to: other });
    assert.equal(refused.status, 403);
    const forced = await api(r, 'POST', '/api/v1/repositories/team/web/tags/3.0.0/restore', { to: other, force: true }, 200);
    assert.deepEqual([forced.body.previous, forced.body.digest], [v, other]);
    const h = (await api(r, 'GET', '/api/v1/repositories/team/web/tags/history?tag=3.0.0')).body as any[];
    assert.match(h[0].actor, /\(override\)$/);
  });

  it('answers NAME_UNKNOWN for the history of an unknown repository', async () => {
    await expectError(await r.req('/api/v1/repositories/ghost/tags/history'), 404, 'NAME_UNKNOWN');
  });
});
