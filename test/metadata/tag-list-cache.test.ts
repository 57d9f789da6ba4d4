// The in-memory tags/list answer is dropped on any write: through this connection, or by another process
// (a `wharf gc` beside the server) writing to the same database file.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openSqlite } from '../../src/metadata/sqlite.js';
import type { MetadataStore } from '../../src/metadata/store.js';

async function tagged(meta: MetadataStore, repository: string, tag: string, seed: string): Promise<void> {
  const body = Buffer.from(JSON.stringify({ seed }));
  const digest = `sha256:${Buffer.from(seed.padEnd(32, '0')).toString('hex').slice(0, 64)}`;
  await meta.putManifest(repository, { digest, mediaType: 'application/vnd.oci.image.index.v1+json', artifactType: null, subjectDigest: null, body, blobs: [], children: [] }, tag);
}

test('tags/list reflects writes made here and by another process', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-tagcache-'));
  const server = await openSqlite(join(dir, 'wharf.db'));
  const other = await openSqlite(join(dir, 'wharf.db'));
  try {
    await tagged(server, 'app', 'a', 'one');
    assert.deepEqual(await server.listTags('app', undefined, undefined), ['a']);
    assert.deepEqual(await server.listTags('app', undefined, undefined), ['a'], 'answered again (from memory)');
    await tagged(server, 'app', 'b', 'two');
    assert.deepEqual(await server.listTags('app', undefined, undefined), ['a', 'b'], 'a write here is seen');
    await tagged(other, 'app', 'c', 'three');
    assert.deepEqual(await server.listTags('app', undefined, undefined), ['a', 'b', 'c'], 'a write by another connection is seen');
    await other.deleteTag('app', 'a');
    assert.deepEqual(await server.listTags('app', undefined, undefined), ['b', 'c']);
  } finally {
    await other.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
