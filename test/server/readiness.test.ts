// GET /readyz: 200 with every check passing; 503 naming the check when free space is below the threshold or the
// database does not answer. /metrics carries the data directory's free and total space.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statfs } from 'node:fs/promises';
import { startRegistry } from './v2-harness.js';

interface Ready {
  status: string;
  checks: Record<'database' | 'storage' | 'freeSpace', { ok: boolean; error?: string; freeBytes?: number; minFreeBytes?: number }>;
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
