// skopeo against a real Wharf: copy in both directions (docker daemon, OCI archive, a two-platform
// index with --all), inspect and delete — every digest must survive the round trip unchanged.
import { test, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needTool, type Tool } from '../support/tools.js';
import { mustRun, run } from '../support/command.js';
import { buildTestApp, removeImages } from '../support/images.js';
import { startWharf, withLogsOnFailure, type WharfServer } from '../support/server.js';
import { getManifest, sha256, verifyManifest } from '../support/registry-client.js';
import {
  addImage, addIndex, initLayout, layoutTag, makeLayer, readLayoutBlob, tagInLayout, type Descriptor, type Platform,
} from '../support/oci-layout.js';

let server: WharfServer;
let work: string;

/**
 * Starts the file's server on first use, after the test has checked its tools: a hook that failed on a
 * missing skopeo would fail the whole file instead of skipping it.
 */
async function ready(t: TestContext, ...tools: Tool[]): Promise<boolean> {
  if (!(await needTool(t, 'skopeo', ...tools))) return false;
  if (!server) {
    server = await startWharf();
    await server.login('skopeo');
    work = await mkdtemp(join(tmpdir(), 'wharf-test-skopeo-'));
  }
  return true;
}

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
  await server?.stop();
});

const TLS = ['--src-tls-verify=false', '--dest-tls-verify=false'];

function skopeo(...args: string[]) {
  return mustRun('skopeo', args, { timeoutMs: 120_000 });
}

/** skopeo inspect of a Wharf reference; returns the parsed JSON. */
async function inspect(ref: string, ...flags: string[]): Promise<{ Digest: string; Layers: string[]; Architecture: string }> {
  return JSON.parse((await skopeo('inspect', '--tls-verify=false', ...flags, `docker://${server.host}/${ref}`)).stdout);
}

/** An image of one small layer whose content is unique to this run and platform. */
async function addUniqueImage(dir: string, platform: Platform): Promise<{ manifest: Descriptor; layers: string[] }> {
  const layer = makeLayer([{ name: 'platform.txt', content: Buffer.from(`${platform.architecture} ${randomBytes(16).toString('hex')}\n`) }]);
  const manifest = await addImage(dir, [layer], platform);
  return { manifest, layers: [layer.digest] };
}

async function newLayout(name: string): Promise<string> {
  const dir = join(work, name);
  await initLayout(dir);
  return dir;
}

/** A layout holding one amd64 image under `tag`. */
async function layoutOfOneImage(name: string, tag: string) {
  const dir = await newLayout(name);
  const image = await addUniqueImage(dir, { architecture: 'amd64', os: 'linux' });
  await tagInLayout(dir, tag, image.manifest);
  return { dir, image };
}

test('skopeo copy docker-daemon → Wharf → docker-daemon', { timeout: 240_000 }, async (t) => {
  if (!(await ready(t, 'docker', 'busybox'))) return;
  const suffix = randomBytes(4).toString('hex');
  const source = `wharf-test/skopeo-src:${suffix}`;
  const back = `wharf-test/skopeo-back:${suffix}`;
  try {
    await withLogsOnFailure(server, async () => {
      const app = await buildTestApp(source);
      await skopeo('copy', ...TLS, `docker-daemon:${source}`, `docker://${server.host}/skopeo/app:1`);
      assert.deepEqual((await verifyManifest(server.url, 'skopeo/app', '1')).problems, []);

      await skopeo('copy', ...TLS, `docker://${server.host}/skopeo/app:1`, `docker-daemon:${back}`);
      const out = await mustRun('docker', ['run', '--rm', '--network', 'host', back, 'cat', '/www/built.txt']);
      assert.equal(out.stdout.trim(), app.marker);
    });
  } finally {
    await removeImages('docker', [source, back]);
  }
});

test('skopeo copy oci-archive → Wharf → oci-archive keeps the digest; skopeo inspect reports it', async (t) => {
  if (!(await ready(t))) return;
  await withLogsOnFailure(server, async () => {
    const { dir, image } = await layoutOfOneImage('archive-src', 'v1');
    const archive = join(work, 'src.tar');
    await mustRun('tar', ['-C', dir, '-cf', archive, '.']);

    await skopeo('copy', ...TLS, '--preserve-digests', `oci-archive:${archive}:v1`, `docker://${server.host}/skopeo/archive:v1`);
    const info = await inspect('skopeo/archive:v1');
    assert.equal(info.Digest, image.manifest.digest);
    assert.deepEqual(info.Layers, image.layers);

    const backArchive = join(work, 'back.tar');
    await skopeo('copy', ...TLS, '--preserve-digests', `docker://${server.host}/skopeo/archive:v1`, `oci-archive:${backArchive}:v1`);
    const backDir = join(work, 'archive-back');
    await mkdir(backDir);
    await mustRun('tar', ['-C', backDir, '-xf', backArchive]);
    assert.equal((await layoutTag(backDir, 'v1'))?.digest, image.manifest.digest);
    assert.equal(sha256(await readLayoutBlob(backDir, image.layers[0])), image.layers[0]);
  });
});

test('skopeo copy --all of a two-platform index, both directions, digests unchanged', async (t) => {
  if (!(await ready(t))) return;
  await withLogsOnFailure(server, async () => {
    const dir = await newLayout('multi-src');
    const amd64 = await addUniqueImage(dir, { architecture: 'amd64', os: 'linux' });
    const arm64 = await addUniqueImage(dir, { architecture: 'arm64', os: 'linux', variant: 'v8' });
    const index = await addIndex(dir, [amd64.manifest, arm64.manifest]);
    await tagInLayout(dir, 'multi', index);

    await skopeo('copy', ...TLS, '--all', '--preserve-digests', `oci:${dir}:multi`, `docker://${server.host}/skopeo/multi:2`);
    const stored = await getManifest(server.url, 'skopeo/multi', '2');
    assert.equal(stored.status, 200);
    assert.equal(stored.contentType, index.mediaType);
    assert.equal(sha256(stored.body), index.digest, 'the index comes back byte-identical');
    assert.deepEqual((await verifyManifest(server.url, 'skopeo/multi', '2')).problems, []);
    const raw = (await skopeo('inspect', '--tls-verify=false', '--raw', `docker://${server.host}/skopeo/multi:2`)).stdout;
    assert.equal(sha256(raw), index.digest);
    const arm = await inspect('skopeo/multi:2', '--override-arch', 'arm64', '--override-variant', 'v8');
    assert.equal(arm.Architecture, 'arm64');
    assert.deepEqual(arm.Layers, arm64.layers);

    const backDir = join(work, 'multi-back');
    await skopeo('copy', ...TLS, '--all', '--preserve-digests', `docker://${server.host}/skopeo/multi:2`, `oci:${backDir}:back`);
    assert.equal((await layoutTag(backDir, 'back'))?.digest, index.digest);
    for (const image of [amd64, arm64]) {
      assert.equal(sha256(await readLayoutBlob(backDir, image.manifest.digest)), image.manifest.digest);
      assert.equal(sha256(await readLayoutBlob(backDir, image.layers[0])), image.layers[0]);
    }
  });
});

test('skopeo delete removes the manifest; inspect then fails with manifest unknown', async (t) => {
  if (!(await ready(t))) return;
  await withLogsOnFailure(server, async () => {
    const { dir, image } = await layoutOfOneImage('delete-src', 'v1');
    await skopeo('copy', ...TLS, '--preserve-digests', `oci:${dir}:v1`, `docker://${server.host}/skopeo/doomed:v1`);
    assert.equal((await inspect('skopeo/doomed:v1')).Digest, image.manifest.digest);

    await skopeo('delete', '--tls-verify=false', `docker://${server.host}/skopeo/doomed:v1`);
    const after = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${server.host}/skopeo/doomed:v1`]);
    assert.notEqual(after.code, 0);
    assert.match(after.stderr, /manifest unknown/i);
    assert.equal((await getManifest(server.url, 'skopeo/doomed', image.manifest.digest)).status, 404);
  });
});
