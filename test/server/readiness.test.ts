// GET /readyz: 200 with every check passing; 503 naming the check when free space is below the threshold, the
// database does not answer, or its schema has a migration pending or one this version does not know (either backend). /metrics carries the data directory's free and total space.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statfs } from 'node:fs/promises';
import { sql } from 'kysely';
import { onDatabase } from '../support/database.js';
import { startRegistry } from './v2-harness.js';

interface Ready {
  status: string;
  checks: Record<'database' | 'schema' | 'storage' | 'freeSpace', { ok: boolean; error?: string; freeBytes?: number; minFreeBytes?: number; pending?: string[]; unknown?: string[] }>;
}

test('/readyz is 200 with its checks, and /metrics has the free space of the data directory', async () => {
  const r = await startRegistry();
  try {
    const res = await r.req('/readyz');
    const body = (await res.json()) as Ready;
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.status, 'ready');
    assert.ok(body.checks.database.ok && body.checks.storage.ok && body.checks.freeSpace.ok);
    assert.equal(body.checks.freeSpace.minFreeBytes, 256 << 20);
    const s = await statfs(r.dataDir);
    const metrics = await (await r.req('/metrics')).text();
    const free = Number(/^wharf_storage_free_bytes (\d+)/m.exec(metrics)?.[1]);
    const size = Number(/^wharf_storage_size_bytes (\d+)/m.exec(metrics)?.[1]);
    assert.equal(size, s.blocks * s.bsize);
    // Other processes write to the same disk meanwhile: close, not equal.
    assert.ok(Math.abs(free - s.bavail * s.bsize) < 1 << 30, `free ${free}, statfs ${s.bavail * s.bsize}`);
  } finally {
    await r.close();
  }
});

test('/readyz is 503 below the free-space threshold, and when the database does not answer', async () => {
  const r = await startRegistry({ env: { WHARF_MIN_FREE_BYTES: '1000000TiB' } });
  try {
    const res = await r.req('/readyz');
    const body = (await res.json()) as Ready;
    assert.equal(res.status, 503);
    assert.equal(body.status, 'not ready');
    assert.equal(body.checks.freeSpace.ok, false);
    assert.match(body.checks.freeSpace.error ?? '', /below/);
    assert.ok(body.checks.database.ok && body.checks.storage.ok);

    await r.wharf.meta.close();
    const down = (await (await r.req('/readyz')).json()) as Ready;
    assert.equal(down.checks.database.ok, false);
  } finally {
    await r.close().catch(() => {});
  }
});

test('/readyz is 503 while the schema is not the one this version knows: a migration pending, or one it does not know', async () => {
  const r = await startRegistry();
  try {
    const ready = (await (await r.req('/readyz')).json()) as Ready;
    assert.deepEqual(ready.checks.schema, { ok: true, pending: [], unknown: [] });

    // A newer Wharf ran `wharf migrate` on the shared database: this instance must stop taking traffic.
    await onDatabase(r.dataDir, (db) => sql`insert into kysely_migration (name, timestamp) values ('9999_from_the_future', '2099-01-01T00:00:00.000Z')`.execute(db));
    let res = await r.req('/readyz');
    let body = (await res.json()) as Ready;
    assert.equal(res.status, 503);
    assert.equal(body.status, 'not ready');
    assert.equal(body.checks.schema.ok, false);
    assert.deepEqual(body.checks.schema.unknown, ['9999_from_the_future']);
    assert.match(body.checks.schema.error ?? '', /newer than this version knows \(9999_from_the_future\)/);
    assert.ok(body.checks.database.ok && body.checks.storage.ok && body.checks.freeSpace.ok);

    // Back to this version's schema, then one of its migrations missing (a restore from an older backup).
    const last = await onDatabase(r.dataDir, async (db) => {
      await sql`delete from kysely_migration where name = '9999_from_the_future'`.execute(db);
      const rows = await sql<{ name: string }>`select name from kysely_migration order by name desc limit 1`.execute(db);
      await sql`delete from kysely_migration where name = ${rows.rows[0]!.name}`.execute(db);
      return rows.rows[0]!.name;
    });
    res = await r.req('/readyz');
    body = (await res.json()) as Ready;
    assert.equal(res.status, 503);
    assert.deepEqual(body.checks.schema.pending, [last]);
    assert.deepEqual(body.checks.schema.unknown, []);
    assert.match(body.checks.schema.error ?? '', /1 migration\(s\) pending .*wharf migrate/);
  } finally {
    await r.close();
  }
});
