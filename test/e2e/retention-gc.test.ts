// Retention and garbage collection with real docker pushes and pulls: a retention policy set over the
// API, `wharf gc` run beside the server, and afterwards the rollback target still pulls and runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needTool } from '../support/tools.js';
import { mustRun, run } from '../support/command.js';
import { buildTestApp, removeImages } from '../support/images.js';
import { runWharf, startWharf, withLogsOnFailure } from '../support/server.js';
import { getManifest } from '../support/registry-client.js';

test('retention and gc keep the rollback target: docker pulls and runs it afterwards', { timeout: 300_000 }, async (t) => {
  if (!(await needTool(t, 'docker', 'busybox'))) return;
  const server = await startWharf();
  await server.login('docker');
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(server.url + path, {
      method,
      headers: { authorization: server.authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  const repo = `${server.host}/keep`;
  const versions = ['1.0.0', '1.1.0', '1.2.0', '1.3.0'];
  const images = [...versions.map((v) => `${repo}:${v}`), `${repo}:staging`];
  try {
    await withLogsOnFailure(server, async () => {
      const digests: Record<string, string> = {};
      const markers: Record<string, string> = {};
      // Built side by side (each build waits mostly on its RUN containers), pushed one after another: the
      // newest tag, the one retention keeps, is 1.3.0.
      const built = await Promise.all(versions.map((v) => buildTestApp(`${repo}:${v}`, { sizeKiB: 32 })));
      for (const [i, v] of versions.entries()) {
        markers[v] = built[i]!.marker;
        await mustRun('docker', ['push', `${repo}:${v}`]);
        digests[v] = (await getManifest(server.url, 'keep', v)).digest!;
      }
      await api('POST', '/api/v1/apps/keep/environments', { name: 'staging' });
      await api('POST', '/api/v1/apps/keep/releases', { environment: 'staging', ref: '1.0.0' });
      await api('POST', '/api/v1/apps/keep/releases', { environment: 'staging', ref: '1.1.0' });
      // Keep only the newest tag, and no untagged manifest: 1.2.0 goes; 1.0.0 and 1.1.0 are releases and stay.
      await api('POST', '/api/v1/retention/policies', { repositories: 'keep', keepLast: 1, untaggedOlderThan: 0 });

      const dry = await runWharf(['gc', '--dry-run', '--grace', '0', '--data', server.dataDir]);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, new RegExp(`would delete tag keep:1\\.2\\.0 `));
      assert.match(dry.stdout, new RegExp(`would delete manifest keep@${digests['1.2.0']}`));
      assert.doesNotMatch(dry.stdout, /keep:1\.[013]\.0 /);

      const gc = await runWharf(['gc', '--grace', '0', '--data', server.dataDir, '--json']);
      assert.equal(gc.code, 0, gc.stderr);
      const report = JSON.parse(gc.stdout) as { manifests: { digest: string }[]; bytes: number };
      assert.deepEqual(report.manifests.map((m) => m.digest), [digests['1.2.0']]);
      assert.ok(report.bytes > 32 * 1024, 'the random layer of 1.2.0 was reclaimed');
      const fsck = await runWharf(['fsck', '--data', server.dataDir]);
      assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);

      await removeImages('docker', images);
      assert.notEqual((await run('docker', ['pull', `${repo}:1.2.0`])).code, 0, '1.2.0 is gone');
      const current = await mustRun('docker', ['pull', `${repo}:staging`]);
      assert.match(current.stdout, new RegExp(`Digest: ${digests['1.1.0']}`));

      const rollback = await api('POST', '/api/v1/apps/keep/rollback', { environment: 'staging' });
      assert.equal(rollback.digest, digests['1.0.0']);
      await removeImages('docker', [`${repo}:staging`]);
      const pulled = await mustRun('docker', ['pull', `${repo}:staging`]);
      assert.match(pulled.stdout, new RegExp(`Digest: ${digests['1.0.0']}`));
      const out = await mustRun('docker', ['run', '--rm', '--network', 'host', `${repo}:staging`, 'cat', '/www/built.txt']);
      assert.equal(out.stdout.trim(), markers['1.0.0']);
    });
  } finally {
    await removeImages('docker', images);
    await server.stop();
  }
});
