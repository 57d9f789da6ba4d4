// /v2 manifests over HTTP: the four media types by tag and digest, byte-identical bodies, validation
// against the repository's blobs and manifests, size limit, and deletes of tags and manifests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  descriptor,
  digestOf,
  expectError,
  expectStatus,
  imageManifest,
  pushBlob,
  putManifest,
  startRegistry,
  type Registry,
} from './v2-harness.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_SCHEMA1_SIGNED, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/media-types.js';

let r: Registry;
before(async () => {
  r = await startRegistry();
});
after(async () => {
  await r.close();
});

/** Re-serialises with unusual spacing, so a registry that re-encoded JSON would be caught. */
const oddly = (body: Buffer) => Buffer.from(`${JSON.stringify(JSON.parse(body.toString()), null, 3)}\n\n`);

async function expectManifest(repo: string, ref: string, body: Buffer, mediaType: string): Promise<void> {
  const digest = digestOf(body);
  const res = await r.req(`/v2/${repo}/manifests/${ref}`, { headers: { accept: `${OCI_MANIFEST}, ${OCI_INDEX}, ${DOCKER_MANIFEST}, ${DOCKER_MANIFEST_LIST}` } });
  assert.equal(res.status, 200, `${repo}:${ref}`);
  assert.equal(res.headers.get('content-type'), mediaType);
  assert.equal(res.headers.get('docker-content-digest'), digest);
  assert.equal(res.headers.get('content-length'), String(body.length));
  assert.ok(Buffer.from(await res.arrayBuffer()).equals(body), 'the body must come back byte-identical');
  const head = await r.req(`/v2/${repo}/manifests/${ref}`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-type'), mediaType);
  assert.equal(head.headers.get('docker-content-digest'), digest);
  assert.equal(head.headers.get('content-length'), String(body.length));
  assert.equal((await head.arrayBuffer()).byteLength, 0);
}

async function pushByDigest(repo: string, body: Buffer, mediaType: string): Promise<string> {
  const digest = digestOf(body);
  await expectStatus(await putManifest(r, repo, digest, body, mediaType), 201);
  return digest;
}

test('OCI image manifest by tag and by digest', async () => {
  const body = oddly(await imageManifest(r, 'mf/oci'));
  const res = await putManifest(r, 'mf/oci', 'v1', body, OCI_MANIFEST);
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('location'), `/v2/mf/oci/manifests/${digestOf(body)}`);
  assert.equal(res.headers.get('docker-content-digest'), digestOf(body));
  assert.equal(res.headers.get('oci-subject'), null);
  await expectManifest('mf/oci', 'v1', body, OCI_MANIFEST);
  await expectManifest('mf/oci', digestOf(body), body, OCI_MANIFEST);
});

test('Docker schema2 manifest by tag and by digest', async () => {
  const body = oddly(
    await imageManifest(r, 'mf/docker', {
      mediaType: DOCKER_MANIFEST,
      configType: 'application/vnd.docker.container.image.v1+json',
      layerType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
    }),
  );
  await expectStatus(await putManifest(r, 'mf/docker', 'latest', body, DOCKER_MANIFEST), 201);
  await expectManifest('mf/docker', 'latest', body, DOCKER_MANIFEST);
  await expectManifest('mf/docker', digestOf(body), body, DOCKER_MANIFEST);
});

test('OCI image index and Docker manifest list over pushed children', async () => {
  for (const [repo, listType, childType] of [
    ['mf/index', OCI_INDEX, OCI_MANIFEST],
    ['mf/list', DOCKER_MANIFEST_LIST, DOCKER_MANIFEST],
  ] as const) {
    const children: Record<string, unknown>[] = [];
    for (const arch of ['amd64', 'arm64']) {
      const child = await imageManifest(r, repo, { seed: arch, mediaType: childType });
      await pushByDigest(repo, child, childType);
      children.push({ ...descriptor(child, childType), platform: { os: 'linux', architecture: arch } });
    }
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: listType, manifests: children }, null, 1));
    await expectStatus(await putManifest(r, repo, 'multi', body, listType), 201);
    await expectManifest(repo, 'multi', body, listType);
    await expectManifest(repo, digestOf(body), body, listType);
  }
});

test('PUT by digest verifies the body: a mismatch is DIGEST_INVALID; sha512 references work', async () => {
  const body = await imageManifest(r, 'mf/bydigest');
  await expectError(await putManifest(r, 'mf/bydigest', digestOf('other'), body), 400, 'DIGEST_INVALID');
  await expectError(await r.req(`/v2/mf/bydigest/manifests/${digestOf(body)}`), 404, 'MANIFEST_UNKNOWN');
  await expectError(await putManifest(r, 'mf/bydigest', 'sha256:totallywrong', body), 400, 'DIGEST_INVALID');
  const digest512 = digestOf(body, 'sha512');
  const res = await putManifest(r, 'mf/bydigest', digest512, body);
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('docker-content-digest'), digest512);
  assert.equal(res.headers.get('location'), `/v2/mf/bydigest/manifests/${digest512}`);
  const got = await r.req(`/v2/mf/bydigest/manifests/${digest512}`);
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('docker-content-digest'), digest512);
  assert.ok(Buffer.from(await got.arrayBuffer()).equals(body));
});

test('a manifest may only reference blobs of its own repository: MANIFEST_BLOB_UNKNOWN otherwise', async () => {
  const body = await imageManifest(r, 'mfiso/a/app');
  await expectStatus(await putManifest(r, 'mfiso/a/app', 'v1', body), 201);
  await expectError(await putManifest(r, 'mfiso/b/app', 'v1', body), 400, 'MANIFEST_BLOB_UNKNOWN');
  await expectError(await r.req(`/v2/mfiso/b/app/manifests/${digestOf(body)}`), 404, 'MANIFEST_UNKNOWN');
  // A layer that was never pushed anywhere.
  const manifest = JSON.parse(body.toString()) as { layers: unknown[] };
  manifest.layers.push(descriptor('never pushed', 'application/vnd.oci.image.layer.v1.tar'));
  const err = await expectError(await putManifest(r, 'mfiso/a/app', 'v2', JSON.stringify(manifest)), 400, 'MANIFEST_BLOB_UNKNOWN');
  assert.match(err.message, new RegExp(digestOf('never pushed')));
  // Once b mounts the blobs, the same manifest is accepted there.
  const parsed = JSON.parse(body.toString()) as { config: { digest: string }; layers: { digest: string }[] };
  for (const d of [parsed.config.digest, ...parsed.layers.map((l) => l.digest)]) {
    await expectStatus(await r.req(`/v2/mfiso/b/app/blobs/uploads/?mount=${d}&from=mfiso/a/app`, { method: 'POST' }), 201);
  }
  await expectStatus(await putManifest(r, 'mfiso/b/app', 'v1', body), 201);
});

test('an index must reference manifests of its own repository', async () => {
  const child = await imageManifest(r, 'mfidx/a', { seed: 'child' });
  const childDigest = await pushByDigest('mfidx/a', child, OCI_MANIFEST);
  const index = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [descriptor(child, OCI_MANIFEST)] });
  await expectStatus(await putManifest(r, 'mfidx/a', 'all', index, OCI_INDEX), 201);
  await expectError(await putManifest(r, 'mfidx/b', 'all', index, OCI_INDEX), 400, 'MANIFEST_BLOB_UNKNOWN');
  const unknownChild = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{ mediaType: OCI_MANIFEST, digest: childDigest, size: child.length }, { mediaType: OCI_MANIFEST, digest: digestOf('ghost'), size: 5 }],
  });
  const err = await expectError(await putManifest(r, 'mfidx/a', 'broken', unknownChild, OCI_INDEX), 400, 'MANIFEST_BLOB_UNKNOWN');
  assert.match(err.message, new RegExp(digestOf('ghost')));
  // A blob is not a manifest: an index cannot point at a layer.
  const layer = await pushBlob(r, 'mfidx/a', 'just a layer');
  const blobAsChild = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: layer, size: 12 }] });
  await expectError(await putManifest(r, 'mfidx/a', 'blobchild', blobAsChild, OCI_INDEX), 400, 'MANIFEST_BLOB_UNKNOWN');
});

test('invalid manifests are MANIFEST_INVALID; schema1 is refused with a clear message', async () => {
  const good = await imageManifest(r, 'mf/invalid');
  await expectError(await putManifest(r, 'mf/invalid', 'x', '{"schemaVersion": 2,'), 400, 'MANIFEST_INVALID');
  await expectError(await putManifest(r, 'mf/invalid', 'x', good, DOCKER_MANIFEST), 400, 'MANIFEST_INVALID');
  const noConfig = JSON.parse(good.toString()) as Record<string, unknown>;
  delete noConfig.config;
  await expectError(await putManifest(r, 'mf/invalid', 'x', JSON.stringify(noConfig)), 400, 'MANIFEST_INVALID');
  const schema1 = JSON.stringify({ schemaVersion: 1, name: 'mf/invalid', tag: 'x', architecture: 'amd64', fsLayers: [], history: [], signatures: [] });
  const err = await expectError(await putManifest(r, 'mf/invalid', 'x', schema1, DOCKER_SCHEMA1_SIGNED), 400, 'MANIFEST_INVALID');
  assert.match(err.message, /schema1/);
  await expectError(await r.req('/v2/mf/invalid/manifests/x'), 404, 'MANIFEST_UNKNOWN');
});

test('manifests over 4 MiB are refused with 413; one of exactly 4 MiB is accepted', async () => {
  const base = JSON.parse((await imageManifest(r, 'mf/big')).toString()) as Record<string, unknown>;
  const sized = (n: number) => {
    const withPad = (pad: string) => Buffer.from(JSON.stringify({ ...base, annotations: { pad } }));
    return withPad('p'.repeat(n - withPad('').length));
  };
  const limit = 4 * 1024 * 1024;
  const atLimit = sized(limit);
  assert.equal(atLimit.length, limit);
  await expectStatus(await putManifest(r, 'mf/big', 'limit', atLimit), 201);
  const over = sized(limit + 1);
  const res = await putManifest(r, 'mf/big', 'over', over);
  assert.equal(res.status, 413, await res.clone().text());
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.ok(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code);
  await expectError(await r.req('/v2/mf/big/manifests/over'), 404, 'MANIFEST_UNKNOWN');
  // Also when the client streams the body without announcing its length.
  const chunked = await r.req('/v2/mf/big/manifests/over', {
    method: 'PUT',
    headers: { 'content-type': OCI_MANIFEST },
    body: new ReadableStream({
      start(c) {
        c.enqueue(over);
        c.close();
      },
    }),
    duplex: 'half',
  });
  assert.equal(chunked.status, 413);
});

test('a tag moves to the manifest last pushed under it', async () => {
  const one = await imageManifest(r, 'mf/move', { seed: 'one' });
  const two = await imageManifest(r, 'mf/move', { seed: 'two' });
  await expectStatus(await putManifest(r, 'mf/move', 'stable', one), 201);
  await expectStatus(await putManifest(r, 'mf/move', 'stable', two), 201);
  await expectManifest('mf/move', 'stable', two, OCI_MANIFEST);
  await expectManifest('mf/move', digestOf(one), one, OCI_MANIFEST);
});

test('DELETE of a tag removes only the tag', async () => {
  const body = await imageManifest(r, 'mf/deltag');
  await expectStatus(await putManifest(r, 'mf/deltag', 'a', body), 201);
  await expectStatus(await putManifest(r, 'mf/deltag', 'b', body), 201);
  const res = await r.req('/v2/mf/deltag/manifests/a', { method: 'DELETE' });
  assert.equal(res.status, 202);
  await expectError(await r.req('/v2/mf/deltag/manifests/a'), 404, 'MANIFEST_UNKNOWN');
  await expectManifest('mf/deltag', 'b', body, OCI_MANIFEST);
  await expectManifest('mf/deltag', digestOf(body), body, OCI_MANIFEST);
  assert.deepEqual(await (await r.req('/v2/mf/deltag/tags/list')).json(), { name: 'mf/deltag', tags: ['b'] });
  await expectError(await r.req('/v2/mf/deltag/manifests/a', { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
});

test('DELETE by digest removes the manifest and the tags pointing at it', async () => {
  const body = await imageManifest(r, 'mf/deldigest', { seed: 'gone' });
  const keep = await imageManifest(r, 'mf/deldigest', { seed: 'kept' });
  await expectStatus(await putManifest(r, 'mf/deldigest', 'x', body), 201);
  await expectStatus(await putManifest(r, 'mf/deldigest', 'y', body), 201);
  await expectStatus(await putManifest(r, 'mf/deldigest', 'z', keep), 201);
  const res = await r.req(`/v2/mf/deldigest/manifests/${digestOf(body)}`, { method: 'DELETE' });
  assert.equal(res.status, 202);
  await expectError(await r.req(`/v2/mf/deldigest/manifests/${digestOf(body)}`), 404, 'MANIFEST_UNKNOWN');
  await expectError(await r.req('/v2/mf/deldigest/manifests/x'), 404, 'MANIFEST_UNKNOWN');
  assert.deepEqual(await (await r.req('/v2/mf/deldigest/tags/list')).json(), { name: 'mf/deldigest', tags: ['z'] });
  await expectError(await r.req(`/v2/mf/deldigest/manifests/${digestOf(body)}`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
  // The blobs stay readable: deleting a manifest does not delete layers.
  const layer = (JSON.parse(body.toString()) as { layers: { digest: string }[] }).layers[0]!.digest;
  await expectStatus(await r.req(`/v2/mf/deldigest/blobs/${layer}`, { method: 'HEAD' }), 200);
});

test('unknown manifests: MANIFEST_UNKNOWN by tag and digest, HEAD 404 without body', async () => {
  await expectError(await r.req('/v2/mf/none/manifests/latest'), 404, 'MANIFEST_UNKNOWN');
  await expectError(await r.req(`/v2/mf/none/manifests/${digestOf('none')}`), 404, 'MANIFEST_UNKNOWN');
  const head = await r.req('/v2/mf/none/manifests/latest', { method: 'HEAD' });
  assert.equal(head.status, 404);
  assert.equal((await head.arrayBuffer()).byteLength, 0);
  // A manifest of one repository is unknown in another.
  const body = await imageManifest(r, 'mf/mine');
  await expectStatus(await putManifest(r, 'mf/mine', 'v1', body), 201);
  await expectError(await r.req(`/v2/mf/yours/manifests/${digestOf(body)}`), 404, 'MANIFEST_UNKNOWN');
  await expectError(await r.req('/v2/mf/yours/manifests/v1'), 404, 'MANIFEST_UNKNOWN');
});
