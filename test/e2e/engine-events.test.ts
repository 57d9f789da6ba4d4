// The engine event stream against the machine's real dockerd, through a unix-socket relay the test can cut: only
// events of containers carrying the watched label arrive, a cut stream is opened again by itself (the listener
// hears it drop and come back), and what happened while it was down is delivered after it comes back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, createServer, type Socket } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DockerodeEvents } from '../../src/engine/dockerode-events.js';
import type { EngineEvent } from '../../src/engine/engine-events.js';
import { mustRun, run } from '../support/command.js';
import { BASE_IMAGE, ensureBaseImage } from '../support/images.js';
import { needTool } from '../support/tools.js';
import { eventually } from '../webhooks/receiver.js';

const DOCKER_SOCKET = '/var/run/docker.sock';

/** A unix socket that relays to dockerd; `cut()` drops every connection open now, as a network failure would. */
async function relay(path: string): Promise<{ cut(): void; close(): Promise<void> }> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const engine = createConnection(DOCKER_SOCKET);
    for (const s of [client, engine]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(engine).pipe(client);
    client.on('close', () => engine.destroy());
    engine.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    cut: () => {
      for (const s of open) s.destroy();
    },
    close: () => new Promise<void>((resolve) => {
      for (const s of open) s.destroy();
      server.close(() => resolve());
    }),
  };
}

test('container events of the labelled containers arrive, and a cut stream comes back with what it missed', { timeout: 120_000 }, async (t) => {
  if (!(await needTool(t, 'docker', 'busybox'))) return;
  await ensureBaseImage();
  const dir = await mkdtemp(join(tmpdir(), 'wharf-events-'));
  const app = `events-${randomBytes(4).toString('hex')}`;
  const relayed = await relay(join(dir, 'docker.sock'));
  const started: string[] = [];
  const start = async (labelled: boolean) => {
    const args = ['run', '-d', '--network', 'host', ...(labelled ? ['--label', `wharf.app=${app}`, '--label', 'wharf.env=production'] : ['--label', `other=${app}`]), BASE_IMAGE, 'sleep', '300'];
    const id = (await mustRun('docker', args)).stdout.trim();
    started.push(id);
    return id;
  };
  const received: EngineEvent[] = [];
  const connections: boolean[] = [];
  const losses: string[] = [];
  const watch = new DockerodeEvents({ endpoint: `unix://${join(dir, 'docker.sock')}` }).watch(
    { type: ['container'], label: [`wharf.app=${app}`], event: ['die', 'destroy'] },
    { event: (e) => received.push(e), connected: (again) => connections.push(again), lost: (e) => losses.push(e.message) },
  );
  try {
    await eventually(async () => (connections.length > 0 ? true : undefined), 'the stream to open', 10_000);
    assert.deepEqual(connections, [false]);
    const [a, b, other] = [await start(true), await start(true), await start(false)];

    await mustRun('docker', ['rm', '-f', other!]);
    await mustRun('docker', ['rm', '-f', a!]);
    const destroyed = await eventually(async () => received.find((e) => e.id === a && e.action === 'destroy'), 'the destroy event of the labelled container', 10_000);
    assert.equal(destroyed.type, 'container');
    assert.equal(destroyed.attributes['wharf.app'], app);
    assert.equal(destroyed.attributes['wharf.env'], 'production');
    assert.ok(Math.abs(destroyed.time - Date.now()) < 60_000, 'the time is in ms');
    assert.ok(received.some((e) => e.id === a && e.action === 'die'));

    // The stream is cut; the container removed while it is down is still heard of once it is back.
    relayed.cut();
    await mustRun('docker', ['rm', '-f', b!]);
    await eventually(async () => (connections.length === 2 ? true : undefined), 'the stream to come back', 15_000);
    assert.deepEqual(connections, [false, true]);
    assert.equal(losses.length, 1, losses.join('\n'));
    await eventually(async () => received.find((e) => e.id === b && e.action === 'destroy'), 'the event of the gap, after the stream came back', 10_000);
    assert.ok(!received.some((e) => e.id === other), 'no event of a container without the label');
    assert.equal(received.filter((e) => e.id === a && e.action === 'destroy').length, 1, 'the last event seen is not delivered twice');

    // Closed: nothing more arrives, and the stream is not opened again.
    watch.close();
    const c = await start(true);
    await mustRun('docker', ['rm', '-f', c]);
    await new Promise((r) => setTimeout(r, 1_500));
    assert.ok(!received.some((e) => e.id === c));
    assert.equal(connections.length, 2);
  } finally {
    watch.close();
    await run('docker', ['rm', '-f', ...started]);
    await relayed.close();
    await rm(dir, { recursive: true, force: true });
  }
});
