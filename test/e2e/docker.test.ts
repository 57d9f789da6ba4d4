// The README's seed workflow, verbatim, against a real Wharf and a real dockerd:
// docker build, docker push, docker rmi, docker pull, docker run of the pulled image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { needTool } from '../support/tools.js';
import { mustRun, run } from '../support/command.js';
import { ensureBaseImage, removeImages, writeAppContext } from '../support/images.js';
import { startWharf, withLogsOnFailure } from '../support/server.js';
import { getManifest, verifyManifest } from '../support/registry-client.js';
import { fetchWhenUp, freePort } from '../support/net.js';

test('docker build, push, rmi, pull and run an image through Wharf', { timeout: 240_000 }, async (t) => {
  if (!(await needTool(t, 'docker', 'busybox'))) return;
  await ensureBaseImage('docker');
  const app = await writeAppContext();
  const server = await startWharf();
  const image = `${server.host}/myapp:1.4.2`;
  const container = `myapp-${randomBytes(4).toString('hex')}`;
  try {
    await withLogsOnFailure(server, async () => {
      await server.login('docker');
      await mustRun('docker', ['build', '-t', image, '.'], { cwd: app.dir, timeoutMs: 180_000 });

      const push = await mustRun('docker', ['push', image]);
      const pushed = push.stdout.match(/digest: (sha256:[0-9a-f]{64})/)?.[1];
      assert.ok(pushed, `docker push printed no digest:\n${push.stdout}`);
      const stored = await verifyManifest(server.url, 'myapp', '1.4.2');
      assert.deepEqual(stored.problems, []);
      assert.equal(stored.digest, pushed, 'Wharf serves the manifest docker pushed');
      const manifest = JSON.parse((await getManifest(server.url, 'myapp', '1.4.2')).body.toString()) as { layers: unknown[] };
      assert.equal(manifest.layers.length, 4, 'base layer + COPY + RUN + RUN');

      await mustRun('docker', ['rmi', image]);
      assert.notEqual((await run('docker', ['image', 'inspect', image])).code, 0, 'the image is gone locally');

      const pull = await mustRun('docker', ['pull', image]);
      assert.match(pull.stdout, new RegExp(`Digest: ${pushed}`));
      assert.match(pull.stdout, /Pull complete/, 'layers came from Wharf, not from a local cache');

      const port = await freePort();
      await mustRun('docker', ['run', '-d', '--name', container, '--network', 'host', '-e', `PORT=${port}`, image]);
      assert.match(await fetchWhenUp(`http://127.0.0.1:${port}/index.html`), new RegExp(app.marker));
      assert.equal((await fetchWhenUp(`http://127.0.0.1:${port}/built.txt`)).trim(), app.marker);
    });
  } finally {
    await run('docker', ['rm', '-f', container]);
    await removeImages('docker', [image]);
    await rm(app.dir, { recursive: true, force: true });
    await server.stop();
  }
});
