// The CLI's lists read every page: targets, webhooks, environments, secrets and signers longer than the
// server's first page (50) are listed whole by `wharf … list`, against a real `wharf serve`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '../support/registry-client.js';
import { runWharf, startWharf, withLogsOnFailure } from '../support/server.js';

const N = 55;

test('wharf target, webhook, env, secret and signer list show more than one page', { timeout: 120_000 }, async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'wharf-list-pages-'));
  t.after(() => rm(work, { recursive: true, force: true }));
  const server = await startWharf();
  t.after(() => server.stop());
  await withLogsOnFailure(server, async () => {
    const call = async (method: string, path: string, body: unknown, status: number) => {
      const res = await fetch(`${server.url}${path}`, { method, headers: { authorization: server.authorization, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(res.status, status, `${method} ${path}: ${await res.text()}`);
    };
    // An app's environments need its repository: one small image pushed over /v2.
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux' }));
    const layer = Buffer.from('layer');
    for (const blob of [config, layer]) {
      const res = await fetch(`${server.url}/v2/team/app/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', body: blob, headers: { authorization: server.authorization } });
      assert.equal(res.status, 201, await res.text());
    }
    const descriptor = (b: Buffer, mediaType: string) => ({ mediaType, digest: sha256(b), size: b.length });
    const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: descriptor(config, 'application/vnd.oci.image.config.v1+json'), layers: [descriptor(layer, 'application/vnd.oci.image.layer.v1.tar')] };
    const put = await fetch(`${server.url}/v2/team/app/manifests/v1`, { method: 'PUT', body: JSON.stringify(manifest), headers: { authorization: server.authorization, 'content-type': manifest.mediaType } });
    assert.equal(put.status, 201, await put.text());
    // One key per signer: a key is registered once.
    const publicKey = () => generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    // Environments one by one: their list is in the order they were made.
    for (let i = 0; i < N; i++) await call('POST', '/api/v1/apps/team/app/environments', { name: `env-${String(i).padStart(2, '0')}` }, 201);
    const made: Promise<void>[] = [];
    for (let i = 0; i < N; i++) {
      const n = String(i).padStart(2, '0');
      made.push(
        call('POST', '/api/v1/targets', { name: `host-${n}`, endpoint: `unix:///run/host-${n}.sock`, apps: ['team/*'] }, 201),
        call('POST', '/api/v1/webhooks', { url: `http://127.0.0.1:9/hook-${n}`, events: ['push'] }, 201),
        call('PUT', `/api/v1/apps/team/app/secrets/env-00/KEY_${n}`, { value: `v${n}` }, 204),
        call('POST', '/api/v1/signers', { name: `bot-${n}`, publicKey: publicKey(), apps: ['team/*'], kinds: ['sbom'], environments: ['*'] }, 201),
      );
      if (made.length >= 25) await Promise.all(made.splice(0));
    }
    await Promise.all(made);
    const env = { ...process.env, WHARF_SERVER: server.url, WHARF_CONFIG_DIR: join(work, 'cli') } as Record<string, string>;
    delete env.WHARF_TOKEN;
    const login = await runWharf(['login', server.url, '-u', 'admin', '--password-stdin'], { env, input: server.admin.password });
    assert.equal(login.code, 0, login.stderr);
    for (const [args, key, first] of [
      [['target', 'list'], 'name', 'host-00'],
      [['webhook', 'list'], 'url', 'http://127.0.0.1:9/hook-00'],
      [['env', 'list', 'team/app'], 'name', 'env-00'],
      [['secret', 'list', 'team/app'], 'name', 'KEY_00'],
      [['signer', 'list'], 'name', 'bot-00'],
    ] as const) {
      const r = await runWharf([...args, '--json'], { env });
      assert.equal(r.code, 0, `wharf ${args.join(' ')}: ${r.stderr}`);
      const rows = JSON.parse(r.stdout) as Record<string, string>[];
      const names = rows.map((x) => x[key]);
      assert.equal(names.length, N, `wharf ${args.join(' ')} lists ${names.length} of ${N}`);
      assert.equal(new Set(names).size, N, 'each once');
      assert.equal(names[0], first);
    }
  });
});
