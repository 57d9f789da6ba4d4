// Wharf's own HTTP health check against a real HTTP server on loopback (the container is an in-memory one that
// runs): an app that answers 4xx/5xx fails the check after `failures` answers in a row instead of waiting out the
// health timeout; one that refuses connections (still starting) is waited for; a few errors then 200 is healthy.
// A failure is reported by its status alone: what the app answers never lands in deployment records.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tellingProbe, waitHealthy } from '../../src/deploy/health.js';
import { freePort } from '../support/net.js';
import { MemoryHost } from '../support/memory-host.js';

let server: Server;
let port: number;
let answers: number[] = [];

before(async () => {
  server = createServer((_req, res) => {
    res.writeHead(answers.shift() ?? 500);
    res.end('nope');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
after(() => new Promise<void>((r) => server.close(() => r())));

async function running(): Promise<{ host: MemoryHost; id: string }> {
  const host = new MemoryHost('unix:///health');
  const id = await host.createContainer({ name: 'c', image: 'app@sha256:' + '0'.repeat(64), env: [], labels: { 'wharf.digest': 'sha256:x' }, mounts: [] } as never);
  await host.startContainer(id);
  return { host, id };
}

test('4xx/5xx answers in a row fail the check at once, long before the health timeout', async () => {
  answers = [];
  const { host, id } = await running();
  const outcome = await waitHealthy({ host, containerId: id, address: '127.0.0.1', port, check: { http: 'http://{host}:{port}/', interval: 20, failures: 4 }, timeoutMs: 600_000, monitorMs: 0 });
  assert.deepEqual(outcome, { healthy: false, reason: `health check failed 4 times in a row: GET http://127.0.0.1:${port}/: HTTP 500` });
});

test('errors that stop before the limit are waited out', async () => {
  answers = [503, 404, 200];
  const { host, id } = await running();
  const outcome = await waitHealthy({ host, containerId: id, address: '127.0.0.1', port, check: { http: 'http://{host}:{port}/', interval: 20 }, timeoutMs: 30_000, monitorMs: 0 });
  assert.deepEqual(outcome, { healthy: true });
});

test('a refused connection is not a definite failure: the check waits for the whole health timeout', async () => {
  const closed = await freePort();
  const { host, id } = await running();
  const outcome = await waitHealthy({ host, containerId: id, address: '127.0.0.1', port: closed, check: { http: 'http://{host}:{port}/', interval: 20, failures: 1 }, timeoutMs: 400, monitorMs: 0 });
  assert.equal(outcome.healthy, false);
  assert.match((outcome as { reason: string }).reason, new RegExp(`^not healthy after 400ms: GET http://127\\.0\\.0\\.1:${closed}/: ECONNREFUSED$`));
});

test('a failing http health check reports the status and never the response body', async (t) => {
  const server = createServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'text/plain' });
    res.end('db password is hunter2; internal trace at /srv/app.js:12');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;

  const host = new MemoryHost('memory://one');
  const id = await host.createContainer({ name: 'app', image: 'app', env: [], labels: { 'wharf.digest': 'sha256:x' }, mounts: [] });
  await host.startContainer(id);
  const outcome = await waitHealthy({
    host,
    containerId: id,
    check: { http: 'http://{host}:{port}/health', interval: 50, timeout: 1_000 },
    address: '127.0.0.1',
    port,
    timeoutMs: 200,
    monitorMs: 0,
  });
  assert.equal(outcome.healthy, false);
  const reason = (outcome as { reason: string }).reason;
  assert.match(reason, new RegExp(`GET http://127\\.0\\.0\\.1:${port}/health: HTTP 503$`));
  assert.doesNotMatch(reason, /hunter2|trace/);
});

test('the failed probe that says why: the check\'s own answer, not an exec Docker could not run or a probe cut by the stop', () => {
  const selfTest = { exitCode: 1, output: 'self-test failed: /www/fail present\n' };
  const execFailed = { exitCode: -1, output: 'OCI runtime exec failed: exec failed: unable to start container process: read init-p: connection reset by peer: unknown' };
  const cut = { exitCode: 137, output: '' };
  assert.equal(tellingProbe([{ exitCode: 0, output: 'ok' }, selfTest, execFailed, cut]), selfTest);
  assert.equal(tellingProbe([selfTest, { exitCode: 0, output: 'ok' }, cut]), selfTest);
  assert.equal(tellingProbe([execFailed, cut]), execFailed, 'an exec failure is all there is: it is said');
  assert.equal(tellingProbe([cut]), cut);
  assert.equal(tellingProbe([{ exitCode: 0, output: 'ok' }]), undefined);
});

/** An engine that reports the container's events: the test changes the container and changeds it. */
class EventHost extends MemoryHost {
  inspections = 0;
  changed?: () => void;
  constructor(private readonly opens = true) {
    super('unix:///events');
  }
  override async inspectContainer(id: string) {
    this.inspections++;
    return super.inspectContainer(id);
  }
  async watchContainer(_id: string, changed: () => void): Promise<{ close(): void }> {
    if (!this.opens) throw new Error('the event stream did not open');
    this.changed = changed;
    return { close: () => (this.changed = undefined) };
  }
}

async function starting(host: EventHost): Promise<string> {
  const id = await host.createContainer({ name: 'c', image: 'app@sha256:' + '0'.repeat(64), env: [], labels: { 'wharf.digest': 'sha256:x' }, mounts: [] } as never);
  await host.startContainer(id);
  host.containers.get(id)!.health = 'starting';
  return id;
}

test('the engine\'s health is looked at again at the container\'s event, not at the next poll; an exit in the monitor period too', async () => {
  const host = new EventHost();
  const id = await starting(host);
  setTimeout(() => {
    host.containers.get(id)!.health = 'healthy';
    host.changed?.();
  }, 300);
  assert.deepEqual(await waitHealthy({ host, containerId: id, address: '', timeoutMs: 30_000, monitorMs: 0 }), { healthy: true });
  // at the start and at the event: a poll every 250 ms would have looked three times by then
  assert.equal(host.inspections, 2);
  assert.equal(host.changed, undefined, 'the stream is closed once the wait is over');

  const began = Date.now();
  setTimeout(() => {
    Object.assign(host.containers.get(id)!, { running: false, status: 'exited', exitCode: 3 });
    host.changed?.();
  }, 100);
  const outcome = await waitHealthy({ host, containerId: id, address: '', timeoutMs: 30_000, monitorMs: 60_000 });
  assert.deepEqual(outcome, { healthy: false, reason: 'container exited with code 3' });
  assert.ok(Date.now() - began < 30_000, 'seen long before the monitor period ends');
});

test('an event stream that does not open: the engine\'s health is polled', async () => {
  const host = new EventHost(false);
  const id = await starting(host);
  setTimeout(() => (host.containers.get(id)!.health = 'healthy'), 300);
  assert.deepEqual(await waitHealthy({ host, containerId: id, address: '', timeoutMs: 30_000, monitorMs: 0 }), { healthy: true });
  assert.ok(host.inspections >= 2);
});

test('an event heard while the engine is being asked (not while waiting) makes the next wait end at once', async () => {
  const host = new EventHost();
  const id = await starting(host);
  const inspect = host.inspectContainer.bind(host);
  // The first look still finds it starting, and the health change is heard during that look, before any wait began.
  host.inspectContainer = async (cid: string) => {
    const state = await inspect(cid);
    if (host.inspections === 1) {
      host.containers.get(id)!.health = 'healthy';
      host.changed?.();
    }
    return state;
  };
  const began = Date.now();
  assert.deepEqual(await waitHealthy({ host, containerId: id, address: '', timeoutMs: 30_000, monitorMs: 0 }), { healthy: true });
  assert.equal(host.inspections, 2);
  assert.ok(Date.now() - began < 500, 'not after the fallback second');
});
