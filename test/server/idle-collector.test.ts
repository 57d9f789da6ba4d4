// The idle collector: one collection once requests stop (none while one is in flight), none without requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { IdleCollector, forcedCollectionIsSafe } from '../../src/server/idle-collector.js';

test('collects once after a burst, not during a long request, and not again while idle', async () => {
  let collected = 0;
  const idle = new IdleCollector(() => collected++, 50);
  let release: (() => void) | undefined;
  const server = createServer((req, res) => {
    res.once('close', idle.begin());
    if (req.url === '/slow') release = () => res.end('slow');
    else res.end('ok');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const get = (path: string) =>
    new Promise<void>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path, agent: false }, (res) => res.resume().on('end', resolve)).on('error', reject).end();
    });
  try {
    await sleep(120);
    assert.equal(collected, 0, 'no requests, no collection');
    await Promise.all(Array.from({ length: 20 }, () => get('/')));
    assert.equal(collected, 0, 'not while requests come');
    await sleep(150);
    assert.equal(collected, 1, 'one collection after the burst');
    await sleep(150);
    assert.equal(collected, 1, 'and no more while idle');

    const slow = get('/slow');
    await get('/');
    await sleep(150);
    assert.equal(collected, 1, 'none while a request is in flight');
    release!();
    await slow;
    await sleep(150);
    assert.equal(collected, 2);
  } finally {
    idle.stop();
    server.close();
  }
});

test('forced collections are off on Node 24 and later (better-sqlite3 12 aborts there)', () => {
  assert.equal(forcedCollectionIsSafe('20.20.2'), true);
  assert.equal(forcedCollectionIsSafe('22.23.0'), true);
  assert.equal(forcedCollectionIsSafe('24.21.0'), false);
});

test('the default collector gives garbage back to the system', { skip: !forcedCollectionIsSafe() && 'no forced collections on this Node' }, async () => {
  let garbage: unknown[] | null = Array.from({ length: 1_000_000 }, (_, i) => ({ i, s: `x${i}` }));
  const before = process.memoryUsage().heapUsed;
  garbage = null;
  let collected = 0;
  const idle = new IdleCollector(undefined, 20);
  const collect = (idle as unknown as { collect: () => void }).collect;
  (idle as unknown as { collect: () => void }).collect = () => {
    collected++;
    collect();
  };
  idle.begin()();
  while (collected === 0) await sleep(10);
  await sleep(50);
  const after = process.memoryUsage().heapUsed;
  assert.ok(after < before - 30 * 1024 * 1024, `heap used ${before >> 20} MiB → ${after >> 20} MiB`);
  void garbage;
  idle.stop();
});
