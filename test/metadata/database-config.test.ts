// Which metadata database a configuration selects: SQLite by default, PostgreSQL by flag, environment or file.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.js';

test('db: unset by default (SQLite), set by file, environment and flag in that order; anything but a PostgreSQL URL is refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-db-config-'));
  try {
    const file = join(dir, 'wharf.yaml');
    assert.equal(loadConfig({ env: {} }).db, undefined);
    assert.equal(loadConfig({ env: {} }).dbPoolSize, 10);
    assert.equal(loadConfig({ env: { WHARF_DB: '' } }).db, undefined, 'an empty WHARF_DB is unset');
    await writeFile(file, 'db: postgres://wharf:s@db:5432/file\ndbPoolSize: 25\n');
    assert.equal(loadConfig({ flags: { config: file }, env: {} }).db, 'postgres://wharf:s@db:5432/file');
    assert.equal(loadConfig({ flags: { config: file }, env: {} }).dbPoolSize, 25);
    assert.equal(loadConfig({ flags: { config: file }, env: { WHARF_DB: 'postgresql://e@db/env', WHARF_DB_POOL_SIZE: '3' } }).db, 'postgresql://e@db/env');
    assert.equal(loadConfig({ flags: { config: file }, env: { WHARF_DB_POOL_SIZE: '3' } }).dbPoolSize, 3);
    assert.equal(loadConfig({ flags: { config: file, db: 'postgres://f@db/flag' }, env: { WHARF_DB: 'postgres://e@db/env' } }).db, 'postgres://f@db/flag');
    assert.throws(() => loadConfig({ env: { WHARF_DB: 'mysql://db/x' } }), /invalid configuration: db: expected a PostgreSQL URL/);
    assert.throws(() => loadConfig({ env: { WHARF_DB_POOL_SIZE: '0' } }), /dbPoolSize/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
