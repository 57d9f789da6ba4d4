// Webhooks end to end: real docker pushes to a running server reach a receiver on loopback, and deliveries
// queued while the receiver is down survive a server restart and are delivered afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mustRun } from '../support/command.js';
import { buildTestApp, removeImages } from '../support/images.js';
import { startWharf, withLogsOnFailure, type WharfServer } from '../support/server.js';
import { needTool } from '../support/tools.js';
import { eventually, startReceiver } from '../webhooks/receiver.js';

interface Row {
  id: string;
  event: string;
  status: string;
  attempts: number;
}

async function api<T>(server: WharfServer, method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { authorization: server.authorization };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(server.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

function pushedDigest(stdout: string): string {
  const d = /digest: (sha256:[0-9a-f]{64})/.exec(stdout)?.[1];
  assert.ok(d, `docker push printed no digest:\n${stdout}`);
  return d;
}

test('docker pushes reach a webhook; deliveries pending at shutdown are delivered after a restart', { timeout: 300_000 }, async (t) => {
  if (!(await needTool(t, 'docker', 'busybox'))) return;
  const work = await mkdtemp(join(tmpdir(), 'wharf-e2e-webhooks-'));
  const dataDir = join(work, 'data');
  const configFile = join(work, 'wharf.yaml');
  await writeFile(configFile, 'webhooks:\n  backoffBase: 100ms\n  backoffMax: 300ms\n  maxAttempts: 100\n  pollInterval: 500ms\n');
  let receiverUp = true;
  const receiver = await startReceiver(() => (receiverUp ? 200 : 503));
  const refs: string[] = [];
  const servers: WharfServer[] = [];
  t.after(async () => {
    for (const s of servers) await s.stop();
    await removeImages('docker', refs);
    await receiver.close();
    await rm(work, { recursive: true, force: true });
  });

  const first = await startWharf({ dataDir, args: ['--config', configFile] });
  servers.push(first);
  await withLogsOnFailure(first, async () => {
    const sub = await api<{ id: number; secret: string }>(first, 'POST', '/api/v1/webhooks', { url: receiver.url, events: ['push', 'tag.moved'] });
    await first.login('docker');
    const ref = `${first.host}/hooks/app:latest`;
    refs.push(ref);

    await buildTestApp(ref, { sizeKiB: 16 });
    const digest1 = pushedDigest((await mustRun('docker', ['push', ref])).stdout);
    const [push1] = await receiver.waitFor(1, 30_000);
    assert.equal(push1!.headers['x-wharf-event'], 'push');
    assert.equal(push1!.headers['x-wharf-signature-256'], 'sha256=' + createHmac('sha256', sub.secret).update(push1!.raw).digest('hex'));
    assert.deepEqual([push1!.body.repository, push1!.body.tag, push1!.body.digest], ['hooks/app', 'latest', digest1]);

    // The receiver goes down; the tag is pushed again with another image: push + tag.moved, both failing.
    receiverUp = false;
    await buildTestApp(ref, { sizeKiB: 16 });
    const digest2 = pushedDigest((await mustRun('docker', ['push', ref])).stdout);
    assert.notEqual(digest2, digest1);
    const failing = await eventually(async () => {
      const rows = await api<Row[]>(first, 'GET', `/api/v1/webhooks/deliveries?subscription=${sub.id}&status=pending`);
      return rows.length === 2 && rows.every((r) => r.attempts >= 1) ? rows : undefined;
    }, 'two failing deliveries', 30_000);
    await first.stop();
    servers.length = 0;
    const failedRequests = receiver.received.length - 1;
    assert.ok(failedRequests >= 2);

    receiverUp = true;
    const second = await startWharf({ dataDir, args: ['--config', configFile] });
    servers.push(second);
    await withLogsOnFailure(second, async () => {
      const done = await eventually(async () => {
        const rows = await api<Row[]>(second, 'GET', `/api/v1/webhooks/deliveries?subscription=${sub.id}`);
        return rows.length === 3 && rows.every((r) => r.status === 'succeeded') ? rows : undefined;
      }, 'the deliveries after the restart', 30_000);
      for (const f of failing) {
        const after = done.find((r) => r.id === f.id)!;
        assert.ok(after.attempts > f.attempts, `delivery ${f.id}: ${f.attempts} attempts before the restart, ${after.attempts} after`);
        const requests = receiver.received.filter((r) => r.headers['x-wharf-delivery'] === f.id);
        assert.equal(requests.filter((r) => r.status === 200).length, 1, 'delivered once');
        assert.equal(requests.at(-1)!.status, 200);
        assert.ok(requests.length >= 2);
      }
      const moved = receiver.received.find((r) => r.status === 200 && r.headers['x-wharf-event'] === 'tag.moved')!;
      assert.deepEqual([moved.body.tag, moved.body.from, moved.body.to], ['latest', digest1, digest2]);
      const pushed = receiver.received.filter((r) => r.status === 200 && r.headers['x-wharf-event'] === 'push').map((r) => r.body.digest);
      assert.deepEqual(pushed, [digest1, digest2]);
    });
  });
});
