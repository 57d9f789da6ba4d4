// /v2 blob pulls over HTTP: GET/HEAD, ranges, deletes, repository isolation and sha512, as the OCI
// conformance suite's pull and content-management sections exercise them.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { digestOf, expectError, expectStatus, pushBlob, registryOn, type Registry } from './v2-harness.js';
import { storeVariants } from '../support/s3.js';

for (const store of storeVariants()) {
  describe(`${store.name} blob store`, { skip: store.skip }, () => {
    let r: Registry;
    registryOn(store, (started) => (r = started));

    test('GET /v2/ answers 200 with the API version header', async () => {
      for (const path of ['/v2/', '/v2']) {
        const res = await r.req(path);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
        assert.deepEqual(await res.json(), {});
      }
      const head = await r.req('/v2/', { method: 'HEAD' });
      assert.equal(head.status, 200);
    });

    test('GET and HEAD of a pushed blob return its exact bytes, length and digest', async () => {
      const data = randomBytes(200_000);
      const digest = await pushBlob(r, 'pull/app', data);
      const res = await r.req(`/v2/pull/app/blobs/${digest}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-length'), String(data.length));
      assert.equal(res.headers.get('docker-content-digest'), digest);
      assert.equal(res.headers.get('content-type'), 'application/octet-stream');
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(data));

      const head = await r.req(`/v2/pull/app/blobs/${digest}`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(data.length));
      assert.equal(head.headers.get('docker-content-digest'), digest);
      assert.equal((await head.arrayBuffer()).byteLength, 0);
    });

    test('an unknown blob is BLOB_UNKNOWN (GET 404 JSON, HEAD 404 without body)', async () => {
      await pushBlob(r, 'pull/unknown', 'something');
      const missing = digestOf('never pushed');
      await expectError(await r.req(`/v2/pull/unknown/blobs/${missing}`), 404, 'BLOB_UNKNOWN');
      const head = await r.req(`/v2/pull/unknown/blobs/${missing}`, { method: 'HEAD' });
      assert.equal(head.status, 404);
      assert.equal((await head.arrayBuffer()).byteLength, 0);
      // An unknown repository as well.
      await expectError(await r.req(`/v2/no/such/repo/blobs/${missing}`), 404, 'BLOB_UNKNOWN');
    });

    test('Range requests get 206 with Content-Range; unsatisfiable ones 416 with the size', async () => {
      const data = Buffer.from('0123456789abcdefghij');
      const digest = await pushBlob(r, 'pull/range', data);
      const cases: [string, number, number][] = [
        ['bytes=2-5', 2, 5],
        ['bytes=15-', 15, 19],
        ['bytes=-4', 16, 19],
        ['bytes=10-999', 10, 19],
        ['bytes=0-0', 0, 0],
      ];
      for (const [range, start, end] of cases) {
        const res = await r.req(`/v2/pull/range/blobs/${digest}`, { headers: { range } });
        assert.equal(res.status, 206, range);
        assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/20`, range);
        assert.equal(res.headers.get('content-length'), String(end - start + 1), range);
        assert.equal(Buffer.from(await res.arrayBuffer()).toString(), data.subarray(start, end + 1).toString(), range);
      }
      const head = await r.req(`/v2/pull/range/blobs/${digest}`, { method: 'HEAD', headers: { range: 'bytes=4-7' } });
      assert.equal(head.status, 206);
      assert.equal(head.headers.get('content-length'), '4');
      for (const range of ['bytes=20-', 'bytes=25-30', 'bytes=5-2', 'bytes=-0', 'bytes=abc']) {
        const res = await r.req(`/v2/pull/range/blobs/${digest}`, { headers: { range } });
        assert.equal(res.status, 416, range);
        assert.equal(res.headers.get('content-range'), 'bytes */20', range);
        assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
        assert.ok(Array.isArray(((await res.json()) as { errors: unknown[] }).errors));
      }
      // A range unit the server does not know is ignored (RFC 9110 §14.2): the whole blob.
      const other = await r.req(`/v2/pull/range/blobs/${digest}`, { headers: { range: 'items=0-1' } });
      assert.equal(other.status, 200);
      assert.equal(await other.text(), data.toString());
    });

    test('an empty blob can be pushed and pulled', async () => {
      const digest = await pushBlob(r, 'pull/empty', Buffer.alloc(0));
      const res = await r.req(`/v2/pull/empty/blobs/${digest}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-length'), '0');
      assert.equal((await res.arrayBuffer()).byteLength, 0);
    });

    test('a blob pushed to a/app is BLOB_UNKNOWN in b/app', async () => {
      const digest = await pushBlob(r, 'iso/a/app', 'only for a');
      await expectStatus(await r.req(`/v2/iso/a/app/blobs/${digest}`, { method: 'HEAD' }), 200);
      await pushBlob(r, 'iso/b/app', 'b has its own blobs');
      await expectError(await r.req(`/v2/iso/b/app/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
      assert.equal((await r.req(`/v2/iso/b/app/blobs/${digest}`, { method: 'HEAD' })).status, 404);
      await expectError(await r.req(`/v2/iso/b/app/blobs/${digest}`, { method: 'DELETE' }), 404, 'BLOB_UNKNOWN');
      // b's failed delete did not take a's copy.
      await expectStatus(await r.req(`/v2/iso/a/app/blobs/${digest}`, { method: 'HEAD' }), 200);
    });

    test('DELETE of a blob unlinks it from that repository only', async () => {
      const digest = await pushBlob(r, 'del/one', 'shared bytes');
      await pushBlob(r, 'del/two', 'shared bytes');
      const res = await r.req(`/v2/del/one/blobs/${digest}`, { method: 'DELETE' });
      assert.equal(res.status, 202);
      await expectError(await r.req(`/v2/del/one/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
      await expectError(await r.req(`/v2/del/one/blobs/${digest}`, { method: 'DELETE' }), 404, 'BLOB_UNKNOWN');
      const other = await r.req(`/v2/del/two/blobs/${digest}`);
      assert.equal(other.status, 200);
      assert.equal(await other.text(), 'shared bytes');
    });

    test('sha512 blobs are stored and served under their sha512 digest', async () => {
      const data = randomBytes(70_000);
      const digest = await pushBlob(r, 'pull/sha512', data, 'sha512');
      assert.match(digest, /^sha512:[a-f0-9]{128}$/);
      const res = await r.req(`/v2/pull/sha512/blobs/${digest}`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('docker-content-digest'), digest);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(data));
      // The same bytes are not known under their sha256 digest.
      await expectError(await r.req(`/v2/pull/sha512/blobs/${digestOf(data)}`), 404, 'BLOB_UNKNOWN');
    });
  });
}
