// The audit log answers "who pushed this tag": pushes, tag moves, deletes and refused attempts are rows
// with the caller, the address, the target and the result; account changes are rows too.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { OCI_MANIFEST } from '../../src/oci/media-types.js';
import { auditRows, basic, member, pushImage, startAuthHub, type AuthHub } from '../auth/auth-harness.js';

let hub: AuthHub;
let writer: string;
let reader: string;
before(async () => {
  hub = await startAuthHub('auth:\n  policyRefresh: 0\n');
  writer = await member(hub, 'writer', 'pull,push,delete', 'shop/*');
  reader = await member(hub, 'reader', 'pull', 'shop/*');
});
after(() => hub?.close());

const rowsOf = (repository: string, n: number) => auditRows(hub, { repository }, n);

test('a push, a tag move and deletes are recorded with who, from where and what', async () => {
  const first = await pushImage(hub, writer, 'shop/web', 'v1', 'first');
  const second = await pushImage(hub, writer, 'shop/web', 'v1', 'second');
  const rows = await rowsOf('shop/web', 2);
  assert.deepEqual(
    rows.map((r) => [r.actor, r.actorKind, r.address, r.action, r.target, r.result, r.detail?.digest, r.detail?.previous ?? null]),
    [
      ['writer', 'user', '127.0.0.1', 'manifest.push', 'v1', 'ok', first.digest, null],
      ['writer', 'user', '127.0.0.1', 'tag.move', 'v1', 'ok', second.digest, first.digest],
    ],
  );
  assert.equal((await hub.req('/v2/shop/web/manifests/v1', { method: 'DELETE', auth: writer })).status, 202);
  assert.equal((await hub.req(`/v2/shop/web/manifests/${first.digest}`, { method: 'DELETE', auth: writer })).status, 202);
  const after = (await rowsOf('shop/web', 4)).slice(2);
  assert.deepEqual(after.map((r) => [r.action, r.target, r.result]), [
    ['tag.delete', 'v1', 'ok'],
    ['manifest.delete', first.digest, 'ok'],
  ]);
});

test('refused pushes and deletes are recorded as denied; bare 401 probes are not', async () => {
  const { manifest } = await pushImage(hub, writer, 'shop/api', 'v1');
  const before = (await rowsOf('shop/api', 1)).length;
  const put = (auth?: string) => hub.req('/v2/shop/api/manifests/v2', { method: "PUT", body: new Uint8Array(manifest), headers: { "content-type": OCI_MANIFEST }, auth });
  assert.equal((await put(reader)).status, 403);
  assert.equal((await hub.req('/v2/shop/api/manifests/v1', { method: 'DELETE', auth: reader })).status, 403);
  assert.equal((await put()).status, 401);
  const rows = (await rowsOf('shop/api', before + 2)).slice(before);
  assert.deepEqual(rows.map((r) => [r.actor, r.action, r.target, r.result, r.detail?.status]), [
    ['reader', 'manifest.push', 'v2', 'denied', 403],
    ['reader', 'tag.delete', 'v1', 'denied', 403],
  ]);
});

test('a robot token is named as the actor', async () => {
  const { secret } = await hub.accounts.createToken('ci', ['repository:shop/*:pull,push']);
  const { digest } = await pushImage(hub, basic('ci', secret), 'shop/worker', 'v7');
  const [row] = await rowsOf('shop/worker', 1);
  assert.deepEqual([row!.actor, row!.actorKind, row!.action, row!.target, row!.detail?.digest], ['ci', 'token', 'manifest.push', 'v7', digest]);
});

test('account changes are recorded with the local operator', async () => {
  const rows = await hub.audit.list();
  const changes = rows.filter((r) => r.actorKind === 'local').map((r) => [r.actor, r.action, r.target]);
  for (const expected of [
    ['wharf', 'user.add', 'admin'],
    ['tester', 'user.add', 'writer'],
    ['tester', 'grant.add', 'writer'],
    ['tester', 'token.create', 'ci'],
  ]) {
    assert.ok(changes.some((c) => JSON.stringify(c) === JSON.stringify(expected)), `missing ${expected.join(' ')} in ${JSON.stringify(changes)}`);
  }
  const grant = rows.find((r) => r.action === 'grant.add' && r.target === 'writer');
  assert.deepEqual(grant?.detail, { pattern: 'shop/*', actions: ['pull', 'push', 'delete'] });
  assert.ok(!JSON.stringify(rows).includes('writer-password'), 'no password ever reaches the audit log');
});
