// The PostgreSQL metadata store against a real cluster: numbers come back as numbers, and the read caches of two
// instances over one database stay coherent (a tag moved through one is served by the other within the bound,
// never older than what it served before), also when the listening connection is cut.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { openPostgres } from '../../src/metadata/postgres.js';
import { HEARTBEAT_MS } from '../../src/metadata/postgres-changes.js';
import type { MetadataStore } from '../../src/metadata/store.js';
import type { Kysely } from 'kysely';
import type { Database } from '../../src/metadata/schema.js';
import { createTestDatabase, dropTestDatabase, postgresAdminUrl, postgresMissing } from '../support/database.js';

const skip = postgresMissing();
/** The documented bound (docs/configuration.md): two heartbeats. */
const BOUND_MS = 2 * HEARTBEAT_MS;

let url: string;
let a: MetadataStore;
let b: MetadataStore;

before(async () => {
  if (skip) return;
  url = await createTestDatabase();
  a = await openPostgres(url, { poolSize: 4, migrate: true });
  b = await openPostgres(url, { poolSize: 4, migrate: false });
});

after(async () => {
  if (skip) return;
  await a?.close();
  await b?.close();
  await dropTestDatabase(url);
});

let seq = 0;
async function tagged(meta: MetadataStore, repository: string, tag: string): Promise<string> {
  const seed = `seed-${++seq}`;
  const body = Buffer.from(JSON.stringify({ seed }));
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  await meta.registry.putManifest(repository, { digest, mediaType: 'application/vnd.oci.image.index.v1+json', artifactType: null, subjectDigest: null, body, blobs: [], children: [] }, tag);
  return digest;
}

/** Polls `read` until it returns `want`, at most `bound` ms; returns how long it took. */
async function seenWithin<T>(read: () => Promise<T>, want: T, bound: number): Promise<number> {
  const start = Date.now();
  for (;;) {
    const got = await read();
    if (got === want) return Date.now() - start;
    if (Date.now() - start > bound) assert.fail(`still ${String(got)} after ${bound} ms, expected ${String(want)}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('bigint columns and sums come back as numbers, bytea as a Buffer', { skip }, async () => {
  await a.registry.commitBlob('numbers/app', 'sha256:' + 'a'.repeat(64), 5_000_000_000, async () => {});
  const known = await a.registry.blobKnown('sha256:' + 'a'.repeat(64));
  assert.deepEqual(known, { size: 5_000_000_000 });
  const digest = await tagged(a, 'numbers/app', 'v1');
  const [change] = await a.registry.tagHistory('numbers/app', 'v1');
  assert.equal(typeof change!.at, 'number');
  const row = await internals(a).db.selectFrom('blobs').select((eb) => eb.fn.sum<number>('size').as('total')).executeTakeFirstOrThrow();
  assert.equal(row.total, 5_000_000_000);
  const count = await internals(a).db.selectFrom('tags').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  assert.equal(count.n, 1);
  const manifest = await b.registry.manifestByDigest('numbers/app', digest);
  assert.ok(Buffer.isBuffer(manifest!.body));
});

test('a tag moved through one instance is served by the other within the bound, never older than it served', { skip }, async (t) => {
  const digestOnB = async () => (await b.registry.manifestByTag('app', 'latest'))?.digest ?? null;
  const first = await tagged(a, 'app', 'latest');
  await seenWithin(digestOnB, first, BOUND_MS);
  assert.equal(await digestOnB(), first, 'answered again (from memory)');
  // Twenty moves through A while B keeps reading: B's answers follow A's order, and each arrives within the bound.
  const moves: string[] = [first];
  const served: string[] = [];
  let reading = true;
  const reader = (async () => {
    while (reading) {
      const d = await digestOnB();
      if (d && served[served.length - 1] !== d) served.push(d);
      await new Promise((r) => setImmediate(r));
    }
  })();
  let slowest = 0;
  for (let i = 0; i < 20; i++) {
    const d = await tagged(a, 'app', 'latest');
    moves.push(d);
    slowest = Math.max(slowest, await seenWithin(digestOnB, d, BOUND_MS));
  }
  reading = false;
  await reader;
  let at = -1;
  for (const d of served) {
    const i = moves.indexOf(d);
    assert.ok(i > at, `B served ${d} after a newer digest`);
    at = i;
  }
  assert.equal(served[served.length - 1], moves[moves.length - 1]);
  assert.ok(slowest < BOUND_MS, `slowest ${slowest} ms`);
  t.diagnostic(`slowest of 20 moves seen by the other instance after ${slowest} ms`);
});

test('tags/list on one instance reflects tags created and deleted through the other', { skip }, async () => {
  await tagged(a, 'lists', 'one');
  await seenWithin(async () => (await b.registry.listTags('lists', undefined, undefined))?.join(','), 'one', BOUND_MS);
  await tagged(a, 'lists', 'two');
  await seenWithin(async () => (await b.registry.listTags('lists', undefined, undefined))?.join(','), 'one,two', BOUND_MS);
  await a.registry.deleteTag('lists', 'one');
  await seenWithin(async () => (await b.registry.listTags('lists', undefined, undefined))?.join(','), 'two', BOUND_MS);
});

test('an instance reads its own write at once, and a write from outside Wharf is seen too', { skip }, async () => {
  const one = await tagged(b, 'own', 'x');
  assert.equal((await b.registry.manifestByTag('own', 'x'))?.digest, one, 'no wait for its own notification');
  const two = await tagged(b, 'own', 'x');
  assert.equal((await b.registry.manifestByTag('own', 'x'))?.digest, two);
  // Another program (psql, a restore script) changing the table notifies as well: the trigger is on the table.
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`update tags set digest = $1 where name = 'x'`, [one]);
  } finally {
    await client.end();
  }
  await seenWithin(async () => (await b.registry.manifestByTag('own', 'x'))?.digest, one, BOUND_MS);
});

test('when the listening connection is cut, nothing stale is served, and caching resumes after the reconnect', { skip }, async () => {
  const one = await tagged(a, 'cut', 'x');
  await seenWithin(async () => (await b.registry.manifestByTag('cut', 'x'))?.digest, one, BOUND_MS);
  const admin = new pg.Client({ connectionString: postgresAdminUrl() });
  await admin.connect();
  try {
    const dbName = new URL(url).pathname.slice(1);
    const killed = await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and application_name = 'wharf-changes'`,
      [dbName],
    );
    assert.equal(killed.rowCount, 2, 'both instances listen');
    // Written while nobody listens: no notification will ever tell B.
    const two = await tagged(a, 'cut', 'x');
    await seenWithin(async () => (await b.registry.manifestByTag('cut', 'x'))?.digest, two, BOUND_MS);
    // Reconnected (within a second): a move is seen again through notifications.
    await new Promise((r) => setTimeout(r, 1_500));
    const listening = await admin.query(`select count(*)::int as n from pg_stat_activity where datname = $1 and application_name = 'wharf-changes'`, [dbName]);
    assert.equal(listening.rows[0].n, 2, 'both listen again');
    const three = await tagged(a, 'cut', 'x');
    await seenWithin(async () => (await b.registry.manifestByTag('cut', 'x'))?.digest, three, BOUND_MS);
  } finally {
    await admin.end();
  }
});

test('concurrent pushes of one tag through two instances all succeed, and its history is one unbroken chain', { skip }, async () => {
  // SQLite serialises writers (BEGIN IMMEDIATE); PostgreSQL needs the repository row lock taken in setTag.
  await tagged(a, 'race', 'base');
  const pushed = await Promise.all(Array.from({ length: 8 }, (_, i) => tagged(i % 2 ? a : b, 'race', 'latest')));
  const history = (await a.registry.tagHistory('race', 'latest')).reverse();
  assert.equal(history.length, 8);
  assert.equal(history[0]!.oldDigest, null);
  for (let i = 1; i < history.length; i++) assert.equal(history[i]!.oldDigest, history[i - 1]!.newDigest, 'each move starts where the last ended');
  assert.deepEqual(new Set(history.map((h) => h.newDigest)), new Set(pushed));
  assert.equal(await a.registry.tagDigest('race', 'latest'), history[7]!.newDigest);
});

test('a read between a write and its commit is not served after the commit', { skip }, async () => {
  const one = await tagged(a, 'mid', 'v');
  const two = await tagged(a, 'mid', 'other');
  assert.equal((await a.registry.manifestByTag('mid', 'v'))?.digest, one);
  await a.transaction(async (tx) => {
    await a.registry.moveTag('mid', 'v', two, null, undefined, tx);
    // Another connection of the pool, outside the transaction: still the committed digest, cached under the stamp
    // the write has just moved.
    assert.equal((await a.registry.manifestByTag('mid', 'v'))?.digest, one);
  });
  assert.equal((await a.registry.manifestByTag('mid', 'v'))?.digest, two, 'not the answer read before the commit');
});

test('a transaction that writes nothing (the webhook outbox poll) leaves the read caches warm', { skip }, async () => {
  const digest = await tagged(a, 'quiet', 'v');
  const queries = () => a.roundTrips!.byStatement().get('manifest_by_tag') ?? 0;
  // Warm: a read that sends no query (the instance's own notification has arrived and been taken into account).
  for (let i = 0; ; i++) {
    const before = queries();
    assert.equal((await a.registry.manifestByTag('quiet', 'v'))?.digest, digest);
    if (queries() === before) break;
    assert.ok(i < 100, 'the cache never got warm');
    await new Promise((r) => setTimeout(r, 20));
  }
  const before = queries();
  await a.transaction(async (tx) => {
    await a.registry.repositoryId('quiet', tx);
  });
  await a.webhooks.claimDue(Date.now(), 4, Date.now() + 1000);
  assert.equal((await a.registry.manifestByTag('quiet', 'v'))?.digest, digest);
  assert.equal(queries(), before, 'answered from memory');
});

/** The store's own Kysely instance: what the adapter hands back for int8 and sum() is the point of the test above. */
function internals(store: MetadataStore): { db: Kysely<Database> } {
  return store as unknown as { db: Kysely<Database> };
}
