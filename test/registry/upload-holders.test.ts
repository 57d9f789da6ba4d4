// The per-holder cap on open upload sessions: concurrent starts cannot pass it together, ended sessions free
// their place, and sessions that ended behind the count's back (expired by the sweep) stop counting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RegistryError } from '../../src/oci/errors.js';
import { UploadHolders } from '../../src/registry/upload-holders.js';

test('concurrent starts of one holder stop at the cap; another holder is not affected', async () => {
  const holders = new UploadHolders(3, async () => true);
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => holders.admit('user:alice')));
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 3);
  const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  assert.ok(refused.reason instanceof RegistryError && refused.reason.code === 'TOOMANYREQUESTS');
  await holders.admit('user:bob');
});

test('a session that ends frees its place; one that could not start gives its place back', async () => {
  const holders = new UploadHolders(2, async () => true);
  await holders.admit('h');
  holders.hold('h', 'one');
  await holders.admit('h');
  holders.abandon('h');
  await holders.admit('h');
  holders.hold('h', 'two');
  await assert.rejects(holders.admit('h'), /2 upload sessions are open/);
  holders.release('one');
  await holders.admit('h');
});

test('sessions gone from the store (expired) stop counting when the cap is reached', async () => {
  const open = new Set(['a', 'b']);
  const holders = new UploadHolders(2, async (id) => open.has(id));
  for (const id of ['a', 'b']) {
    await holders.admit('h');
    holders.hold('h', id);
  }
  await assert.rejects(holders.admit('h'));
  open.delete('a');
  await holders.admit('h');
});
