// /v2 listings over HTTP: tags/list and _catalog (sorted, n/last, Link pagination) and the referrers API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { descriptor, digestOf, expectError, expectStatus, imageManifest, pushBlob, putManifest, startRegistry, type Registry } from './v2-harness.js';
import { OCI_EMPTY_CONFIG, OCI_INDEX, OCI_MANIFEST } from '../../src/oci/media-types.js';

let r: Registry;
before(async () => {
  r = await startRegistry();
});
after(async () => {
  await r.close();
});

/** Follows Link rel="next" from `path`, returning each page's list and Link header. */
async function pages(reg: Registry, path: string, key: 'tags' | 'repositories'): Promise<{ items: string[]; link: string | null }[]> {
  const out: { items: string[]; link: string | null }[] = [];
  let next: string | null = path;
  while (next) {
    const res: Response = await reg.req(next);
    await expectStatus(res, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await res.json()) as Record<string, string[]>;
    const link = res.headers.get('link');
    out.push({ items: body[key]!, link });
    next = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1]! : null;
    assert.ok(out.length < 50, 'pagination does not end');
  }
  return out;
}

test('tags/list is sorted lexically and paginates with n, last and Link', async () => {
  const body = await imageManifest(r, 'ls/tags');
  const tags = ['b', 'latest', 'a', 'C', '1.0', 'z_9', '_x', '1.10', '1.9'];
  for (const t of tags) await expectStatus(await putManifest(r, 'ls/tags', t, body), 201);
  const sorted = ['1.0', '1.10', '1.9', 'C', '_x', 'a', 'b', 'latest', 'z_9'];

  const all = await r.req('/v2/ls/tags/tags/list');
  assert.equal(all.headers.get('link'), null);
  assert.deepEqual(await all.json(), { name: 'ls/tags', tags: sorted });

  const paged = await pages(r, '/v2/ls/tags/tags/list?n=4', 'tags');
  assert.deepEqual(paged.map((p) => p.items), [sorted.slice(0, 4), sorted.slice(4, 8), sorted.slice(8)]);
  assert.equal(paged[0]!.link, '</v2/ls/tags/tags/list?n=4&last=C>; rel="next"');
  assert.equal(paged[2]!.link, null);
  // Exactly n left: no Link to an empty page.
  assert.deepEqual((await pages(r, '/v2/ls/tags/tags/list?n=9', 'tags')).map((p) => p.link), [null]);

  const after = await r.req('/v2/ls/tags/tags/list?last=b');
  assert.deepEqual(((await after.json()) as { tags: string[] }).tags, ['latest', 'z_9']);
  const afterN = await r.req('/v2/ls/tags/tags/list?n=1&last=1.9');
  assert.deepEqual(((await afterN.json()) as { tags: string[] }).tags, ['C']);
  assert.equal(afterN.headers.get('link'), '</v2/ls/tags/tags/list?n=1&last=C>; rel="next"');
  const zero = await r.req('/v2/ls/tags/tags/list?n=0');
  assert.deepEqual(((await zero.json()) as { tags: string[] }).tags, []);
  assert.deepEqual(((await (await r.req('/v2/ls/tags/tags/list?last=zzz')).json()) as { tags: string[] }).tags, []);

  await expectStatus(await r.req('/v2/ls/tags/manifests/C', { method: 'DELETE' }), 202);
  assert.ok(!((await (await r.req('/v2/ls/tags/tags/list')).json()) as { tags: string[] }).tags.includes('C'));
});

test('tags/list errors: unknown repository NAME_UNKNOWN, bad n refused as JSON', async () => {
  await expectError(await r.req('/v2/ls/nothing/tags/list'), 404, 'NAME_UNKNOWN');
  await pushBlob(r, 'ls/badn', 'x');
  for (const n of ['-1', 'abc', '1.5']) {
    const res = await r.req(`/v2/ls/badn/tags/list?n=${n}`);
    assert.equal(res.status, 400, n);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  }
});

test('_catalog lists repositories sorted, with n/last and Link pagination', async () => {
  const reg = await startRegistry();
  try {
    assert.deepEqual(await (await reg.req('/v2/_catalog')).json(), { repositories: [] });
    const repos = ['c/one', 'a/two', 'b', 'a/one', 'a-b', 'a.b/x'];
    for (const repo of repos) await pushBlob(reg, repo, `blob of ${repo}`);
    const sorted = ['a-b', 'a.b/x', 'a/one', 'a/two', 'b', 'c/one'];
    assert.deepEqual(await (await reg.req('/v2/_catalog')).json(), { repositories: sorted });
    const paged = await pages(reg, '/v2/_catalog?n=4', 'repositories');
    assert.deepEqual(paged.map((p) => p.items), [sorted.slice(0, 4), sorted.slice(4)]);
    assert.equal(paged[0]!.link, '</v2/_catalog?n=4&last=a%2Ftwo>; rel="next"');
    assert.deepEqual(((await (await reg.req('/v2/_catalog?last=a/two')).json()) as { repositories: string[] }).repositories, ['b', 'c/one']);
    assert.deepEqual(((await (await reg.req('/v2/_catalog?n=0')).json()) as { repositories: string[] }).repositories, []);
  } finally {
    await reg.close();
  }
});

test('referrers: OCI-Subject on PUT, the index of referrers, artifactType filter', async () => {
  const subjectBody = await imageManifest(r, 'ref/app', { seed: 'subject' });
  const subject = descriptor(subjectBody, OCI_MANIFEST);
  await expectStatus(await putManifest(r, 'ref/app', 'v1', subjectBody), 201);
  const empty = await pushBlob(r, 'ref/app', '{}');
  const sbomLayer = await pushBlob(r, 'ref/app', 'sbom contents');
  const sigConfig = await pushBlob(r, 'ref/app', 'signature config');

  const sbom = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.example.sbom',
      config: { mediaType: OCI_EMPTY_CONFIG, digest: empty, size: 2 },
      layers: [{ mediaType: 'application/json', digest: sbomLayer, size: 13 }],
      subject,
      annotations: { 'org.example.kind': 'sbom' },
    }),
  );
  const put = await putManifest(r, 'ref/app', digestOf(sbom), sbom);
  assert.equal(put.status, 201);
  assert.equal(put.headers.get('oci-subject'), subject.digest);

  // The artifact type of a referrer without artifactType is its config's media type.
  const signature = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.example.signature', digest: sigConfig, size: 16 },
      layers: [],
      subject,
    }),
  );
  await expectStatus(await putManifest(r, 'ref/app', 'sig', signature), 201);
  // An index can refer too.
  const bundle = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, artifactType: 'application/vnd.example.bundle', manifests: [], subject }));
  await expectStatus(await putManifest(r, 'ref/app', digestOf(bundle), bundle, OCI_INDEX), 201);
  // A referrer of the same subject in another repository is not listed here.
  const otherConfig = await pushBlob(r, 'ref/other', 'other config');
  const elsewhere = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.example.other', digest: otherConfig, size: 12 }, layers: [], subject });
  await expectStatus(await putManifest(r, 'ref/other', digestOf(elsewhere), elsewhere), 201);

  const res = await r.req(`/v2/ref/app/referrers/${subject.digest}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), OCI_INDEX);
  assert.equal(res.headers.get('oci-filters-applied'), null);
  const index = (await res.json()) as { schemaVersion: number; mediaType: string; manifests: Record<string, unknown>[] };
  assert.equal(index.schemaVersion, 2);
  assert.equal(index.mediaType, OCI_INDEX);
  const byDigest = new Map(index.manifests.map((m) => [m.digest, m]));
  assert.equal(byDigest.size, 3);
  assert.deepEqual(byDigest.get(digestOf(sbom)), {
    mediaType: OCI_MANIFEST,
    digest: digestOf(sbom),
    size: sbom.length,
    artifactType: 'application/vnd.example.sbom',
    annotations: { 'org.example.kind': 'sbom' },
  });
  assert.equal(byDigest.get(digestOf(signature))?.artifactType, 'application/vnd.example.signature');
  assert.equal(byDigest.get(digestOf(bundle))?.mediaType, OCI_INDEX);

  const filtered = await r.req(`/v2/ref/app/referrers/${subject.digest}?artifactType=${encodeURIComponent('application/vnd.example.sbom')}`);
  assert.equal(filtered.status, 200);
  assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
  assert.deepEqual(((await filtered.json()) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest), [digestOf(sbom)]);
  const none = await r.req(`/v2/ref/app/referrers/${subject.digest}?artifactType=application/vnd.example.none`);
  assert.deepEqual(((await none.json()) as { manifests: unknown[] }).manifests, []);

  // Deleting a referrer takes it out of the list.
  await expectStatus(await r.req(`/v2/ref/app/manifests/${digestOf(sbom)}`, { method: 'DELETE' }), 202);
  const after = (await (await r.req(`/v2/ref/app/referrers/${subject.digest}`)).json()) as { manifests: { digest: string }[] };
  assert.deepEqual(after.manifests.map((m) => m.digest).sort(), [digestOf(signature), digestOf(bundle)].sort());
});

test('referrers of an unknown subject are an empty index; a referrer may arrive before its subject', async () => {
  for (const path of [`/v2/ref/app/referrers/${digestOf('unknown subject')}`, `/v2/ref/nowhere/referrers/${digestOf('x')}`]) {
    const res = await r.req(path);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), OCI_INDEX);
    assert.deepEqual(await res.json(), { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
  }
  const config = await pushBlob(r, 'ref/early', 'early config');
  const absent = { mediaType: OCI_MANIFEST, digest: digestOf('not pushed yet'), size: 14 };
  const early = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.example.early', digest: config, size: 12 }, layers: [], subject: absent });
  const put = await putManifest(r, 'ref/early', digestOf(early), early);
  assert.equal(put.status, 201);
  assert.equal(put.headers.get('oci-subject'), absent.digest);
  const list = (await (await r.req(`/v2/ref/early/referrers/${absent.digest}`)).json()) as { manifests: { digest: string }[] };
  assert.deepEqual(list.manifests.map((m) => m.digest), [digestOf(early)]);
  await expectError(await r.req('/v2/ref/app/referrers/sha256:nope'), 400, 'DIGEST_INVALID');
  await expectError(await r.req('/v2/ref/app/referrers/latest'), 400, 'DIGEST_INVALID');
});
