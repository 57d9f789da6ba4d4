// podman against a real Wharf: build, push (OCI and Docker manifest formats), rmi, pull and run the pulled image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needTool } from '../support/tools.js';
import { mustRun, run } from '../support/command.js';
import { buildTestApp, removeImages } from '../support/images.js';
import { startWharf, withLogsOnFailure } from '../support/server.js';
import { getManifest, verifyManifest } from '../support/registry-client.js';

test('podman push and pull through Wharf, then run the pulled image', { timeout: 240_000 }, async (t) => {
  if (!(await needTool(t, 'podman', 'busybox'))) return;
  const work = await mkdtemp(join(tmpdir(), 'wharf-test-podman-'));
  const server = await startWharf();
  const image = `${server.host}/podman/app:1`;
  const dockerFormat = `${server.host}/podman/app:1-docker`;
  try {
    await withLogsOnFailure(server, async () => {
      await server.login('podman');
      const app = await buildTestApp(image, { engine: 'podman' });

      const digestFile = join(work, 'digest');
      await mustRun('podman', ['push', '--tls-verify=false', '--digestfile', digestFile, image]);
      const pushed = (await readFile(digestFile, 'utf8')).trim();
      const stored = await verifyManifest(server.url, 'podman/app', '1');
      assert.deepEqual(stored.problems, []);
      assert.equal(stored.digest, pushed);
      assert.equal((await getManifest(server.url, 'podman/app', '1')).contentType, 'application/vnd.oci.image.manifest.v1+json');

      await mustRun('podman', ['push', '--tls-verify=false', '--format', 'v2s2', image, dockerFormat]);
      assert.equal(
        (await getManifest(server.url, 'podman/app', '1-docker')).contentType,
        'application/vnd.docker.distribution.manifest.v2+json',
      );
      assert.deepEqual((await verifyManifest(server.url, 'podman/app', '1-docker')).problems, []);

      await mustRun('podman', ['rmi', image]);
      assert.notEqual((await run('podman', ['image', 'exists', image])).code, 0, 'the image is gone locally');
      await mustRun('podman', ['pull', '--tls-verify=false', image], { timeoutMs: 120_000 });
      const pulled = await mustRun('podman', ['image', 'inspect', '--format', '{{.Digest}}', image]);
      assert.equal(pulled.stdout.trim(), pushed);

      const out = await mustRun('podman', ['run', '--rm', '--network', 'host', image, 'cat', '/www/built.txt']);
      assert.equal(out.stdout.trim(), app.marker);
    });
  } finally {
    await removeImages('podman', [image, dockerFormat]);
    await rm(work, { recursive: true, force: true });
    await server.stop();
  }
});
