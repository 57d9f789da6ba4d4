// Crash safety: kill -9 the server in the middle of concurrent pushes, at several moments, restart it on
// the same data directory, and check that nothing partial is visible, no tag dangles, every acknowledged
// push survived, `wharf fsck` finds the store clean, and pushing again completes.
// scripts/test.js: alone (kill -9 at chosen moments of a push)
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { needTool } from '../support/tools.js';
import { describeFailure, run, type RunResult } from '../support/command.js';
import { startWharf, runWharf, withLogsOnFailure, type WharfServer } from '../support/server.js';
import { authHeaders, hashBlob, sha256, verifyRepository } from '../support/registry-client.js';
import { storeVariants } from '../support/s3.js';
import { addImage, initLayout, makeLayer, tagInLayout, type Layer } from '../support/oci-layout.js';

// Big enough that a round of pushes takes about a second (0.9–1.9 s at 16 MiB in CI; the kills at 10 % and 50 % of it
// land inside it), small because each MiB is gzipped, pushed, pulled, hashed and fsck-ed many times: at 16 MiB this
// file took 66 CPU s per suite.
const BIG_LAYER_MIB = 8;
const REPOS = ['crash/a', 'crash/b', 'crash/c'];
/** When to kill: early and midway through a round (by how long an uninterrupted round took), and the moment a push completes. */
const KILL_MOMENTS: { label: string; wait: (roundMs: number, pushes: Promise<RunResult>[]) => Promise<unknown> }[] = [
  { label: 'early', wait: (roundMs) => sleep(Math.max(20, roundMs * 0.1)) },
  { label: 'midway', wait: (roundMs) => sleep(roundMs * 0.5) },
  { label: 'as the first push completes', wait: (_, pushes) => Promise.race(pushes) },
];
const PARTIAL_BLOB_BYTES = 8 * 1024 * 1024;

interface Push {
  repo: string;
  tag: string;
  /** the skopeo source, `DIR:NAME` of an OCI layout */
  layout: string;
  /** the manifest digest the tag must point at, if it exists at all */
  digest: string;
}

/** WHARF_S3_* of the store under test (empty: the filesystem). */
let storeEnv: Record<string, string> = {};

for (const store of storeVariants()) {
  test(`kill -9 during concurrent pushes never leaves a partial or dangling state (${store.name} blob store)`, { skip: store.skip, timeout: 300_000 }, async (t) => {
    if (!(await needTool(t, 'skopeo'))) return;
    await store.setup();
    storeEnv = store.env();
    try {
      await crashesDuringPushes(t);
    } finally {
      await store.teardown();
    }
  });
}

async function crashesDuringPushes(t: TestContext): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'wharf-test-crash-'));
  const dataDir = join(work, 'data');
  let server: WharfServer | undefined;
  const history: string[] = []; // logs of every server run, for the failure message
  const logs = { logs: () => [...history, server?.logs() ?? ''].join('\n--- restart\n') };
  const start = async () => {
    if (server) history.push(server.logs());
    server = await startWharf({ dataDir, env: storeEnv });
    return server;
  };

  try {
    await withLogsOnFailure(logs, async () => {
      const acknowledged: Push[] = [];
      const everything: Push[] = [];
      let interrupted = 0;

      // Round 0 runs to completion: it measures how long a round takes and leaves data the crashes must not harm.
      const round0 = await makeRound(work, 0);
      everything.push(...round0);
      const s0 = await start();
      const began = Date.now();
      const results0 = await Promise.all(round0.map((p) => pushImage(s0, p)));
      const roundMs = Date.now() - began;
      for (const [i, r] of results0.entries()) assert.equal(r.code, 0, describeFailure('skopeo copy →', [round0[i].repo], r));
      acknowledged.push(...round0);
      await s0.stop();
      t.diagnostic(`an uninterrupted round of ${round0.length} pushes took ${roundMs} ms`);

      for (const [i, moment] of KILL_MOMENTS.entries()) {
        const round = await makeRound(work, i + 1);
        everything.push(...round);
        const s = await start();
        const partial = await startPartialUpload(s);
        const pushes = round.map((p) => pushImage(s, p));
        await moment.wait(roundMs, pushes);
        await s.kill('SIGKILL');
        const results = await Promise.all(pushes);
        partial.abort();
        results.forEach((r, j) => (r.code === 0 ? acknowledged.push(round[j]) : interrupted++));
        t.diagnostic(`killed ${moment.label}: ${results.filter((r) => r.code === 0).length}/${round.length} pushes had completed`);

        const restarted = await start();
        await checkConsistent(restarted, acknowledged, everything);
        await checkPartialUpload(restarted, partial);
        await restarted.stop();
        await checkFsck(dataDir);
      }
      assert.ok(interrupted > 0, 'no push was ever interrupted: the kills came too late to test anything');

      // Everything pushes again, over whatever the crashes left behind.
      const final = await start();
      for (let round = 0; round <= KILL_MOMENTS.length; round++) {
        const pushes = everything.filter((p) => p.tag === `r${round}`);
        const results = await Promise.all(pushes.map((p) => pushImage(final, p)));
        for (const [i, r] of results.entries()) assert.equal(r.code, 0, describeFailure('skopeo copy →', [`${pushes[i].repo}:${pushes[i].tag}`], r));
      }
      await checkConsistent(final, everything, everything);
      await final.stop();
      await checkFsck(dataDir);
    });
  } finally {
    await server?.kill('SIGKILL');
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * One round's images, in one OCI layout: a/ and b/ share one big random layer (the same blob uploaded
 * concurrently to two repositories), c/ has its own; each image also has a small layer of its own.
 */
async function makeRound(work: string, round: number): Promise<Push[]> {
  const layout = join(work, `round${round}`);
  await initLayout(layout);
  const big = [bigLayer(), bigLayer()];
  const tag = `r${round}`;
  const pushes: Push[] = [];
  for (const [i, repo] of REPOS.entries()) {
    const small = makeLayer([{ name: 'id.txt', content: Buffer.from(`${repo} ${tag} ${randomBytes(8).toString('hex')}\n`) }]);
    const manifest = await addImage(layout, [i < 2 ? big[0] : big[1], small], { architecture: 'amd64', os: 'linux' });
    const name = `${tag}-${i}`;
    await tagInLayout(layout, name, manifest);
    pushes.push({ repo, tag, layout: `${layout}:${name}`, digest: manifest.digest });
  }
  return pushes;
}

function bigLayer(): Layer {
  return makeLayer([{ name: 'random.bin', content: randomBytes(BIG_LAYER_MIB * 1024 * 1024) }]);
}

function pushImage(server: WharfServer, p: Push): Promise<RunResult> {
  return run(
    'skopeo',
    [
      'copy', '--dest-tls-verify=false', '--preserve-digests', '--dest-creds', `${server.admin.username}:${server.admin.password}`,
      `oci:${p.layout}`, `docker://${server.host}/${p.repo}:${p.tag}`,
    ],
    { timeoutMs: 120_000 },
  );
}

/**
 * Every tag that exists resolves to a manifest whose blobs all exist and re-hash to their digests,
 * a tag only ever points at what was pushed to it, and every acknowledged push is there.
 */
async function checkConsistent(server: WharfServer, acknowledged: Push[], everything: Push[]) {
  for (const repo of REPOS) {
    const { tags, problems } = await verifyRepository(server.url, repo);
    assert.deepEqual(problems, [], `${repo} after restart`);
    for (const [tag, digest] of tags) {
      const pushed = everything.find((p) => p.repo === repo && p.tag === tag);
      assert.equal(digest, pushed?.digest, `${repo}:${tag} points at what was pushed to it`);
    }
    for (const p of acknowledged.filter((p) => p.repo === repo)) {
      assert.equal(tags.get(p.tag), p.digest, `acknowledged push ${repo}:${p.tag} survived the crash`);
    }
  }
}

async function checkFsck(dataDir: string) {
  const r = await runWharf(['fsck', '--data', dataDir], { env: storeEnv });
  assert.equal(r.code, 0, `wharf fsck found problems after a crash:\n${describeFailure('wharf', ['fsck'], r)}`);
}

interface PartialUpload {
  data: Buffer;
  digest: string;
  /** bytes handed to the socket before the crash (the server may have stored fewer) */
  sent: number;
  /** upload session path (with query), valid across restarts */
  location: string;
  abort(): void;
}

/** Opens an upload session and streams half a blob into it, leaving the request open: in flight at the kill. */
async function startPartialUpload(server: WharfServer): Promise<PartialUpload> {
  const data = randomBytes(PARTIAL_BLOB_BYTES);
  const res = await fetch(`${server.url}/v2/crash/partial/blobs/uploads/`, { method: 'POST', headers: authHeaders(server.url) });
  assert.equal(res.status, 202, `POST upload: ${res.status} ${await res.text()}`);
  const loc = new URL(res.headers.get('location') ?? '', server.url);
  const location = loc.pathname + loc.search;
  const half = data.subarray(0, data.length / 2);
  const req = request(`${server.url}${location}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/octet-stream', ...authHeaders(server.url) }, // no Content-Length, no Content-Range: a streamed upload
  });
  req.on('error', () => {}); // the server dies under it, on purpose
  req.write(half);
  return { data, digest: sha256(data), sent: half.length, location, abort: () => req.destroy() };
}

/**
 * The half-uploaded blob must not exist. Its session may have been lost (404) or kept (204 + Range);
 * if kept, completing the upload from the offset the server reports must yield the right blob.
 */
async function checkPartialUpload(server: WharfServer, partial: PartialUpload) {
  const head = await fetch(`${server.url}/v2/crash/partial/blobs/${partial.digest}`, { method: 'HEAD', headers: authHeaders(server.url) });
  assert.equal(head.status, 404, 'a half-uploaded blob is not visible');

  const status = await fetch(`${server.url}${partial.location}`, { headers: authHeaders(server.url) });
  const body = await status.text();
  if (status.status === 404) {
    assert.match(body, /BLOB_UPLOAD_UNKNOWN/);
    return;
  }
  assert.equal(status.status, 204, `upload status after restart: ${status.status} ${body}`);
  const range = status.headers.get('range')?.match(/^0-(\d+)$/);
  assert.ok(range, `upload status without a Range header: ${status.headers.get('range')}`);
  const stored = Number(range[1]) + 1;
  assert.ok(stored <= partial.sent, `server claims ${stored} bytes but only ${partial.sent} were sent`);
  if (stored <= 1) return; // "0-0" cannot tell zero bytes from one
  const loc = new URL(status.headers.get('location') ?? partial.location, server.url);
  const put = new URL(loc);
  put.searchParams.set('digest', partial.digest);
  const rest = partial.data.subarray(stored);
  const done = await fetch(put, {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(rest.length), ...authHeaders(server.url) },
    body: new Uint8Array(rest),
  });
  assert.equal(done.status, 201, `resuming the upload at byte ${stored}: ${done.status} ${await done.text()}`);
  const blob = await hashBlob(server.url, 'crash/partial', partial.digest);
  assert.deepEqual(blob, { status: 200, digest: partial.digest, size: partial.data.length });
}
