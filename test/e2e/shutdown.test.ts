// Graceful shutdown of a real `wharf serve`: on SIGTERM a chunk still streaming finishes (its answer closes the
// connection), new connections are refused, and the process exits; past the drain deadline a stalled upload is cut.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { startWharf, withLogsOnFailure, type WharfServer } from '../support/server.js';
import { eventually } from '../webhooks/receiver.js';

/** PATCHes `chunks` to the upload at `location`, one every `gapMs`, calling (and awaiting) `onFirst` after the first is sent. */
function slowPatch(url: string, authorization: string, chunks: Buffer[], gapMs: number, onFirst: () => Promise<void>): Promise<{ status: number; range?: string; connection?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PATCH', headers: { authorization, 'content-type': 'application/octet-stream' } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode!, range: res.headers.range, connection: res.headers.connection }));
    });
    req.on('error', reject);
    void (async () => {
      for (const [i, chunk] of chunks.entries()) {
        // A request the server cut writes nothing more: the rest of the chunks would only keep this process alive.
        if (req.destroyed) return;
        await new Promise((r) => req.write(chunk, r));
        // The signal only once the server has surely accepted this connection and is reading its body.
        if (i === 0) await sleep(200).then(onFirst).catch((e) => req.destroy(e));
        await sleep(gapMs);
      }
      req.end();
    })();
  });
}

/** SIGTERM, and back once the server says it is shutting down: the drain has begun (it starts right after that line). */
async function terminate(server: WharfServer): Promise<void> {
  server.proc.kill('SIGTERM');
  await eventually(async () => (/"msg":"shutting down"/.test(server.logs()) ? true : undefined), 'the server to begin its drain', 20_000);
}

async function startUpload(base: string, authorization: string): Promise<string> {
  const res = await fetch(`${base}/v2/drain/app/blobs/uploads/`, { method: 'POST', headers: { authorization } });
  assert.equal(res.status, 202);
  return new URL(res.headers.get('location')!, base).toString();
}

test('SIGTERM lets a chunk in flight finish, refuses new connections, then exits', { timeout: 60_000 }, async () => {
  const server = await startWharf({ env: { WHARF_DRAIN_TIMEOUT: '20s' } });
  try {
    await withLogsOnFailure(server, async () => {
      const location = await startUpload(server.url, server.authorization);
      const chunks = Array.from({ length: 6 }, () => randomBytes(64 * 1024));
      const exited = new Promise((r) => server.proc.once('exit', r));
      // The chunks after the first go once the drain has begun: the gap need not cover the signal's way there.
      const answer = await slowPatch(location, server.authorization, chunks, 50, () => terminate(server));
      assert.equal(answer.status, 202);
      assert.equal(answer.range, `0-${6 * 64 * 1024 - 1}`, 'every byte sent after the SIGTERM was taken');
      assert.equal(answer.connection, 'close', 'the answer tells the client (or proxy) not to reuse the connection');
      await exited;
      assert.equal(server.proc.exitCode, 0);
      await assert.rejects(fetch(`${server.url}/healthz`), 'no new connection after the drain');
    });
  } finally {
    await server.stop();
  }
});

test('a stalled upload is cut at the drain deadline and the process still exits', { timeout: 60_000 }, async () => {
  const server = await startWharf({ env: { WHARF_DRAIN_TIMEOUT: '1s' } });
  try {
    await withLogsOnFailure(server, async () => {
      const location = await startUpload(server.url, server.authorization);
      const exited = new Promise((r) => server.proc.once('exit', r));
      const started = Date.now();
      // The body never ends: only the deadline ends this request.
      const stalled = slowPatch(location, server.authorization, Array.from({ length: 100 }, () => randomBytes(1024)), 200, () => terminate(server));
      await assert.rejects(stalled);
      await exited;
      const took = Date.now() - started;
      assert.ok(took >= 900 && took < 10_000, `exited ${took} ms after SIGTERM (deadline 1 s)`);
    });
  } finally {
    await server.stop();
  }
});
