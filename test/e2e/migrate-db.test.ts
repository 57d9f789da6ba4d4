// `wharf migrate-db` round trip: a SQLite installation with pushes, tag history, releases, a user and audit rows
// moved into an empty PostgreSQL database, verified, and served by a Wharf started over the moved database;
// a non-empty target and bad arguments are refused with one line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { startWharf, runWharf, withLogsOnFailure } from '../support/server.js';
import { createTestDatabase, dropTestDatabase, postgresMissing } from '../support/database.js';
import { getManifest, pushImage, verifyManifest } from '../support/registry-client.js';

const skip = postgresMissing();

async function api(base: string, authorization: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : {} };
}

/** Every table's rows in SQLite, counted. */
function sqliteCounts(file: string): Map<string, number> {
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    const names = (db.prepare(`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like 'kysely_%'`).all() as { name: string }[]).map((r) => r.name);
    return new Map(names.map((n) => [n, (db.prepare(`select count(*) as n from "${n}"`).get() as { n: number }).n]));
  } finally {
    db.close();
  }
}

test('migrate-db moves a populated SQLite store into PostgreSQL, verified, and a Wharf serves it', { skip, timeout: 180_000 }, async () => {
  // SQLite whatever the run's backend: this is the installation being moved.
  const data = await mkdtemp(join(tmpdir(), 'wharf-test-move-'));
  const before = await startWharf({ dataDir: data, env: { WHARF_DB: '' } });
  let target: string | undefined;
  let other: string | undefined;
  let after: Awaited<ReturnType<typeof startWharf>> | undefined;
  try {
    const auth = before.authorization;
    const d1 = await pushImage(before.url, 'moved/app', '1.0', randomBytes(2000));
    const d2 = await pushImage(before.url, 'moved/app', '1.0', randomBytes(2000)); // the tag moves: history
    await pushImage(before.url, 'moved/other', 'latest', randomBytes(500));
    assert.equal((await api(before.url, auth, 'POST', '/apps/moved/app/environments', { name: 'staging' })).status, 201);
    const release = await api(before.url, auth, 'POST', '/apps/moved/app/releases', { environment: 'staging', ref: '1.0' });
    assert.equal(release.status, 201);
    const history = (await api(before.url, auth, 'GET', '/repositories/moved/app/tags/history')).json;
    const releases = (await api(before.url, auth, 'GET', '/apps/moved/app/releases?environment=staging')).json;
    const audit = (await api(before.url, auth, 'GET', '/audit?limit=500')).json;
    await before.stop();
    const counts = sqliteCounts(join(data, 'wharf.db'));
    assert.ok([...counts.values()].reduce((a, b) => a + b, 0) > 20, 'a populated store');

    target = await createTestDatabase();
    const moved = await runWharf(['migrate-db', '--from', `sqlite:${data}`, '--to', target]);
    assert.equal(moved.code, 0, moved.stderr);
    assert.match(moved.stdout, /moved \d+ rows in \d+ tables/);
    assert.doesNotMatch(moved.stdout + moved.stderr, new RegExp(new URL(target).password), 'the password is never printed');

    // Every SQLite table arrived with all its rows.
    const client = new pg.Client({ connectionString: target });
    await client.connect();
    try {
      for (const [table, n] of counts) {
        const { rows } = await client.query(`select count(*)::int as n from "${table}"`);
        assert.equal(rows[0].n, n, `${table}: ${n} rows in SQLite`);
      }
    } finally {
      await client.end();
    }

    // A second move into the now populated database is refused, and changes nothing.
    const again = await runWharf(['migrate-db', '--from', `sqlite:${data}`, '--to', target]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is not empty/);
    assert.equal(again.stderr.trim().split('\n').length, 1, again.stderr);

    // A Wharf over the same directory and the moved database serves what was there, and keeps numbering ids.
    after = await startWharf({ dataDir: data, env: { WHARF_DB: target } });
    await withLogsOnFailure(after, async () => {
      assert.equal((await getManifest(after!.url, 'moved/app', '1.0')).digest, d2);
      assert.deepEqual((await verifyManifest(after!.url, 'moved/app', d1)).problems, []);
      assert.deepEqual((await api(after!.url, auth, 'GET', '/repositories/moved/app/tags/history')).json, history);
      assert.deepEqual((await api(after!.url, auth, 'GET', '/apps/moved/app/releases?environment=staging')).json, releases);
      // Every audit row as it was (newer rows, the reads above, come first and are left out).
      const auditAfter = (await api(after!.url, auth, 'GET', '/audit?limit=500')).json as { items: { id: number }[] };
      const moved = auditAfter.items.filter((row) => row.id <= audit.items[0].id);
      assert.ok(audit.items.length > 3, `${audit.items.length} audit rows`);
      assert.deepEqual(moved, audit.items);
      const next = await api(after!.url, auth, 'POST', '/apps/moved/app/releases', { environment: 'staging', ref: d1 });
      assert.equal(next.status, 201, JSON.stringify(next.json));
      assert.ok(next.json.id > release.json.id, 'new ids follow the moved ones');
      assert.equal(next.json.replaces, release.json.id);
    });

    // Bad arguments: one line, exit 2.
    other = await createTestDatabase();
    for (const args of [['--from', data, '--to', other], ['--from', `sqlite:${data}`, '--to', 'mysql://x'], ['--from', `sqlite:${data}/nowhere`, '--to', other]]) {
      const r = await runWharf(['migrate-db', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  } finally {
    await after?.stop();
    await before.stop();
    if (target) await dropTestDatabase(target);
    if (other) await dropTestDatabase(other);
    await rm(data, { recursive: true, force: true });
  }
});
