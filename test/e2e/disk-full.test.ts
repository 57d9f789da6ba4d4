// A full disk: a real `wharf serve` on a small tmpfs, filled up. Blob uploads (whole and chunked), a manifest put, a
// management API write and the CLI each get 507 "storage is full" (never a 500), /readyz and /metrics show the lack
// of space, nothing half-written becomes visible, and once space is freed the same pushes succeed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mustRun, run } from '../support/command.js';
import { runWharf, startWharf, withLogsOnFailure, type WharfServer } from '../support/server.js';
import { sha256 } from '../support/registry-client.js';
import { addImage, initLayout, makeLayer, tagInLayout } from '../support/oci-layout.js';
import { missingReason } from '../support/tools.js';
import { onPostgres } from '../support/database.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** Fills the filesystem of `path` to the last byte: big writes, then small ones, until ENOSPC. */
async function fillUp(path: string): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (const size of [1 << 20, 64 << 10, 4 << 10, 512, 1]) {
      const chunk = Buffer.alloc(size, 0xaa);
      for (;;) {
        try {
          await fh.write(chunk);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw e;
        }
      }
    }
  } finally {
    await fh.close();
  }
}

test('a full disk answers 507 on every write, leaves nothing partial, and works again once space is freed', { timeout: 180_000 }, async (t) => {
  if (process.getuid?.() !== 0) return t.skip('mounting a tmpfs needs root');
  const work = await mkdtemp(join(tmpdir(), 'wharf-test-disk-full-'));
  const dataDir = join(work, 'data');
  const configDir = join(work, 'cli');
  await mkdir(dataDir);
  await mustRun('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0700', 'tmpfs', dataDir]);
  let server: WharfServer | undefined;
  try {
    server = await startWharf({ dataDir, env: { WHARF_MIN_FREE_BYTES: '4MiB', WHARF_SCRUB_INTERVAL: '0', WHARF_GC_INTERVAL: '0' } });
    const s = server;
    await withLogsOnFailure(s, async () => {
      const auth = { authorization: s.authorization };
      const repo = 'full/app';
      const v2 = (path: string, init: RequestInit = {}) => fetch(`${s.url}/v2/${repo}${path}`, { ...init, headers: { ...auth, ...(init.headers as object) } });
      const pushBlob = (data: Buffer) => v2(`/blobs/uploads/?digest=${sha256(data)}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(data) });
      const startUpload = async () => {
        const res = await v2('/blobs/uploads/', { method: 'POST' });
        assert.equal(res.status, 202, await res.text());
        return new URL(res.headers.get('location')!, s.url).toString();
      };
      const patch = (location: string, data: Buffer) =>
        fetch(location, { method: 'PATCH', headers: { ...auth, 'content-type': 'application/octet-stream', 'content-range': `0-${data.length - 1}` }, body: new Uint8Array(data) });
      const commit = (location: string, digest: string) => fetch(`${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, { method: 'PUT', headers: auth });
      const putManifest = (tag: string, body: Buffer) => v2(`/manifests/${tag}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: new Uint8Array(body) });
      const createEnv = (name: string) =>
        fetch(`${s.url}/api/v1/apps/${repo}/environments`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
      // An image for skopeo (when it is installed), in the work dir: off the full volume.
      let layout: string | undefined;
      if ((await missingReason('skopeo')) === undefined) {
        layout = join(work, 'layout');
        await initLayout(layout);
        const image = await addImage(layout, [makeLayer([{ name: 'data.bin', content: randomBytes(512 << 10) }])], { architecture: 'amd64', os: 'linux' });
        await tagInLayout(layout, 'v2', image);
        await s.login('skopeo');
      }
      await mkdir(configDir, { recursive: true });
      await writeFile(join(configDir, 'credentials.json'), JSON.stringify({ current: s.url, servers: { [s.url]: s.admin } }), { mode: 0o600 });
      const cli = (...args: string[]) => runWharf(args, { env: { ...process.env, WHARF_CONFIG_DIR: configDir } });
      const expectFull = async (res: Response, what: string) => {
        const text = await res.text();
        assert.equal(res.status, 507, `${what}: expected 507, got ${res.status} ${text}`);
        const body = JSON.parse(text) as { errors: { code: string; message: string }[] };
        assert.equal(body.errors[0]!.code, 'UNKNOWN', `${what}: ${text}`);
        assert.match(body.errors[0]!.message, /storage is full/, `${what}: ${text}`);
      };
      const readyz = async () => {
        const res = await fetch(`${s.url}/readyz`);
        return { status: res.status, body: (await res.json()) as { checks: { freeSpace: { ok: boolean; freeBytes: number } } } };
      };
      const freeBytesMetric = async () => {
        const text = await (await fetch(`${s.url}/metrics`)).text();
        const m = /^wharf_storage_free_bytes (\d+)/m.exec(text);
        assert.ok(m, 'wharf_storage_free_bytes missing from /metrics');
        return Number(m[1]);
      };

      // Before: an image's config and layer are in; the repository exists.
      const configBlob = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
      const layer = randomBytes(256 << 10);
      for (const b of [configBlob, layer]) assert.equal((await pushBlob(b)).status, 201);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(configBlob), size: configBlob.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
          // Big enough that its database row needs new pages on disk whatever slack the database has.
          annotations: { padding: randomBytes(384 << 10).toString('hex') },
        }),
      );
      const readyBefore = await readyz();
      assert.equal(readyBefore.status, 200, JSON.stringify(readyBefore.body));
      const pending = await startUpload(); // a chunked upload started before the disk fills
      const fresh = randomBytes(1 << 20);
      const chunk = randomBytes(1 << 20);

      // The disk fills up (something else on the volume: logs, another service).
      const filler = join(dataDir, 'filler');
      await fillUp(filler);

      await expectFull(await pushBlob(fresh), 'monolithic blob upload');
      await expectFull(await patch(pending, chunk), 'chunk of an upload');
      // On PostgreSQL the metadata lives on the database's own disk, not this full one: manifests and management
      // writes go on (a full database disk is SQLSTATE 53100, answered 507 by the same mapping: test/server/http-errors).
      if (!onPostgres) {
        await expectFull(await putManifest('v1', manifest), 'manifest put');
        await expectFull(await createEnv('staging'), 'management API write');
      }
      // A real client: skopeo's push fails saying why (it reports the status of a failed upload start, not its body).
      const skopeoPush = async () => run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:v2`, `docker://${s.host}/${repo}:v2`], { timeoutMs: 120_000 });
      if (layout) {
        const pushed = await skopeoPush();
        assert.notEqual(pushed.code, 0, 'skopeo must fail on a full disk');
        assert.match(pushed.stderr, /507 Insufficient Storage|storage is full/, pushed.stderr);
      }
      if (!onPostgres) {
        const byCli = await cli('env', 'create', repo, 'prod');
        assert.notEqual(byCli.code, 0, `the CLI must fail: ${byCli.stdout}`);
        assert.match(byCli.stderr, /^wharf env: storage is full/);
        assert.equal(byCli.stderr.trim().split('\n').length, 1, `one plain line: ${byCli.stderr}`);
      }

      const full = await readyz();
      assert.equal(full.status, 503, JSON.stringify(full.body));
      assert.equal(full.body.checks.freeSpace.ok, false);
      assert.ok((await freeBytesMetric()) < 4 << 20);
      assert.ok(!/"status":500|request failed/.test(s.logs()), 'no write may fail as an internal error');

      // Space is freed.
      await rm(filler);
      assert.equal((await readyz()).status, 200);
      assert.ok((await freeBytesMetric()) > 8 << 20);

      // Nothing of the refused writes is visible.
      assert.equal((await v2(`/blobs/${sha256(fresh)}`, { method: 'HEAD' })).status, 404);
      assert.equal((await v2(`/blobs/${sha256(chunk)}`, { method: 'HEAD' })).status, 404);
      if (!onPostgres) {
        assert.equal((await v2('/manifests/v1', { method: 'HEAD' })).status, 404);
        const envs = (await (await fetch(`${s.url}/api/v1/apps/${repo}/environments`, { headers: auth })).json()) as { name: string }[];
        assert.deepEqual(envs, []);
      }

      // And the same writes now succeed.
      assert.equal((await pushBlob(fresh)).status, 201);
      const resumed = await startUpload();
      assert.equal((await patch(resumed, chunk)).status, 202);
      assert.equal((await commit(resumed, sha256(chunk))).status, 201);
      assert.equal((await putManifest('v1', manifest)).status, 201);
      if (!onPostgres) assert.equal((await createEnv('staging')).status, 201);
      if (layout) {
        const pushed = await skopeoPush();
        assert.equal(pushed.code, 0, pushed.stderr);
        assert.equal((await v2('/manifests/v2', { method: 'HEAD', headers: { accept: OCI_MANIFEST } })).status, 200);
      }
      const cliAgain = await cli('env', 'create', repo, 'prod');
      assert.equal(cliAgain.code, 0, cliAgain.stderr);
      for (const data of [fresh, chunk, layer]) {
        const res = await v2(`/blobs/${sha256(data)}`);
        assert.equal(res.status, 200);
        assert.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(data));
      }
      const fsck = await runWharf(['fsck', '--data', dataDir]);
      assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    });
  } finally {
    await server?.stop();
    await run('umount', [dataDir]);
    await rm(work, { recursive: true, force: true });
  }
});
