// fsck: finds corrupt, orphan and missing blob files and dangling tags; --repair mends them; the CLI's exit
// code says whether problems remain.
import { test, beforeEach, afterEach } from 'node:test';
import type { FsBlobStore } from '../../src/storage/fs-blob-store.js';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { loadConfig } from '../../src/config.js';
import { digestOf } from '../../src/oci/digest.js';
import { OCI_MANIFEST } from '../../src/oci/media-types.js';
import { fsck, type FsckReport } from '../../src/registry/fsck.js';
import { openWharf, type Wharf } from '../../src/wharf.js';
import { runWharf } from '../support/server.js';
import { databaseEnv, forgetDatabase, onDatabase } from '../support/database.js';

let dir: string;
let wharf: Wharf;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wharf-fsck-'));
  wharf = await open();
});

afterEach(async () => {
  await wharf.close().catch(() => {});
  await rm(dir, { recursive: true, force: true });
  await forgetDatabase(dir);
});

const open = async () => openWharf(loadConfig({ flags: { data: dir }, env: await databaseEnv(dir) }));

async function pushBlob(repo: string, data: string): Promise<string> {
  const digest = digestOf(data);
  await wharf.registry.putBlob(repo, digest, Readable.from([Buffer.from(data)]));
  return digest;
}

/** Pushes config + layer and a manifest over them under `tag`; returns the digests. */
async function pushImage(repo: string, tag: string, seed: string): Promise<{ manifest: string; config: string; layer: string }> {
  const configData = JSON.stringify({ seed });
  const layerData = `layer ${seed}`;
  const config = await pushBlob(repo, configData);
  const layer = await pushBlob(repo, layerData);
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: configData.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: layerData.length }],
    }),
  );
  const { digest } = await wharf.registry.putManifest(repo, tag, body, OCI_MANIFEST);
  return { manifest: digest, config, layer };
}

const check = (repair = false, orphanGraceMs = 10 * 60_000) => fsck(wharf.blobs, wharf.meta, { repair, orphanGraceMs });
const kinds = (r: FsckReport) => r.problems.map((p) => p.kind).sort();

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** A blob file written behind the registry's back, dated `ageMs` ago. */
async function strayBlob(data: string, ageMs: number): Promise<string> {
  const digest = digestOf(data);
  const path = (wharf.blobs as FsBlobStore).blobPath(digest);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, data);
  const when = new Date(Date.now() - ageMs);
  await utimes(path, when, when);
  return path;
}

test('a consistent data directory has no problems', async () => {
  await pushImage('app/one', 'v1', 'one');
  await pushBlob('app/two', 'loose blob');
  const report = await check();
  assert.deepEqual(report.problems, []);
  assert.equal(report.blobsChecked, 3);
  assert.equal(report.manifestsChecked, 1);
});

test('a corrupted blob file is found and, with repair, removed with its rows', async () => {
  const digest = await pushBlob('app/c', 'original bytes');
  await writeFile((wharf.blobs as FsBlobStore).blobPath(digest), 'tampered bytes'); // same length, other content
  const report = await check();
  assert.deepEqual(kinds(report), ['corrupt-blob']);
  assert.match(report.problems[0]!.detail, new RegExp(digest));
  assert.equal(report.problems[0]!.repaired, false);
  assert.ok(await exists((wharf.blobs as FsBlobStore).blobPath(digest)), 'a check without --repair changes nothing');

  const repaired = await check(true);
  assert.deepEqual(kinds(repaired), ['corrupt-blob']);
  assert.ok(repaired.problems.every((p) => p.repaired));
  assert.ok(!(await exists((wharf.blobs as FsBlobStore).blobPath(digest))));
  await assert.rejects(wharf.registry.statBlob('app/c', digest), { code: 'BLOB_UNKNOWN' });
  assert.deepEqual((await check()).problems, []);
});

test('a corrupted layer of a manifest is removed, and the manifest that lost it is still reported', async () => {
  const image = await pushImage('app/lost', 'v1', 'lost');
  await writeFile((wharf.blobs as FsBlobStore).blobPath(image.layer), 'garbage!!!');
  const repaired = await check(true);
  assert.deepEqual(kinds(repaired), ['corrupt-blob', 'dangling-reference']);
  const dangling = repaired.problems.find((p) => p.kind === 'dangling-reference')!;
  assert.equal(dangling.repaired, false, 'fsck cannot bring lost bytes back and must not claim it did');
  assert.match(dangling.detail, new RegExp(image.layer));
});

test('an orphan blob file older than the grace period is found and removed; a young one is left alone', async () => {
  await pushBlob('app/o', 'kept');
  const old = await strayBlob('nobody knows me', 60 * 60_000);
  const young = await strayBlob('a push between rename and row', 0);
  const report = await check();
  assert.deepEqual(kinds(report), ['orphan-blob']);
  assert.match(report.problems[0]!.detail, new RegExp(digestOf('nobody knows me')));
  assert.deepEqual(kinds(await check(true)), ['orphan-blob']);
  assert.ok(!(await exists(old)));
  assert.ok(await exists(young));
  assert.deepEqual((await check()).problems, []);
  // With no grace at all the young one counts too.
  assert.deepEqual(kinds(await check(false, 0)), ['orphan-blob']);
});

test('a blob whose file is missing is found; repair drops its rows', async () => {
  const digest = await pushBlob('app/m', 'about to vanish');
  await unlink((wharf.blobs as FsBlobStore).blobPath(digest));
  const report = await check();
  assert.deepEqual(kinds(report), ['missing-blob']);
  assert.match(report.problems[0]!.detail, new RegExp(digest));
  await check(true);
  await assert.rejects(wharf.registry.statBlob('app/m', digest), { code: 'BLOB_UNKNOWN' });
  assert.deepEqual((await check()).problems, []);
});

test('a tag pointing at a missing manifest is found; repair deletes the tag and records it', async () => {
  const image = await pushImage('app/t', 'v1', 'tagged');
  await pushImage('app/t', 'v2', 'kept');
  await onDatabase(wharf.config.data, (db) => db.deleteFrom('manifests').where('digest', '=', image.manifest).execute());
  const report = await check();
  assert.deepEqual(kinds(report), ['dangling-tag']);
  assert.match(report.problems[0]!.detail, /app\/t:v1/);
  await check(true);
  assert.deepEqual(await wharf.registry.listTags('app/t'), ['v2']);
  const history = await wharf.meta.registry.tagHistory('app/t', 'v1');
  assert.equal(history[0]!.newDigest, null);
  assert.equal(history[0]!.actor, 'fsck');
  assert.deepEqual((await check()).problems, []);
});

test('`wharf fsck --data DIR` exits 1 while problems remain and 0 once repaired', async () => {
  const digest = await pushBlob('cli/app', 'cli bytes');
  await pushImage('cli/app', 'v1', 'cli');
  await wharf.close();
  await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7)), 'CLI BYTES');
  let res = await runWharf(['fsck', '--data', dir, '--json']);
  assert.equal(res.code, 1, res.stdout + res.stderr);
  const report = JSON.parse(res.stdout) as FsckReport;
  assert.deepEqual(kinds(report), ['corrupt-blob']);

  res = await runWharf(['fsck', '--data', dir, '--repair']);
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, /corrupt-blob\t.*\(repaired\)/);
  res = await runWharf(['fsck', '--data', dir]);
  assert.equal(res.code, 0, res.stdout + res.stderr);
  assert.match(res.stdout, /2 blobs and 1 manifests checked, 0 problems/);
});

test('wharf fsck refuses a data directory that does not exist, and creates none', async () => {
  const missing = join(tmpdir(), `wharf-no-such-data-${process.pid}-${Date.now()}`);
  const r = await runWharf(['fsck', '--data', missing]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /no Wharf data at/);
  await assert.rejects(stat(missing), 'a mistyped --data must not be created');
});
