// A database migrated by a newer Wharf is refused, with a message that says so, on both backends; PostgreSQL's
// missing migrations are applied only when asked (`--migrate`, `wharf migrate`), SQLite's at every open.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { openSqlite } from '../../src/metadata/sqlite.js';
import { openPostgres } from '../../src/metadata/postgres.js';
import { MigrationsPendingError, SchemaTooNewError } from '../../src/metadata/schema-version.js';
import { createTestDatabase, dropTestDatabase, postgresMissing } from '../support/database.js';
import { runWharf } from '../support/server.js';

const pgSkip = postgresMissing();

test('SQLite: a fresh file is migrated at open; one from a newer Wharf is refused, by the store and by wharf serve', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-schema-'));
  try {
    const file = join(dir, 'wharf.db');
    await (await openSqlite(file)).close();
    const conn = new BetterSqlite3(file);
    conn.prepare(`insert into kysely_migration (name, timestamp) values ('9000_from_the_future', '2030-01-01T00:00:00.000Z')`).run();
    conn.close();
    await assert.rejects(openSqlite(file), (e: unknown) => {
      assert.ok(e instanceof SchemaTooNewError);
      assert.match(e.message, /newer schema than this Wharf knows \(migration 9000_from_the_future\)/);
      return true;
    });
    const res = await runWharf(['serve', '--listen', '127.0.0.1:0', '--data', dir], { env: { WHARF_DB: '' }, timeoutMs: 30_000 });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /^wharf serve: refusing to start: the database .*wharf\.db has a newer schema than this Wharf knows/m);
    assert.doesNotMatch(res.stderr, /\n\s+at /, 'one plain message, no stack');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('PostgreSQL: missing migrations are refused unless asked for; `wharf migrate` applies them; a newer schema is refused', { skip: pgSkip }, async () => {
  const url = await createTestDatabase();
  const dir = await mkdtemp(join(tmpdir(), 'wharf-schema-pg-'));
  try {
    await assert.rejects(openPostgres(url, { poolSize: 2, migrate: false }), (e: unknown) => {
      assert.ok(e instanceof MigrationsPendingError);
      assert.match(e.message, /lacks \d+ migrations \(0001_registry, .*\).*wharf migrate --db URL.*wharf serve --migrate/);
      assert.ok(!e.message.includes(new URL(url).password), 'the password stays out of messages');
      return true;
    });
    let res = await runWharf(['serve', '--listen', '127.0.0.1:0', '--data', dir, '--db', url], { timeoutMs: 30_000 });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /^wharf serve: refusing to start: the database postgres:\/\/wharf:\*\*\*@.* lacks \d+ migrations/m);

    res = await runWharf(['migrate', '--db', url, '--status']);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stdout, /lacks: 0001_registry/);
    res = await runWharf(['migrate', '--db', url]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /applied to .*0001_registry.*0020_blob_change_notifications/);
    res = await runWharf(['migrate', '--db', url]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /is up to date/);
    await (await openPostgres(url, { poolSize: 2, migrate: false })).close();

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`insert into kysely_migration (name, timestamp) values ('9000_from_the_future', '2030-01-01T00:00:00.000Z')`);
    await client.end();
    for (const migrate of [false, true]) {
      await assert.rejects(openPostgres(url, { poolSize: 2, migrate }), (e: unknown) => {
        assert.ok(e instanceof SchemaTooNewError, String(e));
        assert.match(e.message, /newer schema than this Wharf knows \(migration 9000_from_the_future\)/);
        return true;
      });
    }
    res = await runWharf(['serve', '--listen', '127.0.0.1:0', '--data', dir, '--db', url, '--migrate'], { timeoutMs: 30_000 });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /refusing to start: .* has a newer schema than this Wharf knows/);
    res = await runWharf(['migrate', '--db', url]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /newer schema/);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await dropTestDatabase(url);
  }
});
