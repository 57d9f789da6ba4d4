// On a real PostgreSQL: the registry's hot queries run as named prepared statements (seen in the connection's own
// pg_prepared_statements, executed again without being parsed again), every other statement stays unnamed, and
// what the hot queries answer is what the same SQL answers unprepared.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { openPostgres } from '../../src/metadata/postgres.js';
import type { MetadataStore } from '../../src/metadata/store.js';
import type { Database } from '../../src/metadata/schema.js';
import { createTestDatabase, dropTestDatabase, postgresMissing } from '../support/database.js';

const skip = postgresMissing();

let url: string;
let store: MetadataStore;

before(async () => {
  if (skip) return;
  url = await createTestDatabase();
  // One connection, so the statements it prepared are the ones the test looks at.
  store = await openPostgres(url, { poolSize: 1, migrate: true });
});

after(async () => {
  if (skip) return;
  await store?.close();
  await dropTestDatabase(url);
});

function dbOf(s: MetadataStore): Kysely<Database> {
  return (s as unknown as { db: Kysely<Database> }).db;
}

interface Prepared {
  name: string;
  statement: string;
  generic_plans: number;
  custom_plans: number;
}

async function prepared(): Promise<Map<string, Prepared>> {
  const { rows } = await sql<Prepared>`select name, statement, generic_plans, custom_plans from pg_prepared_statements`.execute(dbOf(store));
  return new Map(rows.map((r) => [r.name.replace(/_[0-9a-f]{8}$/, ''), r]));
}

const HOT = [
  'wharf_repository_id',
  'wharf_linked_blob',
  'wharf_manifest_by_digest',
  'wharf_manifest_by_tag',
  'wharf_tag_list',
  'wharf_policy_users',
  'wharf_policy_tokens',
  'wharf_policy_memberships',
  'wharf_policy_grants',
];

test('the hot queries run as prepared statements on PostgreSQL, with unchanged answers', { skip }, async () => {
  const registry = store.registry;
  const blob = `sha256:${'b'.repeat(64)}`;
  await registry.commitBlob('prep/app', blob, 1234, async () => {});
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, layers: [{ digest: blob }] }));
  const digest = `sha256:${createHash('sha256').update(body).digest('hex')}`;
  await registry.putManifest('prep/app', { digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: null, subjectDigest: null, body, blobs: [blob], children: [] }, 'v1');
  await registry.moveTag('prep/app', 'v2', digest, null);
  await store.auth.addUser('alice', 'member', 'hash');
  await store.auth.addMembers('team', ['alice']);
  await store.auth.addGrant('group', 'team', 'prep/*', ['pull'], null);
  await store.auth.addToken({ id: 'tok1', name: 'ci', secretHash: 'h', scope: 'prep/*:pull', createdBy: null, createdAt: 1, expiresAt: null }, [{ pattern: 'prep/*', action: 'pull' }]);

  const answers = async () => ({
    repositoryId: await registry.repositoryId('prep/app'),
    linked: await registry.linkedBlob('prep/app', blob),
    notLinked: await registry.linkedBlob('prep/other', blob),
    byDigest: await registry.manifestByDigest('prep/app', digest),
    // The cache answers a second manifestByTag or tag list while nothing changed: a write in between makes each go
    // to the database again (and the hot statement be executed again).
    byTag: (await registry.commitBlob('prep/noise', `sha256:${'c'.repeat(64)}`, 1, async () => {}), await registry.manifestByTag('prep/app', 'v1')),
    tags: (await registry.commitBlob('prep/noise', `sha256:${'c'.repeat(64)}`, 1, async () => {}), await registry.listTags('prep/app', undefined, undefined)),
    policy: [await store.auth.users(), await store.auth.tokens(false), await store.auth.memberships(), await store.auth.grants()] as const,
  });
  const first = await answers();
  const statements = await prepared();
  for (const name of HOT) {
    const s = statements.get(name);
    assert.ok(s, `${name} is prepared on the connection (prepared: ${[...statements.keys()].join(', ')})`);
    assert.match(s.statement, new RegExp(`^/\\* wharf:${name.slice('wharf_'.length)} \\*/ select `), 'under its tag');
  }
  assert.deepEqual([...statements.keys()].filter((n) => !HOT.includes(n)), [], 'nothing else is prepared: ordinary statements stay unnamed');

  // Run again: executed through the same statements (their plan counters move), never prepared a second time.
  for (let i = 0; i < 6; i++) assert.deepEqual(await answers(), first);
  const again = await prepared();
  for (const name of HOT) {
    const before = statements.get(name)!;
    const now = again.get(name)!;
    assert.equal(now.name, before.name);
    assert.ok(now.generic_plans + now.custom_plans >= before.generic_plans + before.custom_plans + 6, `${name} executed as the prepared statement`);
  }
  assert.equal(again.size, statements.size);

  // The answers equal the plain SQL's, unprepared, through a connection of its own.
  const plain = new pg.Client({ connectionString: url });
  await plain.connect();
  try {
    const q = async (text: string, values: unknown[]) => (await plain.query(text, values)).rows;
    assert.deepEqual(first.repositoryId, Number((await q('select id from repositories where name = $1', ['prep/app']))[0].id));
    assert.deepEqual(first.linked, { size: 1234 });
    assert.equal(first.notLinked, null);
    const [m] = await q('select m.digest, m.media_type, m.body from manifests m join repositories r on r.id = m.repository_id where r.name = $1 and m.digest = $2', ['prep/app', digest]);
    assert.deepEqual(first.byDigest, { digest: m.digest, mediaType: m.media_type, body: m.body });
    assert.deepEqual(first.byTag, first.byDigest);
    assert.deepEqual(first.tags, (await q('select t.name from tags t join repositories r on r.id = t.repository_id where r.name = $1 order by t.name', ['prep/app'])).map((r) => r.name));
    assert.deepEqual(first.tags, ['v1', 'v2']);
    const [users, tokens, memberships, grants] = first.policy;
    assert.deepEqual(users.map((u) => u.name), (await q('select name from users order by name', [])).map((r) => r.name));
    assert.deepEqual(tokens.map((t) => t.id), ['tok1']);
    assert.deepEqual(memberships, [{ group: 'team', user: 'alice' }]);
    assert.deepEqual(grants.map((g) => `${g.subjectKind}:${g.subject}:${g.pattern}:${g.action}`), (await q('select * from grants order by subject_kind, subject, pattern, action', [])).map((r) => `${r.subject_kind}:${r.subject}:${r.pattern}:${r.action}`));
  } finally {
    await plain.end();
  }
});

test('the statements sent are counted by name, BEGIN and COMMIT included', { skip }, async () => {
  const counts = store.roundTrips!;
  assert.equal(counts.backend, 'postgres');
  const before = new Map(counts.byStatement());
  const total = counts.total;
  await store.registry.manifestByDigest('prep/app', `sha256:${'d'.repeat(64)}`);
  await store.registry.commitBlob('prep/app', `sha256:${'e'.repeat(64)}`, 5, async () => {});
  const delta = (name: string) => (counts.byStatement().get(name) ?? 0) - (before.get(name) ?? 0);
  assert.equal(delta('manifest_by_digest'), 1);
  assert.equal(delta('begin'), 1);
  assert.equal(delta('commit'), 1);
  assert.equal(counts.total - total, 1 + 5, 'a blob commit: begin, insert blob, repository id, insert link, commit');
});
