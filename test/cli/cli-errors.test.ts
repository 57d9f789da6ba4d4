// The CLI's refusals, in its own words and with a non-zero exit: typos get a "did you mean", an unreachable server
// is "connection refused", unknown apps, tags and environments are named, a promotion against the promotion order
// needs --force.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWharf, startWharf, type WharfServer } from '../support/server.js';
import { sha256 } from '../support/registry-client.js';
import { freePort } from '../support/net.js';
import type { RunResult } from '../support/command.js';

let server: WharfServer;
let config: string;
before(async () => {
  server = await startWharf();
  config = await mkdtemp(join(tmpdir(), 'wharf-cli-config-'));
});
after(async () => {
  await server?.stop();
  await rm(config, { recursive: true, force: true });
});

const wharf = (...args: string[]) => runWharf(args, { env: { WHARF_CONFIG_DIR: config, WHARF_SERVER: server.url } });
const fails = (r: RunResult, code: number, message: RegExp) => {
  assert.equal(r.code, code, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, message);
  assert.equal(r.stderr.trim().split('\n').length, 1, `one line:\n${r.stderr}`);
};
const ok = (r: RunResult) => assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);

async function push(repo: string, tag: string, text: string): Promise<void> {
  const auth = { authorization: server.authorization };
  const layer = Buffer.from(text);
  const cfg = Buffer.from('{}');
  for (const blob of [layer, cfg]) {
    const r = await fetch(`${server.url}/v2/${repo}/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', headers: auth, body: blob });
    assert.equal(r.status, 201);
  }
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(cfg), size: cfg.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
  });
  const put = await fetch(`${server.url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
  assert.equal(put.status, 201);
}

test('typos: "did you mean" for commands and options; --version is listed', async () => {
  fails(await wharf('relase', 'myapp'), 2, /^wharf: unknown command 'relase'; did you mean 'wharf release'\?/);
  fails(await wharf('releases', 'myapp', '--evn', 'staging'), 2, /^wharf releases: unknown option --evn; did you mean --env\?/);
  fails(await wharf('xyzzy'), 2, /^wharf: unknown command 'xyzzy' \(wharf --help lists them\)$/m);
  assert.match((await wharf('--help')).stdout, /wharf --version/);
  assert.match((await wharf('--version')).stdout, /^wharf \d+\.\d+\.\d+/);
});

test('an unreachable server: connection refused, in one line', async () => {
  const port = await freePort();
  fails(await runWharf(['releases', 'myapp', '--server', `http://127.0.0.1:${port}`], { env: { WHARF_CONFIG_DIR: config } }), 1, new RegExp(`cannot connect to http://127.0.0.1:${port}: connection refused`));
  fails(await runWharf(['login', `http://127.0.0.1:${port}`, '-u', 'admin', '--password-stdin'], { env: { WHARF_CONFIG_DIR: config }, input: 'x' }), 1, /connection refused/);
});

test('unknown apps, tags and environments are errors; promoting against the order needs --force', async () => {
  ok(await runWharf(['login', server.url, '-u', 'admin', '--password-stdin'], { env: { WHARF_CONFIG_DIR: config }, input: server.admin.password }));
  await push('shop', '1.0.0', 'one');
  fails(await wharf('env', 'list', 'nosuchapp'), 1, /no app named nosuchapp/);
  fails(await wharf('releases', 'nosuchapp'), 1, /no app named nosuchapp/);
  fails(await wharf('tags', 'history', 'nosuchapp'), 1, /repository nosuchapp not known/);
  fails(await wharf('tags', 'history', 'shop:nope'), 1, /shop has no tag nope, and never had one/);
  ok(await wharf('tags', 'history', 'shop:1.0.0'));
  ok(await wharf('env', 'list', 'shop'));

  ok(await wharf('env', 'create', 'shop', 'staging'));
  ok(await wharf('env', 'create', 'shop', 'production', '--requires-promotion-from', 'staging'));
  fails(await wharf('release', 'shop', '1.0.0'), 2, /release needs --env ENV/);
  fails(await wharf('releases', 'shop', '--env', 'prod'), 1, /environment shop\/prod does not exist/);
  ok(await wharf('release', 'shop', '1.0.0', '--env', 'staging'));
  ok(await wharf('promote', 'shop', '--from', 'staging', '--to', 'production'));
  fails(await wharf('promote', 'shop', '--from', 'staging', '--to', 'prod'), 1, /shop has no environment prod \(it has staging, production\)/);
  fails(await wharf('promote', 'shop', '--from', 'production', '--to', 'staging'), 2, /staging comes before production in shop's promotion order \(staging → production\): did you swap --from and --to\? \(--force promotes anyway\)/);
  ok(await wharf('promote', 'shop', '--from', 'production', '--to', 'staging', '--force'));
});
