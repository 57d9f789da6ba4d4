// The answers kept in memory (tags/list, manifest by tag) are dropped on any write: through this connection, or by
// another process (a `wharf gc` beside the server) writing to the same database file.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openSqlite } from '../../src/metadata/sqlite.js';
import type { MetadataStore } from '../../src/metadata/store.js';
import { REPO_ROOT } from '../support/server.js';

async function tagged(meta: MetadataStore, repository: string, tag: string, seed: string): Promise<string> {
  const body = Buffer.from(JSON.stringify({ seed }));
  const digest = `sha256:${Buffer.from(seed.padEnd(32, '0')).toString('hex').slice(0, 64)}`;
  await meta.registry.putManifest(repository, { digest, mediaType: 'application/vnd.oci.image.index.v1+json', artifactType: null, subjectDigest: null, body, blobs: [], children: [] }, tag);
  return digest;
}

/** Runs SQL against the database file from a separate process, as another wharf command would. */
function writeFromAnotherProcess(file: string, sql: string): void {
  const script = `const D = require('better-sqlite3'); const db = new D(process.argv[1]); db.pragma('busy_timeout = 5000'); db.exec(process.argv[2]); db.close();`;
  execFileSync(process.execPath, ['-e', script, file, sql], { cwd: REPO_ROOT, stdio: 'pipe' });
}

// better-sqlite3 12 on Node 24 aborts at the exit of a process this short (a statement finalized after its
// database closed: RemoveEnvironmentCleanupHook asserts), after every assertion has passed. Node 20 runs it.
const node24Teardown = Number(process.versions.node.split('.')[0]) >= 24 ? 'better-sqlite3 12 aborts at process exit on Node 24 (upstream)' : false;

test('tags/list reflects writes made here and by another process', { skip: node24Teardown }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-tagcache-'));
  const file = join(dir, 'wharf.db');
  const server = await openSqlite(file);
  try {
    await tagged(server, 'app', 'a', 'one');
    assert.deepEqual(await server.registry.listTags('app', undefined, undefined), ['a']);
    assert.deepEqual(await server.registry.listTags('app', undefined, undefined), ['a'], 'answered again (from memory)');
    await tagged(server, 'app', 'b', 'two');
    assert.deepEqual(await server.registry.listTags('app', undefined, undefined), ['a', 'b'], 'a write here is seen');
    writeFromAnotherProcess(file, "insert into tags (repository_id, name, digest, updated_at) select repository_id, 'c', digest, 0 from tags where name = 'a'");
    assert.deepEqual(await server.registry.listTags('app', undefined, undefined), ['a', 'b', 'c'], 'a write by another process is seen');
    writeFromAnotherProcess(file, "delete from tags where name = 'a'");
    assert.deepEqual(await server.registry.listTags('app', undefined, undefined), ['b', 'c']);
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a manifest by tag reflects tag moves and deletions made here and by another process', { skip: node24Teardown }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-mancache-'));
  const file = join(dir, 'wharf.db');
  const server = await openSqlite(file);
  const digestOf = async (tag: string) => (await server.registry.manifestByTag('app', tag))?.digest ?? null;
  try {
    const one = await tagged(server, 'app', 'x', 'one');
    assert.equal(await digestOf('x'), one);
    assert.equal(await digestOf('x'), one, 'answered again (from memory)');
    assert.equal(await digestOf('y'), null);
    const two = await tagged(server, 'app', 'x', 'two');
    assert.equal(await digestOf('x'), two, 'a tag moved here is seen');
    writeFromAnotherProcess(file, `update tags set digest = '${one}' where name = 'x'`);
    assert.equal(await digestOf('x'), one, 'a tag moved by another process is seen');
    writeFromAnotherProcess(file, "insert into tags (repository_id, name, digest, updated_at) select repository_id, 'y', digest, 0 from tags where name = 'x'");
    assert.equal(await digestOf('y'), one, 'a tag once unknown, then created by another process, is seen');
    writeFromAnotherProcess(file, "delete from tags where name = 'x'");
    assert.equal(await digestOf('x'), null, 'a tag deleted by another process is gone');
    assert.equal(await digestOf('x'), null);
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
