// What `wharf serve` says: start-up lines for a person (where it listens, the UI, the first command), an access
// line per request with method, path, status, bytes, duration and user, a line per push and per failed login;
// JSON lines with ISO times when stdout is not a terminal, lines for people with --log-format pretty.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT, startWharf, TEST_ADMIN_PASSWORD } from '../support/server.js';
import { sha256 } from '../support/registry-client.js';

const until = async (logs: () => string, re: RegExp, what: string) => {
  for (let i = 0; i < 100; i++) {
    if (re.test(logs())) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`no log line for ${what} (${re}):\n${logs()}`);
};

test('JSON log: start-up, access lines with the user, a push and a failed login', { timeout: 60_000 }, async () => {
  const server = await startWharf();
  try {
    const lines = () => server.logs().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, any>);
    const listening = lines().find((l) => l.msg === 'listening')!;
    assert.match(listening.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO times');
    await until(server.logs, /Wharf is running/, 'the welcome');
    const welcome = lines().find((l) => /Wharf is running/.test(l.msg))!.msg as string;
    assert.ok(welcome.includes(`web UI ${server.url}/`), welcome);
    assert.ok(welcome.includes(`next: wharf login ${server.url} -u admin`), welcome);

    const auth = { authorization: server.authorization };
    const layer = Buffer.from('a layer');
    const up = await fetch(`${server.url}/v2/logged/app/blobs/uploads/?digest=${sha256(layer)}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: layer });
    assert.equal(up.status, 201);
    const config = Buffer.from('{}');
    await fetch(`${server.url}/v2/logged/app/blobs/uploads/?digest=${sha256(config)}`, { method: 'POST', headers: auth, body: config });
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `${sha256(config)}`, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `${sha256(layer)}`, size: layer.length }],
    });
    const put = await fetch(`${server.url}/v2/logged/app/manifests/1.0.0`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
    assert.equal(put.status, 201);
    const get = await fetch(`${server.url}/v2/logged/app/manifests/1.0.0`, { headers: { ...auth, accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal((await get.text()).length, Buffer.byteLength(manifest));
    const wrong = await fetch(`${server.url}/v2/`, { headers: { authorization: `Basic ${Buffer.from('admin:not-the-password').toString('base64')}` } });
    assert.equal(wrong.status, 401);
    await (await fetch(`${server.url}/healthz`)).text();

    await until(server.logs, /login\.failure/, 'the failed login');
    const access = lines().filter((l) => l.req);
    const pull = access.find((l) => l.req.method === 'GET' && l.req.path === '/v2/logged/app/manifests/1.0.0')!;
    assert.deepEqual([pull.level, pull.req.status, pull.req.user], [30, 200, 'admin']);
    assert.ok(pull.req.bytes > Buffer.byteLength(manifest) && pull.req.bytes < Buffer.byteLength(manifest) + 2048, 'bytes sent: the manifest and its headers');
    assert.equal(typeof pull.req.ms, 'number');
    assert.match(pull.msg, /^GET \/v2\/logged\/app\/manifests\/1\.0\.0 200 \d+ B [\d.]+ ms admin$/);
    assert.ok(access.some((l) => l.req.method === 'PUT' && l.req.status === 201 && l.req.user === 'admin'));
    assert.ok(!access.some((l) => l.req.path === '/healthz'), 'health probes are not logged at info');
    const push = lines().find((l) => l.audit?.action === 'manifest.push')!;
    assert.match(push.msg, /^manifest\.push logged\/app:1\.0\.0 sha256:[0-9a-f]{64} by admin from 127\.0\.0\.1$/);
    const failed = lines().find((l) => l.audit?.action === 'login.failure')!;
    assert.equal(failed.level, 40);
    assert.match(failed.msg, /login\.failure .*admin/);
  } finally {
    await server.stop();
  }
});

test('--log-format pretty: lines for people with ISO times, no JSON', { timeout: 60_000 }, async () => {
  const data = await mkdtemp(join(tmpdir(), 'wharf-pretty-'));
  const proc = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'wharf.js'), 'serve', '--listen', '127.0.0.1:0', '--data', data, '--log-format', 'pretty'], {
    env: { ...process.env, WHARF_ADMIN_PASSWORD: TEST_ADMIN_PASSWORD },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const seen: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no welcome line:\n${seen.join('\n')}`)), 30_000);
      createInterface({ input: proc.stdout! }).on('line', (l) => {
        seen.push(l);
        if (/Wharf is running/.test(l)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const listening = seen.find((l) => /listening/.test(l))!;
    assert.match(listening, /^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] INFO: listening/);
    assert.ok(!seen.some((l) => l.startsWith('{')), seen.join('\n'));
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    await rm(data, { recursive: true, force: true });
  }
});
