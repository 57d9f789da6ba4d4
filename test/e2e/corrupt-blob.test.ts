// A real client against a corrupted layer: docker pull of an image whose layer file changed on disk fails (the
// transfer is cut before its last bytes, the blob is quarantined) and docker keeps no image; a docker push of the same
// image heals it, and the next pull succeeds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needTool } from '../support/tools.js';
import { mustRun, run } from '../support/command.js';
import { ensureBaseImage, removeImages, writeAppContext } from '../support/images.js';
import { startWharf, withLogsOnFailure } from '../support/server.js';
import { getManifest } from '../support/registry-client.js';
import { daemonsUnavailable, startDaemons, type DaemonSet } from '../support/dockerd.js';

test('docker pull of a corrupted layer fails and leaves no image; docker push of the image heals it', { timeout: 300_000 }, async (t) => {
  if (!(await needTool(t, 'docker', 'busybox'))) return;
  await ensureBaseImage('docker');
  const app = await writeAppContext({ sizeKiB: 2048 });
  const server = await startWharf();
  const image = `${server.host}/integrity/app:1`;
  const saved = join(tmpdir(), `wharf-test-corrupt-${process.pid}.tar`);
  // The corrupted layer is pulled by a dockerd of the test's own that downloads a layer once: the machine's daemon
  // fails the same way, but only after trying twice more, 5 s and 10 s later (its --max-download-attempts; the
  // quarantined blob then answers 404). Without root for a daemon of its own, the machine's daemon pulls it.
  let own: DaemonSet | undefined;
  const dockerThere = (args: string[], opts: { timeoutMs?: number } = {}) => (own ? own.daemons[0]!.docker(args, opts.timeoutMs) : run('docker', args, opts));
  try {
    await withLogsOnFailure(server, async () => {
      if ((await daemonsUnavailable()) === undefined) own = await startDaemons(1, { args: ['--max-download-attempts=1'] });
      await server.login('docker');
      await mustRun('docker', ['build', '--network', 'host', '-t', image, '.'], { cwd: app.dir, timeoutMs: 180_000 });
      await mustRun('docker', ['push', image]);
      await mustRun('docker', ['save', '-o', saved, image]);
      const manifest = JSON.parse((await getManifest(server.url, 'integrity/app', '1')).body.toString()) as { layers: { digest: string; size: number }[] };
      const biggest = manifest.layers.reduce((a, b) => (b.size > a.size ? b : a));
      // One byte in the middle of the layer's file flips: same size, so only the hash can tell.
      const hex = biggest.digest.slice('sha256:'.length);
      const fh = await open(join(server.dataDir, 'blobs', 'sha256', hex.slice(0, 2), hex), 'r+');
      const byte = Buffer.alloc(1);
      await fh.read(byte, 0, 1, Math.floor(biggest.size / 2));
      byte[0]! ^= 0xff;
      await fh.write(byte, 0, 1, Math.floor(biggest.size / 2));
      await fh.close();

      await removeImages('docker', [image]);
      const pull = await dockerThere(['pull', image], { timeoutMs: 180_000 });
      assert.notEqual(pull.code, 0, `docker pull of a corrupted layer must fail:\n${pull.stdout}`);
      assert.notEqual((await dockerThere(['image', 'inspect', image])).code, 0, 'docker must keep no image');
      assert.equal((await readdir(join(server.dataDir, 'quarantine', 'sha256'))).filter((f) => f.startsWith(hex)).length, 1);
      assert.match(server.logs(), /blob quarantined/);

      // The image is pushed again (from the copy saved before): the layer is uploaded anew, and pulls work.
      await mustRun('docker', ['load', '-i', saved]);
      await mustRun('docker', ['push', image]);
      await removeImages('docker', [image]);
      const again = await mustRun('docker', ['pull', image], { timeoutMs: 180_000 });
      assert.match(again.stdout, /Pull complete/);
    });
  } finally {
    await own?.teardown();
    await removeImages('docker', [image]);
    await rm(saved, { force: true });
    await rm(app.dir, { recursive: true, force: true });
    await server.stop();
  }
});
