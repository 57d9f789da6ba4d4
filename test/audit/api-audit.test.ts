// Changes made through the management API are audit rows like those made over /v2: a tag restored, the
// reserved tag of an environment moved by a release, promotion or rollback, retention's deletions, an
// attestation pushed, a refused attempt at any of them — each with who, from where, what and the result;
// and so are `wharf gc` and `wharf fsck --repair` at the terminal.
import { test, before, after } from 'node:test';
import { databaseEnv } from '../support/database.js';
import type { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AuditRecord } from '../../src/audit/audit-log.js';
import { fsckCommand } from '../../src/cli/fsck.js';
import { gcCommand } from '../../src/cli/gc.js';
import { generateKeyPairSync } from 'node:crypto';
import { IN_TOTO_PAYLOAD_TYPE, signEnvelope } from '../../src/attest/dsse.js';
import { keyIdOf } from '../../src/attest/signers.js';
import { predicateTypeOf, statementFor } from '../../src/attest/statement.js';
import { digestOf } from '../../src/oci/digest.js';
import { ADMIN_PASSWORD, auditRows, basic, member, pushImage, startAuthHub, type AuthHub, type PushedImage } from '../auth/auth-harness.js';

let hub: AuthHub;
const admin = basic('admin', ADMIN_PASSWORD);
let writer: string;
let releaser: string;
let v1: PushedImage;
let v2: PushedImage;

before(async () => {
  hub = await startAuthHub('auth:\n  policyRefresh: 0\n');
  writer = await member(hub, 'writer', 'pull,push', 'shop/*');
  releaser = await member(hub, 'releaser', 'pull,release:staging', 'shop/*');
  v1 = await pushImage(hub, writer, 'shop/web', 'v1', 'one');
  v2 = await pushImage(hub, writer, 'shop/web', 'v2', 'two');
});
after(() => hub?.close());

async function api(method: string, path: string, auth: string, body: unknown = {}): Promise<Response> {
  const res = await hub.req(path, { method, auth, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await res.arrayBuffer();
  return res;
}

/** The rows with `action` written after row `since`. */
const rowsSince = (since: number, action: string, n: number) => auditRows(hub, { action }, n, (r) => r.id > since);

const lastId = async () => (await hub.audit.list({ limit: 1 }))[0]?.id ?? 0;
const who = (r: AuditRecord) => [r.actor, r.actorKind, r.address];

test('a tag restore is a tag.move row; one refused for want of a grant is a denied row', async () => {
  const since = await lastId();
  assert.equal((await api('POST', '/api/v1/repositories/shop/web/tags/v2/restore', writer, { to: v1.digest })).status, 200);
  assert.equal((await api('POST', '/api/v1/repositories/shop/web/tags/v2/restore', releaser, { to: v2.digest })).status, 403);
  const rows = await rowsSince(since, 'tag.move', 2);
  assert.deepEqual(
    rows.map((r) => [...who(r), r.repository, r.target, r.result, r.detail?.via, r.detail?.digest ?? null, r.detail?.previous ?? null]),
    [
      ['writer', 'user', '127.0.0.1', 'shop/web', 'v2', 'ok', 'restore', v1.digest, v2.digest],
      ['releaser', 'user', '127.0.0.1', 'shop/web', 'v2', 'denied', 'restore', null, null],
    ],
  );
});

test('releases, promotions and rollbacks move the environment tag: tag.move rows, refused ones denied', async () => {
  const since = await lastId();
  for (const env of ['staging', 'production']) assert.equal((await api('POST', '/api/v1/apps/shop/web/environments', admin, { name: env })).status, 201);
  assert.equal((await api('POST', '/api/v1/apps/shop/web/releases', releaser, { environment: 'staging', ref: 'v1' })).status, 201);
  assert.equal((await api('POST', '/api/v1/apps/shop/web/releases', releaser, { environment: 'staging', ref: v2.digest })).status, 201);
  assert.equal((await api('POST', '/api/v1/apps/shop/web/rollback', releaser, { environment: 'staging' })).status, 201);
  assert.equal((await api('POST', '/api/v1/apps/shop/web/promote', releaser, { from: 'staging', to: 'production' })).status, 403, 'releaser may release to staging only');
  assert.equal((await api('POST', '/api/v1/apps/shop/web/promote', admin, { from: 'staging', to: 'production' })).status, 201);

  const environments = await rowsSince(since, 'environment.create', 2);
  assert.deepEqual(environments.map((r) => [r.actor, r.repository, r.target, r.result]), [
    ['admin', 'shop/web', 'staging', 'ok'],
    ['admin', 'shop/web', 'production', 'ok'],
  ]);
  const moves = await rowsSince(since, 'tag.move', 5);
  assert.deepEqual(
    moves.map((r) => [r.actor, r.address, r.repository, r.target, r.result, r.detail?.via, r.detail?.digest ?? null]),
    [
      ['releaser', '127.0.0.1', 'shop/web', 'staging', 'ok', 'release', v1.digest],
      ['releaser', '127.0.0.1', 'shop/web', 'staging', 'ok', 'release', v2.digest],
      ['releaser', '127.0.0.1', 'shop/web', 'staging', 'ok', 'rollback', v1.digest],
      ['releaser', '127.0.0.1', 'shop/web', 'production', 'denied', 'promote', null],
      ['admin', '127.0.0.1', 'shop/web', 'production', 'ok', 'promote', v1.digest],
    ],
  );
  assert.equal(moves[4]!.detail?.from, 'staging');
  assert.equal(typeof moves[0]!.detail?.release, 'number');
  assert.equal(moves[1]!.detail?.replaces, moves[0]!.detail?.release, 'a release names the one it replaces');
});

test('retention run over the API: each deleted tag and the run are rows by the caller; a scheduled run is the server’s', async () => {
  for (const tag of ['old-1', 'old-2', 'old-3']) await pushImage(hub, writer, 'shop/batch', tag, tag);
  const since = await lastId();
  const policy = await api('POST', '/api/v1/retention/policies', admin, { repositories: 'shop/batch', keepLast: 1 });
  assert.equal(policy.status, 201);
  assert.equal((await api('POST', '/api/v1/gc', admin, {})).status, 200);
  const deletes = await rowsSince(since, 'tag.delete', 2);
  assert.deepEqual(
    deletes.map((r) => [...who(r), r.repository, r.target, r.result, r.detail?.via]).sort((a, b) => String(a[4]).localeCompare(String(b[4]))),
    [
      ['admin', 'user', '127.0.0.1', 'shop/batch', 'old-1', 'ok', 'retention'],
      ['admin', 'user', '127.0.0.1', 'shop/batch', 'old-2', 'ok', 'retention'],
    ],
  );
  const [run] = await rowsSince(since, 'gc.run', 1);
  assert.deepEqual([run!.actor, run!.result, run!.detail?.trigger, run!.detail?.tags], ['admin', 'ok', 'api', 2]);
  const [added] = await rowsSince(since, 'retention.policy.add', 1);
  assert.deepEqual([added!.actor, added!.result, added!.detail?.repositories, added!.detail?.keepLast], ['admin', 'ok', 'shop/batch', 1]);

  await hub.wharf.gc.collect({ trigger: 'schedule' });
  const scheduled = (await rowsSince(since, 'gc.run', 2))[1]!;
  assert.deepEqual(who(scheduled), ['wharf', 'local', null]);
  assert.equal(scheduled.detail?.trigger, 'schedule');
});

test('an attestation pushed over the API is a manifest.push row', async () => {
  const key = generateKeyPairSync('ed25519');
  const publicKey = key.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  await hub.wharf.signers.add({ name: 'scanner', publicKey, apps: ['shop/*'], kinds: ['scan'], environments: ['*'] }, 'admin');
  const statement = statementFor('shop/web', v2.digest, predicateTypeOf('scan'), { scanner: 'none' });
  const envelope = signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), { keyid: keyIdOf(key.publicKey), privateKey: key.privateKey });
  const since = await lastId();
  const res = await hub.req('/api/v1/apps/shop/web/attestations', {
    method: 'POST',
    auth: writer,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ envelope }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  const { digest } = (await res.json()) as { digest: string };
  const [row] = await rowsSince(since, 'manifest.push', 1);
  assert.deepEqual([...who(row!), row!.repository, row!.target, row!.result, row!.detail?.via, row!.detail?.subject], ['writer', 'user', '127.0.0.1', 'shop/web', digest, 'ok', 'attestation', v2.digest]);
});

test('a refused refresh token is a login.failure row', async () => {
  const since = await lastId();
  const res = await hub.req('/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'not-a-token', service: 'wharf' }).toString(),
  });
  assert.equal(res.status, 401);
  const [row] = await rowsSince(since, 'login.failure', 1);
  assert.deepEqual([...who(row!), row!.result, row!.detail?.via], ['unknown', 'anonymous', '127.0.0.1', 'denied', 'refresh_token']);
});

test('wharf gc and wharf fsck --repair at the terminal are rows by the local operator', async () => {
  const since = await lastId();
  // An orphan blob file (stored, recorded nowhere) for fsck to repair.
  const orphan = Buffer.from('orphan bytes');
  const path = (hub.wharf.blobs as FsBlobStore).blobPath(digestOf(orphan));
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, orphan);
  // On PostgreSQL (WHARF_TEST_DB) the commands find the hub's database through WHARF_DB, as at a terminal.
  const db = (await databaseEnv(hub.dataDir)).WHARF_DB;
  if (db) process.env.WHARF_DB = db;
  try {
    await silenced(async () => {
      assert.equal(await gcCommand(['--data', hub.dataDir, '--grace', '1h']), 0);
      assert.equal(await fsckCommand(['--data', hub.dataDir, '--repair', '--grace', '0s']), 0);
    });
  } finally {
    delete process.env.WHARF_DB;
  }
  const [run] = await rowsSince(since, 'gc.run', 1);
  assert.deepEqual([run!.actorKind, run!.address, run!.detail?.trigger], ['local', null, 'cli']);
  const [repair] = await rowsSince(since, 'fsck.repair', 1);
  assert.deepEqual([repair!.actorKind, repair!.address], ['local', null]);
  assert.match(JSON.stringify(repair!.detail), new RegExp(`orphan-blob: ${digestOf(orphan)}`));
});

/** Runs `fn` with stdout swallowed (the CLI verbs print their reports). */
async function silenced(fn: () => Promise<void>): Promise<void> {
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = write;
  }
}
