// /v2 error responses: unknown routes, wrong methods, invalid names, tags and digests all answer with the
// OCI JSON error body and a 4xx status — never a 500, never plain text — and names are never normalised.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { digestOf, expectError, imageManifest, pushBlob, putManifest, startRegistry, type Registry } from './v2-harness.js';

let r: Registry;
before(async () => {
  r = await startRegistry();
});
after(async () => {
  await r.close();
});

/** A request with the path sent exactly as given (fetch would normalise dot segments and escapes). */
function raw(method: string, path: string, body?: string): Promise<{ status: number; contentType: string; body: string }> {
  const url = new URL(r.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, headers: body === undefined ? {} : { 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function expectRawError(method: string, path: string, status: number, code: string): Promise<void> {
  const res = await raw(method, path);
  assert.equal(res.status, status, `${method} ${path}: ${res.status} ${res.body}`);
  assert.match(res.contentType, /^application\/json/, `${method} ${path}`);
  assert.equal((JSON.parse(res.body) as { errors: { code: string }[] }).errors[0]!.code, code, `${method} ${path}: ${res.body}`);
}

test('unknown routes are 404 with a JSON error body', async () => {
  for (const path of ['/v2/foo', '/v2/a/unknown/thing', '/v2/a/blobs/', '/v2/a/manifests/', '/v2/_catalog/', '/nothing', '/v3/']) {
    const res = await r.req(path);
    assert.equal(res.status, 404, path);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/, path);
    const body = (await res.json()) as { errors: { code: string }[] };
    assert.ok(body.errors[0]!.code, path);
  }
});

test('a method a route does not have is 405 UNSUPPORTED', async () => {
  const d = digestOf('x');
  const cases: [string, string][] = [
    ['POST', '/v2/a/manifests/latest'],
    ['PATCH', `/v2/a/blobs/${d}`],
    ['PUT', `/v2/a/blobs/${d}`],
    ['PUT', '/v2/'],
    ['DELETE', '/v2/_catalog'],
    ['PUT', '/v2/a/tags/list'],
    ['DELETE', `/v2/a/referrers/${d}`],
    ['GET', '/v2/a/blobs/uploads/'],
  ];
  for (const [method, path] of cases) await expectError(await r.req(path, { method }), 405, 'UNSUPPORTED');
});

test('invalid repository names are NAME_INVALID on every route, and never normalised', async () => {
  const d = digestOf('x');
  for (const name of ['A', 'My/App', 'a..b', 'a_', '-a', 'a___b', 'a/-b', 'x'.repeat(256)]) {
    await expectError(await r.req(`/v2/${name}/tags/list`), 400, 'NAME_INVALID');
    await expectError(await r.req(`/v2/${name}/manifests/latest`), 400, 'NAME_INVALID');
    await expectError(await r.req(`/v2/${name}/blobs/${d}`), 400, 'NAME_INVALID');
    await expectError(await r.req(`/v2/${name}/blobs/uploads/`, { method: 'POST' }), 400, 'NAME_INVALID');
    await expectError(await r.req(`/v2/${name}/referrers/${d}`), 400, 'NAME_INVALID');
  }
  // Nothing was created under a normalised name (e.g. "a" for "A").
  assert.deepEqual(await (await r.req('/v2/_catalog')).json(), { repositories: [] });
  // Dot segments and empty segments are not folded into another repository's name.
  await pushBlob(r, 'b', 'in b');
  const body = await imageManifest(r, 'b');
  await putManifest(r, 'b', 'latest', body);
  await expectRawError('GET', '/v2/a/../b/tags/list', 400, 'NAME_INVALID');
  await expectRawError('GET', '/v2/a/%2e%2e/b/manifests/latest', 400, 'NAME_INVALID');
  await expectRawError('GET', '/v2/./b/tags/list', 400, 'NAME_INVALID');
  await expectRawError('GET', '/v2/a//b/tags/list', 400, 'NAME_INVALID');
  await expectRawError('GET', '/v2//b/tags/list', 400, 'NAME_INVALID');
});

test('malformed digests and tags are DIGEST_INVALID / TAG_INVALID', async () => {
  await pushBlob(r, 'err/app', 'x');
  for (const d of ['sha256:xyz', 'sha256:' + 'a'.repeat(63), 'notadigest', 'md5:' + 'a'.repeat(32), `SHA256:${'a'.repeat(64)}`]) {
    await expectError(await r.req(`/v2/err/app/blobs/${d}`), 400, 'DIGEST_INVALID');
    await expectError(await r.req(`/v2/err/app/blobs/${d}`, { method: 'DELETE' }), 400, 'DIGEST_INVALID');
  }
  await expectError(await r.req('/v2/err/app/manifests/sha256:xyz'), 400, 'DIGEST_INVALID');
  await expectError(await r.req('/v2/err/app/manifests/sha256:xyz', { method: 'DELETE' }), 400, 'DIGEST_INVALID');
  await expectError(await putManifest(r, 'err/app', '.bad', '{}'), 400, 'TAG_INVALID');
  await expectError(await putManifest(r, 'err/app', '.INVALID_MANIFEST_NAME', '{}'), 400, 'TAG_INVALID');
  await expectError(await putManifest(r, 'err/app', 't'.repeat(129), '{}'), 400, 'TAG_INVALID');
});

// The distribution-spec conformance suite's three specs about a reference no tag can have (pull workflow:
// GET and HEAD; content management: the same after deletes): 404 MANIFEST_UNKNOWN, as Distribution answers.
test('GET and HEAD of a manifest named by an impossible tag answer 404 MANIFEST_UNKNOWN', async () => {
  await pushBlob(r, 'err/app', 'x');
  for (const ref of ['.INVALID_MANIFEST_NAME', '-bad', 't'.repeat(129)]) {
    await expectError(await r.req(`/v2/err/app/manifests/${ref}`), 404, 'MANIFEST_UNKNOWN');
    const head = await r.req(`/v2/err/app/manifests/${ref}`, { method: 'HEAD' });
    assert.equal(head.status, 404, `HEAD ${ref}`);
  }
});

test('a page size beyond any number is cut to the bound, not a 500', async () => {
  assert.equal((await putManifest(r, 'err/paged', 'one', await imageManifest(r, 'err/paged'))).status, 201);
  for (const path of ['/v2/err/paged/tags/list?n=99999999999999999999', `/v2/err/paged/tags/list?n=${'9'.repeat(400)}`]) {
    const res = await r.req(path);
    assert.equal(res.status, 200, path);
    assert.deepEqual(((await res.json()) as { tags: string[] }).tags, ['one']);
  }
  const catalog = await r.req('/v2/_catalog?n=99999999999999999999');
  assert.equal(catalog.status, 200);
  await expectError(await r.req('/v2/err/paged/tags/list?n=1e3'), 400, 'PAGINATION_NUMBER_INVALID');
});

test('no request a client can send yields a 500, plain text or HTML', async () => {
  const long = 'x'.repeat(300);
  const paths = [
    '/v2/%',
    '/v2/%zz/tags/list',
    '/v2/a/manifests/%E0%A4%A',
    '/v2/a/blobs/%zz',
    '/v2/a/blobs/uploads/%zz',
    '/v2/a/blobs/uploads/..%2F..%2Fwharf.db',
    '/v2/a/referrers/%',
    '/v2/_catalog?n=x',
    '/v2/_catalog?n=-3',
    '/v2/a/tags/list?n=1e3',
    '/v2/a/tags/list?n=99999999999999999999',
    '/v2/_catalog?n=99999999999999999999',
    `/v2/${long}/tags/list`,
    `/v2/a/manifests/${long}`,
    '/v2/a/manifests/sha256:' + 'f'.repeat(64) + '?x=%zz',
    '/v2/a/blobs/uploads/?digest=%zz',
    '/v2/a/blobs/uploads/?mount=%zz&from=%zz',
  ];
  for (const path of paths) {
    for (const method of ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE', 'OPTIONS']) {
      const res = await raw(method, path, method === 'PUT' || method === 'PATCH' || method === 'POST' ? '{"x":1}' : undefined);
      assert.ok(res.status >= 200 && res.status < 500, `${method} ${path}: ${res.status} ${res.body}`);
      if (res.status >= 400) {
        assert.match(res.contentType, /^application\/json/, `${method} ${path}: ${res.contentType}`);
        if (method !== 'HEAD') assert.ok((JSON.parse(res.body) as { errors: unknown[] }).errors.length > 0, `${method} ${path}`);
      }
    }
  }
});
