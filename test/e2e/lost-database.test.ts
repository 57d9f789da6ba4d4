// A lost database next to stored blobs: after kill -9, deleting the SQLite -wal file takes every change since the
// last checkpoint with it. `wharf serve` must then refuse to start (saying how to recover) without touching the
// database, start normally once the -wal is put back, and start over only when told to with --init.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, dropTestDatabase, onPostgres, postgresMissing } from '../support/database.js';
import { openPostgres } from '../../src/metadata/postgres.js';
import pg from 'pg';
import { runWharf, startWharf, type WharfServer } from '../support/server.js';
import { sha256 } from '../support/registry-client.js';

async function pushBlob(s: WharfServer, repo: string, data: Buffer): Promise<number> {
  const res = await fetch(`${s.url}/v2/${repo}/blobs/uploads/?digest=${sha256(data)}`, {
    method: 'POST',
    headers: { authorization: s.authorization, 'content-type': 'application/octet-stream' },
    body: new Uint8Array(data),
  });
  await res.arrayBuffer();
  return res.status;
}

async function blobStatus(s: WharfServer, repo: string, digest: string): Promise<number> {
  const res = await fetch(`${s.url}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: { authorization: s.authorization } });
  return res.status;
}

// SQLite's by nature: the database is a file (and its -wal) in the data directory, lost with it. A PostgreSQL database
// lives elsewhere and is restored by its own tools: its case (an empty database beside stored blobs) is the next test.
const sqliteOnly = onPostgres ? 'the lost database here is a deleted SQLite -wal file in the data directory; PostgreSQL keeps none there' : false;

test('an emptied database beside stored blobs is refused; restoring the -wal recovers; --init starts over', { timeout: 120_000, skip: sqliteOnly }, async () => {
  const work = await mkdtemp(join(tmpdir(), 'wharf-test-lost-db-'));
  const dataDir = join(work, 'data');
  const db = join(dataDir, 'wharf.db');
  let server: WharfServer | undefined;
  try {
    // A first clean start and stop: the schema and the admin are checkpointed into wharf.db itself.
    server = await startWharf({ dataDir });
    await server.stop();
    server = await startWharf({ dataDir });
    const data = randomBytes(200_000);
    assert.equal(await pushBlob(server, 'keep/app', data), 201);
    await server.kill('SIGKILL');
    const savedWal = join(work, 'wharf.db-wal.saved');
    await copyFile(`${db}-wal`, savedWal);
    await rm(`${db}-wal`);
    const before = await readFile(db);

    const refused = await startWharf({ dataDir }).then(
      (s) => s,
      (e: Error) => e,
    );
    if (!(refused instanceof Error)) {
      server = refused;
      assert.fail('wharf serve started on a database that lost every blob');
    }
    assert.match(refused.message, /exited with 1/);
    assert.match(refused.message, /refusing to start: the database .*wharf\.db records no blob, but the blob store holds blobs/);
    assert.match(refused.message, /wharf\.db-wal/);
    assert.match(refused.message, /--init/);
    assert.ok((await readFile(db)).equals(before), 'a refused start must leave the database exactly as it was');
    // The local account verbs refuse it too, before they migrate or write anything.
    const userAdd = await runWharf(['user', 'add', 'someone', '--password-stdin', '--data', dataDir], { input: 'someone-password' });
    assert.equal(userAdd.code, 1, userAdd.stdout + userAdd.stderr);
    assert.match(userAdd.stderr, /^wharf user: refusing to open the data: the database .*wharf\.db records no blob, but the blob store holds blobs/);
    assert.ok((await readFile(db)).equals(before), 'a refused `wharf user add` must leave the database exactly as it was');
    const fsck = await runWharf(['fsck', '--repair', '--data', dataDir]);
    assert.equal(fsck.code, 1, 'fsck --repair must not treat every blob as an orphan either');
    assert.match(fsck.stderr, /records no blob/);

    // Recovery: the -wal is put back.
    await copyFile(savedWal, `${db}-wal`);
    server = await startWharf({ dataDir });
    assert.equal(await blobStatus(server, 'keep/app', sha256(data)), 200);
    await server.kill('SIGKILL');

    // Starting over on purpose.
    await rm(`${db}-wal`);
    server = await startWharf({ dataDir, args: ['--init'] });
    assert.equal(await blobStatus(server, 'keep/app', sha256(data)), 404);
    await server.stop();
    server = undefined;
  } finally {
    await server?.kill('SIGKILL');
    await rm(work, { recursive: true, force: true });
  }
});

test('a new data directory and one with an intact database start as before', { timeout: 60_000 }, async () => {
  const work = await mkdtemp(join(tmpdir(), 'wharf-test-lost-db-'));
  const dataDir = join(work, 'data');
  let server: WharfServer | undefined;
  try {
    server = await startWharf({ dataDir });
    const data = randomBytes(1000);
    assert.equal(await pushBlob(server, 'keep/app', data), 201);
    await server.kill('SIGKILL'); // the -wal stays: nothing is lost
    server = await startWharf({ dataDir });
    assert.equal(await blobStatus(server, 'keep/app', sha256(data)), 200);
    await server.stop();
    server = undefined;
  } finally {
    await server?.kill('SIGKILL');
    await rm(work, { recursive: true, force: true });
  }
});

test('an empty PostgreSQL database beside stored blobs is refused; the right database starts; --init starts over', { timeout: 120_000, skip: onPostgres ? postgresMissing() : 'runs in the PostgreSQL run of the suite (WHARF_TEST_DB=postgres)' }, async () => {
  const work = await mkdtemp(join(tmpdir(), 'wharf-test-lost-pg-'));
  const dataDir = join(work, 'data');
  const databases: string[] = [];
  const migrated = async () => {
    const url = await createTestDatabase();
    databases.push(url);
    await (await openPostgres(url, { poolSize: 1, migrate: true })).close();
    return url;
  };
  const rowsOf = async (url: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ users: string; blobs: string }>('select (select count(*) from users) as users, (select count(*) from blobs) as blobs');
      return { users: Number(rows[0]!.users), blobs: Number(rows[0]!.blobs) };
    } finally {
      await client.end();
    }
  };
  let server: WharfServer | undefined;
  try {
    const right = await migrated();
    server = await startWharf({ dataDir, env: { WHARF_DB: right } });
    const data = randomBytes(50_000);
    assert.equal(await pushBlob(server, 'keep/app', data), 201);
    await server.stop();
    server = undefined;

    // Another database (a wrong URL, or the real one lost and re-created empty) beside the same blobs.
    const empty = await migrated();
    const refused = await startWharf({ dataDir, env: { WHARF_DB: empty } }).then(
      (s) => s,
      (e: Error) => e,
    );
    if (!(refused instanceof Error)) {
      server = refused;
      assert.fail('wharf serve started on an empty PostgreSQL database beside stored blobs');
    }
    assert.match(refused.message, /exited with 1/);
    assert.match(refused.message, /refusing to start: the database postgres:\/\/wharf:\*\*\*@[^ ]+ records no blob, but the blob store holds blobs/);
    assert.match(refused.message, /point --db at the right database, or restore it from a backup/);
    assert.match(refused.message, /--init/);
    assert.doesNotMatch(refused.message, new RegExp(new URL(empty).password), 'the password is never printed');
    assert.deepEqual(await rowsOf(empty), { users: 0, blobs: 0 }, 'a refused start writes nothing (not even the admin)');
    const fsck = await runWharf(['fsck', '--repair', '--data', dataDir], { env: { WHARF_DB: empty } });
    assert.equal(fsck.code, 1, 'fsck --repair must not treat every blob as an orphan either');
    assert.match(fsck.stderr, /records no blob/);

    // The right database: starts as before.
    server = await startWharf({ dataDir, env: { WHARF_DB: right } });
    assert.equal(await blobStatus(server, 'keep/app', sha256(data)), 200);
    await server.stop();

    // Starting over on purpose.
    server = await startWharf({ dataDir, env: { WHARF_DB: empty }, args: ['--init'] });
    assert.equal(await blobStatus(server, 'keep/app', sha256(data)), 404);
    await server.stop();
    server = undefined;
  } finally {
    await server?.kill('SIGKILL');
    for (const url of databases) await dropTestDatabase(url);
    await rm(work, { recursive: true, force: true });
  }
});
