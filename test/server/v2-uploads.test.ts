// /v2 blob uploads over HTTP: monolithic, POST+PUT, chunked and streamed PATCH, large concurrent bodies, final-chunk
// PUT, 416 on out-of-order chunks, status, cancel, cross-repository mount, sessions across a restart, and expiry.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  digestOf,
  expectError,
  expectStatus,
  locationPath,
  openUpload,
  pushBlob,
  registryOn,
  startRegistry,
  withQuery,
  type Registry,
} from './v2-harness.js';
import { storeVariants } from '../support/s3.js';

for (const store of storeVariants()) {
  describe(`${store.name} blob store`, { skip: store.skip }, () => {
    /** The upload sessions the store holds: session directories on disk, session records in the bucket. */
    const uploadDirs = async (reg: Registry): Promise<string[]> => {
      if (store.name === 'fs') return readdir(join(reg.dataDir, 'uploads'));
      const prefix = reg.wharf.config.storage.s3?.prefix ?? '';
  return (await store.bucket().keys(`${prefix}uploads/`)).flatMap((k) => /uploads\/([0-9a-f-]{36})\/state\.json$/.exec(k.key)?.[1] ?? []);
    };

    let r: Registry;
    registryOn(store, (started) => (r = started));

    const octets = { 'content-type': 'application/octet-stream' };

    async function blobBytes(reg: Registry, repo: string, digest: string): Promise<Buffer> {
      const res = await reg.req(`/v2/${repo}/blobs/${digest}`);
      await expectStatus(res, 200);
      return Buffer.from(await res.arrayBuffer());
    }

    function patch(reg: Registry, location: string, chunk: Buffer, start?: number): Promise<Response> {
      const headers: Record<string, string> = { ...octets };
      if (start !== undefined) headers['content-range'] = `${start}-${start + chunk.length - 1}`;
      return reg.req(locationPath(location), { method: 'PATCH', body: chunk, headers });
    }


    test('monolithic POST ?digest= answers 201 with Location and Docker-Content-Digest', async () => {
      const data = randomBytes(50_000);
      const digest = digestOf(data);
      const res = await r.req(`/v2/up/mono/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data, headers: octets });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('location'), `/v2/up/mono/blobs/${digest}`);
      assert.equal(res.headers.get('docker-content-digest'), digest);
      assert.ok((await blobBytes(r, 'up/mono', digest)).equals(data));
    });

    test('monolithic POST with the wrong digest is DIGEST_INVALID and leaves nothing behind', async () => {
      const before = await uploadDirs(r);
      const wrong = digestOf('other bytes');
      await expectError(await r.req(`/v2/up/mono-bad/blobs/uploads/?digest=${wrong}`, { method: 'POST', body: 'these bytes', headers: octets }), 400, 'DIGEST_INVALID');
      await expectError(await r.req(`/v2/up/mono-bad/blobs/${wrong}`), 404, 'BLOB_UNKNOWN');
      await expectError(await r.req(`/v2/up/mono-bad/blobs/${digestOf('these bytes')}`), 404, 'BLOB_UNKNOWN');
      await expectError(await r.req(`/v2/up/mono-bad/blobs/uploads/?digest=sha256:1234`, { method: 'POST', body: 'x', headers: octets }), 400, 'DIGEST_INVALID');
      // Nothing new is left (a directory in `before` may be a committed session's, removed after its answer).
      assert.deepEqual((await uploadDirs(r)).filter((d) => !before.includes(d)), []);
    });

    test('POST then PUT with the whole blob', async () => {
      const res = await r.req('/v2/up/putonly/blobs/uploads/', { method: 'POST' });
      assert.equal(res.status, 202);
      const location = res.headers.get('location')!;
      assert.match(location, /^\/v2\/up\/putonly\/blobs\/uploads\/[0-9a-f-]{36}$/);
      assert.equal(res.headers.get('range'), '0-0');
      assert.ok(location.endsWith(res.headers.get('docker-upload-uuid')!));
      const data = randomBytes(10_000);
      const digest = digestOf(data);
      const put = await r.req(withQuery(location, `digest=${digest}`), { method: 'PUT', body: data, headers: octets });
      assert.equal(put.status, 201);
      assert.equal(put.headers.get('location'), `/v2/up/putonly/blobs/${digest}`);
      assert.equal(put.headers.get('docker-content-digest'), digest);
      assert.ok((await blobBytes(r, 'up/putonly', digest)).equals(data));
      // The session is over.
      await expectError(await r.req(location), 404, 'BLOB_UPLOAD_UNKNOWN');
    });

    test('chunked PATCH with Content-Range, status in between, PUT without body', async () => {
      const data = randomBytes(300_000);
      const digest = digestOf(data);
      let location = await openUpload(r, 'up/chunked');
      const cuts = [0, 100_000, 250_000, data.length];
      for (let i = 0; i + 1 < cuts.length; i++) {
        const res = await patch(r, location, data.subarray(cuts[i], cuts[i + 1]), cuts[i]);
        assert.equal(res.status, 202);
        assert.equal(res.headers.get('range'), `0-${cuts[i + 1]! - 1}`);
        location = res.headers.get('location')!;
        const status = await r.req(locationPath(location));
        assert.equal(status.status, 204);
        assert.equal(status.headers.get('range'), `0-${cuts[i + 1]! - 1}`);
        assert.equal(status.headers.get('location'), location);
        assert.ok(status.headers.get('docker-upload-uuid'));
      }
      const put = await r.req(withQuery(location, `digest=${digest}`), { method: 'PUT' });
      assert.equal(put.status, 201);
      assert.ok((await blobBytes(r, 'up/chunked', digest)).equals(data));
    });

    test('streamed PATCH without Content-Range appends each body', async () => {
      const parts = [randomBytes(70_000), randomBytes(1), randomBytes(33_333)];
      const data = Buffer.concat(parts);
      let location = await openUpload(r, 'up/streamed');
      let size = 0;
      for (const part of parts) {
        const res = await patch(r, location, part);
        size += part.length;
        assert.equal(res.status, 202);
        assert.equal(res.headers.get('range'), `0-${size - 1}`);
        location = res.headers.get('location')!;
      }
      await expectStatus(await r.req(withQuery(location, `digest=${digestOf(data)}`), { method: 'PUT', headers: { 'content-length': '0' } }), 201);
      assert.ok((await blobBytes(r, 'up/streamed', digestOf(data))).equals(data));
    });

    test('large bodies from concurrent clients, whose chunks the server frees as it copies them, arrive byte for byte', async () => {
      // Several MiB each: many 64 KiB parser chunks per request, each released once it is in the worker's batch.
      const blobs = Array.from({ length: 4 }, (_, i) => randomBytes((6 << 20) + i * 4099));
      await Promise.all(
        blobs.map(async (data, i) => {
          let location = await openUpload(r, 'up/large');
          const half = data.length >> 1;
          const first = await patch(r, location, data.subarray(0, half), 0);
          await expectStatus(first, 202);
          location = first.headers.get('location')!;
          const put = await r.req(withQuery(location, `digest=${digestOf(data)}`), {
            method: 'PUT',
            body: data.subarray(half),
            headers: { ...octets, 'content-range': `${half}-${data.length - 1}` },
          });
          await expectStatus(put, 201);
          assert.ok((await blobBytes(r, 'up/large', digestOf(data))).equals(data), `blob ${i} reads back identical`);
        }),
      );
    });

    test('PUT carrying the final chunk with Content-Range', async () => {
      const data = randomBytes(4_000);
      const location = await openUpload(r, 'up/final');
      const first = await patch(r, location, data.subarray(0, 1_000), 0);
      await expectStatus(first, 202);
      const put = await r.req(withQuery(first.headers.get('location')!, `digest=${digestOf(data)}`), {
        method: 'PUT',
        body: data.subarray(1_000),
        headers: { ...octets, 'content-range': `1000-${data.length - 1}` },
      });
      assert.equal(put.status, 201);
      assert.ok((await blobBytes(r, 'up/final', digestOf(data))).equals(data));
    });

    test('out-of-order and overlapping chunks get 416 with Range and Location; the upload then goes on', async () => {
      const data = randomBytes(3_000);
      const location = await openUpload(r, 'up/order');
      // A chunk that starts past the end.
      let res = await patch(r, location, data.subarray(1_000, 2_000), 1_000);
      let err = await expectError(res, 416, 'BLOB_UPLOAD_INVALID');
      assert.match(err.message, /offset 0/);
      assert.equal(res.headers.get('range'), '0-0');
      assert.equal(res.headers.get('location'), location);
      await expectStatus(await patch(r, location, data.subarray(0, 1_000), 0), 202);
      // The same chunk again overlaps what is there.
      res = await patch(r, location, data.subarray(0, 1_000), 0);
      err = await expectError(res, 416, 'BLOB_UPLOAD_INVALID');
      assert.equal(res.headers.get('range'), '0-999');
      assert.equal(res.headers.get('location'), location);
      // Content-Range that disagrees with Content-Length.
      res = await r.req(location, { method: 'PATCH', body: data.subarray(1_000, 1_500), headers: { ...octets, 'content-range': '1000-1999' } });
      await expectError(res, 416, 'BLOB_UPLOAD_INVALID');
      // A final PUT chunk at the wrong offset.
      res = await r.req(withQuery(location, `digest=${digestOf(data)}`), { method: 'PUT', body: data.subarray(2_000), headers: { ...octets, 'content-range': '2000-2999' } });
      await expectError(res, 416, 'BLOB_UPLOAD_INVALID');
      assert.equal(res.headers.get('range'), '0-999');
      // Nothing was written by the refused requests.
      await expectStatus(await patch(r, location, data.subarray(1_000, 2_000), 1_000), 202);
      await expectStatus(await r.req(withQuery(location, `digest=${digestOf(data)}`), { method: 'PUT', body: data.subarray(2_000), headers: { ...octets, 'content-range': '2000-2999' } }), 201);
      assert.ok((await blobBytes(r, 'up/order', digestOf(data))).equals(data));
    });

    test('a second writer on a busy session is refused with 416', async () => {
      const location = await openUpload(r, 'up/busy');
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const slowBody = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(new Uint8Array([1, 2, 3]));
          await gate;
          controller.enqueue(new Uint8Array([4, 5]));
          controller.close();
        },
      });
      const slow = r.req(location, { method: 'PATCH', body: slowBody, headers: octets, duplex: 'half' });
      // Once the first request holds the session, any other writer is refused; an empty PATCH probes that
      // without changing the upload while the first request has not arrived yet.
      let probe: Response | undefined;
      for (let i = 0; i < 200; i++) {
        probe = await patch(r, location, Buffer.alloc(0));
        if (probe.status === 416) break;
        await expectStatus(probe, 202);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await expectError(probe!, 416, 'BLOB_UPLOAD_INVALID');
      await expectError(await patch(r, location, Buffer.from('intruder')), 416, 'BLOB_UPLOAD_INVALID');
      await expectError(await r.req(withQuery(location, `digest=${digestOf('x')}`), { method: 'PUT' }), 416, 'BLOB_UPLOAD_INVALID');
      release();
      const res = await slow;
      assert.equal(res.status, 202);
      assert.equal(res.headers.get('range'), '0-4');
      await expectStatus(await r.req(withQuery(location, `digest=${digestOf(Buffer.from([1, 2, 3, 4, 5]))}`), { method: 'PUT' }), 201);
    });

    test('PUT with a wrong or missing digest: DIGEST_INVALID, and a mismatch ends the session', async () => {
      const location = await openUpload(r, 'up/baddigest');
      await expectStatus(await patch(r, location, Buffer.from('content')), 202);
      await expectError(await r.req(location, { method: 'PUT' }), 400, 'DIGEST_INVALID');
      await expectError(await r.req(withQuery(location, 'digest=sha256:short'), { method: 'PUT' }), 400, 'DIGEST_INVALID');
      await expectStatus(await r.req(location), 204); // still open after a malformed request
      const wrong = digestOf('not the content');
      await expectError(await r.req(withQuery(location, `digest=${wrong}`), { method: 'PUT' }), 400, 'DIGEST_INVALID');
      await expectError(await r.req(`/v2/up/baddigest/blobs/${wrong}`), 404, 'BLOB_UNKNOWN');
      await expectError(await r.req(`/v2/up/baddigest/blobs/${digestOf('content')}`), 404, 'BLOB_UNKNOWN');
      await expectError(await r.req(location), 404, 'BLOB_UPLOAD_UNKNOWN');
      assert.ok(!(await uploadDirs(r)).includes(location.split('/').pop()!), 'no temporary data is left');
    });

    test('DELETE cancels a session; it is then unknown to every upload verb', async () => {
      const location = await openUpload(r, 'up/cancel');
      await expectStatus(await patch(r, location, Buffer.from('abandoned')), 202);
      const id = location.split('/').pop()!;
      assert.ok((await uploadDirs(r)).includes(id));
      const res = await r.req(location, { method: 'DELETE' });
      assert.equal(res.status, 204);
      assert.ok(!(await uploadDirs(r)).includes(id));
      await expectError(await r.req(location), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await patch(r, location, Buffer.from('x')), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await r.req(withQuery(location, `digest=${digestOf('abandoned')}`), { method: 'PUT' }), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await r.req(location, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await r.req('/v2/up/cancel/blobs/uploads/not-a-session'), 404, 'BLOB_UPLOAD_UNKNOWN');
    });

    test("a session belongs to its repository: another repository's URL does not reach it", async () => {
      const location = await openUpload(r, 'up/owner');
      const foreign = location.replace('/v2/up/owner/', '/v2/up/thief/');
      await expectError(await r.req(foreign), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await patch(r, foreign, Buffer.from('x')), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectError(await r.req(foreign, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
      await expectStatus(await r.req(location), 204);
    });

    test('sha512 through a chunked upload', async () => {
      const data = randomBytes(90_000);
      const digest = digestOf(data, 'sha512');
      const location = await openUpload(r, 'up/sha512');
      await expectStatus(await patch(r, location, data.subarray(0, 40_000), 0), 202);
      await expectStatus(await patch(r, location, data.subarray(40_000), 40_000), 202);
      const put = await r.req(withQuery(location, `digest=${digest}`), { method: 'PUT' });
      assert.equal(put.status, 201);
      assert.equal(put.headers.get('docker-content-digest'), digest);
      assert.ok((await blobBytes(r, 'up/sha512', digest)).equals(data));
    });

    test('cross-repository mount: 201 when the source has the blob, else a 202 session', async () => {
      const digest = await pushBlob(r, 'mount/src', 'mountable layer');
      await pushBlob(r, 'mount/other', 'unrelated');
      const res = await r.req(`/v2/mount/dst/blobs/uploads/?mount=${digest}&from=mount/src`, { method: 'POST' });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('location'), `/v2/mount/dst/blobs/${digest}`);
      assert.equal(res.headers.get('docker-content-digest'), digest);
      assert.equal((await blobBytes(r, 'mount/dst', digest)).toString(), 'mountable layer');

      const fallbacks = [
        `mount=${digest}&from=mount/unknown`, // source repository unknown
        `mount=${digest}&from=mount/other`, // source lacks the blob
        `mount=${digest}&from=Not..Valid`, // source name invalid
        `mount=${digest}`, // no source named
        `mount=sha256:nonsense&from=mount/src`, // not a digest
      ];
      for (const query of fallbacks) {
        const fb = await r.req(`/v2/mount/fallback/blobs/uploads/?${query}`, { method: 'POST' });
        assert.equal(fb.status, 202, `${query}: ${fb.status} ${await fb.clone().text()}`);
        const location = fb.headers.get('location');
        assert.match(location ?? '', /^\/v2\/mount\/fallback\/blobs\/uploads\/[0-9a-f-]{36}$/, query);
        await expectStatus(await r.req(location!), 204);
        await expectStatus(await r.req(location!, { method: 'DELETE' }), 204);
      }
      await expectError(await r.req(`/v2/mount/fallback/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
    });

    test('an upload session survives a server restart and finishes on the new server', async () => {
      const reg = await startRegistry({ env: store.env() });
      let closed = false;
      try {
        const data = randomBytes(120_000);
        const location = await openUpload(reg, 'restart/app');
        await expectStatus(await patch(reg, location, data.subarray(0, 50_000), 0), 202);
        await reg.stop();

        const again = await startRegistry({ dataDir: reg.dataDir, env: store.env() });
        try {
          const status = await again.req(location);
          assert.equal(status.status, 204);
          assert.equal(status.headers.get('range'), '0-49999');
          await expectError(await patch(again, location, data.subarray(0, 10), 0), 416, 'BLOB_UPLOAD_INVALID');
          await expectStatus(await patch(again, location, data.subarray(50_000, 100_000), 50_000), 202);
          const put = await again.req(withQuery(location, `digest=${digestOf(data)}`), {
            method: 'PUT',
            body: data.subarray(100_000),
            headers: { ...octets, 'content-range': `100000-${data.length - 1}` },
          });
          assert.equal(put.status, 201);
          assert.ok((await blobBytes(again, 'restart/app', digestOf(data))).equals(data));
        } finally {
          await again.close();
          closed = true;
        }
      } finally {
        if (!closed) await reg.close();
      }
    });

    test('sessions older than uploads.ttl expire with their data', async () => {
      const reg = await startRegistry({ env: { ...store.env(), ...(store.name === 's3' ? { WHARF_S3_PREFIX: 'expiry/' } : {}), WHARF_UPLOAD_TTL: '200ms' } });
      try {
        assert.equal(reg.wharf.config.uploads.ttl, 200);
        const old = await openUpload(reg, 'expiry/app');
        await expectStatus(await patch(reg, old, Buffer.from('old bytes')), 202);
        await new Promise((resolve) => setTimeout(resolve, 250));
        // The sweep's cutoff as the server takes it (now − ttl), taken before the young session opens: on a loaded
        // machine opening it on S3 can itself take longer than the ttl, and it would then be old too.
        const cutoff = Date.now() - reg.wharf.config.uploads.ttl;
        const young = await openUpload(reg, 'expiry/app');
        const removed = await reg.wharf.blobs.expireUploads(cutoff);
        assert.equal(removed, 1);
        await expectError(await reg.req(old), 404, 'BLOB_UPLOAD_UNKNOWN');
        await expectError(await patch(reg, old, Buffer.from('more')), 404, 'BLOB_UPLOAD_UNKNOWN');
        await expectStatus(await reg.req(young), 204);
        assert.deepEqual(await uploadDirs(reg), [young.split('/').pop()]);
      } finally {
        await reg.close();
      }
    });
  });
}
