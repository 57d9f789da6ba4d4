// docker, podman and skopeo push and pull through a real Wharf whose blobs live on a real Ceph RGW (S3), pulling
// through Wharf and with `redirect: true` (the clients follow a 307 to a presigned URL of the RGW).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needTool } from '../support/tools.js';
import { mustRun } from '../support/command.js';
import { buildTestApp, removeImages } from '../support/images.js';
import { startWharf, withLogsOnFailure, type WharfServer } from '../support/server.js';
import { verifyManifest } from '../support/registry-client.js';
import { createBucket, s3Server, type S3Server, type TestBucket } from '../support/s3.js';

const server = s3Server();
const skip = typeof server === 'string' ? server : false;
let bucket: TestBucket | undefined;
const started: WharfServer[] = [];

async function wharfOnS3(redirect: boolean): Promise<WharfServer> {
  bucket ??= await createBucket(server as S3Server);
  const w = await startWharf({ env: { ...bucket.env, WHARF_S3_REDIRECT: String(redirect) } });
  started.push(w);
  return w;
}

after(async () => {
  for (const w of started) await w.stop().catch(() => undefined);
  await bucket?.remove();
});

for (const redirect of [false, true]) {
  const pulls = redirect ? 'pulls redirected to the RGW' : 'pulls through Wharf';
  test(`docker build, push, rmi, pull and run with blobs on S3 (${pulls})`, { skip, timeout: 240_000 }, async (t) => {
    if (!(await needTool(t, 'docker', 'busybox'))) return;
    const w = await wharfOnS3(redirect);
    const image = `${w.host}/s3/docker:${redirect ? 'redirect' : 'through'}`;
    try {
      await withLogsOnFailure(w, async () => {
        await w.login('docker');
        const app = await buildTestApp(image);
        const push = await mustRun('docker', ['push', image]);
        const pushed = push.stdout.match(/digest: (sha256:[0-9a-f]{64})/)?.[1];
        assert.ok(pushed, push.stdout);
        // The helper fetches blobs without following redirects: with redirect on, the pull below is the check.
        if (!redirect) assert.deepEqual((await verifyManifest(w.url, 's3/docker', 'through')).problems, []);
        await mustRun('docker', ['rmi', image]);
        const pull = await mustRun('docker', ['pull', image]);
        assert.match(pull.stdout, new RegExp(`Digest: ${pushed}`));
        assert.match(pull.stdout, /Pull complete/);
        const out = await mustRun('docker', ['run', '--rm', '--network', 'host', image, 'cat', '/www/built.txt']);
        assert.equal(out.stdout.trim(), app.marker);
      });
    } finally {
      await removeImages('docker', [image]);
    }
  });

  test(`podman push and pull with blobs on S3 (${pulls})`, { skip, timeout: 240_000 }, async (t) => {
    if (!(await needTool(t, 'podman', 'busybox'))) return;
    const w = await wharfOnS3(redirect);
    const work = await mkdtemp(join(tmpdir(), 'wharf-test-s3-podman-'));
    const image = `${w.host}/s3/podman:${redirect ? 'redirect' : 'through'}`;
    try {
      await withLogsOnFailure(w, async () => {
        await w.login('podman');
        const app = await buildTestApp(image, { engine: 'podman' });
        const digestFile = join(work, 'digest');
        await mustRun('podman', ['push', '--tls-verify=false', '--digestfile', digestFile, image]);
        const pushed = (await readFile(digestFile, 'utf8')).trim();
        await mustRun('podman', ['rmi', image]);
        await mustRun('podman', ['pull', '--tls-verify=false', image], { timeoutMs: 120_000 });
        assert.equal((await mustRun('podman', ['image', 'inspect', '--format', '{{.Digest}}', image])).stdout.trim(), pushed);
        const out = await mustRun('podman', ['run', '--rm', '--network', 'host', image, 'cat', '/www/built.txt']);
        assert.equal(out.stdout.trim(), app.marker);
      });
    } finally {
      await removeImages('podman', [image]);
      await rm(work, { recursive: true, force: true });
    }
  });

  test(`skopeo copy docker-daemon → Wharf on S3 → docker-daemon (${pulls})`, { skip, timeout: 240_000 }, async (t) => {
    if (!(await needTool(t, 'skopeo', 'docker', 'busybox'))) return;
    const w = await wharfOnS3(redirect);
    const suffix = randomBytes(4).toString('hex');
    const source = `wharf-test/s3-skopeo-src:${suffix}`;
    const back = `wharf-test/s3-skopeo-back:${suffix}`;
    const TLS = ['--src-tls-verify=false', '--dest-tls-verify=false'];
    try {
      await withLogsOnFailure(w, async () => {
        await w.login('skopeo');
        const app = await buildTestApp(source);
        await mustRun('skopeo', ['copy', ...TLS, `docker-daemon:${source}`, `docker://${w.host}/s3/skopeo:1`], { timeoutMs: 120_000 });
        if (!redirect) assert.deepEqual((await verifyManifest(w.url, 's3/skopeo', '1')).problems, []);
        await mustRun('skopeo', ['copy', ...TLS, `docker://${w.host}/s3/skopeo:1`, `docker-daemon:${back}`], { timeoutMs: 120_000 });
        const out = await mustRun('docker', ['run', '--rm', '--network', 'host', back, 'cat', '/www/built.txt']);
        assert.equal(out.stdout.trim(), app.marker);
      });
    } finally {
      await removeImages('docker', [source, back]);
    }
  });
}
