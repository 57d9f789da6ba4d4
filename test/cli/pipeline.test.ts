// The pipeline's view of the server, against a small HTTP server that answers as Wharf does: a release that
// deploys is one NDJSON answer whose first line is the release — the release step has it while the
// deployment still runs — and whose rest the deploy step follows; the targets come from the applied app file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiClient } from '../../src/cli/client.js';
import { pipelineServer } from '../../src/cli/pipeline.js';

const DIGEST = `sha256:${'2'.repeat(64)}`;
const HOST = 'staging-1';

type Handler = (req: IncomingMessage, body: any, res: ServerResponse) => void;

async function serve(t: { after(fn: () => unknown): void }, handle: Handler): Promise<ApiClient> {
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c));
    req.on('end', () => handle(req, text ? JSON.parse(text) : undefined, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return new ApiClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { username: 'ci', password: 'secret' });
}

function ndjson(res: ServerResponse): (value: unknown) => void {
  res.writeHead(200, { 'Content-Type': 'application/x-ndjson; charset=utf-8' });
  return (value) => res.write(JSON.stringify(value) + '\n');
}

const OUTCOME = { deployment: 5, environment: 'staging', digest: DIGEST, release: 7, result: { status: 'succeeded', reason: null, steps: [], startedAt: 1, finishedAt: 2 } };

test('a release that deploys: the release comes first, the deployment is followed to its outcome afterwards', { timeout: 10_000 }, async (t) => {
  let rest: (() => void) | undefined;
  const bodies: unknown[] = [];
  const client = await serve(t, (req, body, res) => {
    bodies.push([req.method, req.url, body]);
    const line = ndjson(res);
    line({ release: { id: 7, digest: DIGEST, environment: 'staging', kind: 'release' } });
    // The rest is sent only when the test says so: the release must not wait for the deployment.
    rest = () => {
      line({ event: { at: 1, kind: 'pulled', target: HOST, message: 'pulled' } });
      // one line split over two writes, as TCP may deliver it
      const last = JSON.stringify(OUTCOME) + '\n';
      res.write(last.slice(0, 20));
      setTimeout(() => res.end(last.slice(20)), 20);
    };
  });
  const made = await pipelineServer(client).release('hello', 'staging', DIGEST, 'pipeline run 1', true);
  assert.deepEqual([made.id, made.digest], [7, DIGEST]);
  assert.deepEqual(bodies, [['POST', '/api/v1/apps/hello/releases', { environment: 'staging', ref: DIGEST, note: 'pipeline run 1', deploy: true }]]);
  assert.ok(made.deployment, 'a deployment to follow');
  rest!();
  const lines: string[] = [];
  const outcome = await made.deployment.follow((l) => lines.push(l));
  assert.deepEqual(lines, [`[${HOST}] pulled: pulled`]);
  assert.deepEqual(outcome, OUTCOME);
});

test('a release that does not deploy is a plain answer, with nothing to follow', { timeout: 10_000 }, async (t) => {
  const client = await serve(t, (_req, body, res) => {
    assert.equal(body.deploy, false);
    res.writeHead(201, { 'Content-Type': 'application/json' }).end(JSON.stringify({ id: 3, digest: DIGEST, environment: 'staging' }));
  });
  const made = await pipelineServer(client).release('team/hello', 'staging', DIGEST, 'n', false);
  assert.deepEqual(made, { id: 3, digest: DIGEST });
});

test('an error line, or an answer that ends without the outcome, fails the deployment', { timeout: 10_000 }, async (t) => {
  const endings: ((line: (v: unknown) => void) => void)[] = [
    (line) => line({ error: { code: 'CONFLICT', message: 'deployment #4 of this environment is still running' } }),
    (line) => line({ event: { at: 1, kind: 'pulling', target: HOST, message: 'pulling' } }),
  ];
  let i = 0;
  const client = await serve(t, (_req, _body, res) => {
    const line = ndjson(res);
    line({ release: { id: 7, digest: DIGEST } });
    endings[i++]!(line);
    res.end();
  });
  const server = pipelineServer(client);
  const conflict = await server.release('hello', 'staging', DIGEST, 'n', true);
  await assert.rejects(conflict.deployment!.follow(() => {}), /deployment #4 of this environment is still running/);
  const cut = await server.release('hello', 'staging', DIGEST, 'n', true);
  await assert.rejects(cut.deployment!.follow(() => {}), /the server ended the deployment without its outcome/);
});

test('abandoning a deployment closes the connection', { timeout: 10_000 }, async (t) => {
  let closed!: Promise<void>;
  const client = await serve(t, (_req, _body, res) => {
    closed = new Promise((resolve) => res.once('close', () => resolve()));
    ndjson(res)({ release: { id: 7, digest: DIGEST } });
  });
  const made = await pipelineServer(client).release('hello', 'staging', DIGEST, 'n', true);
  await made.deployment!.abandon();
  await closed;
});

test('deploy targets come from the applied app file: hosts, none, or null without an app file', { timeout: 10_000 }, async (t) => {
  const client = await serve(t, (req, _body, res) => {
    if (req.url === '/api/v1/apps/none/app-file') {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'NOT_FOUND', message: 'app none has no app file' }] }));
      return;
    }
    const yaml = `app: hello\nenvironments:\n  staging:\n    targets: ["${HOST}"]\n  production: {}\n`;
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ app: 'hello', yaml }));
  });
  const server = pipelineServer(client);
  assert.deepEqual(await server.deployTargets('hello', 'staging'), [HOST]);
  assert.deepEqual(await server.deployTargets('hello', 'production'), []);
  assert.deepEqual(await server.deployTargets('hello', 'qa'), []);
  assert.equal(await server.deployTargets('none', 'staging'), null);
});
