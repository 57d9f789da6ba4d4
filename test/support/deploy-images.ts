// Releases of a small test app for deploy tests, made here and pushed to a real Wharf: good ones (healthy), and a
// bad one whose HEALTHCHECK fails with a message the tests look for.
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { APPLETS, BASE_IMAGE } from './images.js';
import { authHeaders, pushBlob, sha256 } from './registry-client.js';
import { BUSYBOX_PATH } from './tools.js';

/**
 * What a failing health check prints; tests expect it in the failure reason. Release VERSION also fails its check
 * while /shared/fail-VERSION exists (when a test mounts /shared): that fails a good release on the hosts not yet
 * switched, and leaves the other releases alone.
 */
export const HEALTH_FAILURE = 'self-test failed';
const HEALTH_SCRIPT = `for f in /www/fail /shared/fail-$(cat /www/release); do if [ -e $f ]; then echo "${HEALTH_FAILURE}: $f present"; exit 1; fi; done; echo ok`;

/**
 * What a release prints when it exits on purpose 1.5 s after its start (healthy by then, so that Swarm counts it as
 * a task that failed while monitored): while /shared/crash-VERSION exists (every start), or once when it claims
 * a file /shared/crash-once-VERSION.N (renamed away, so exactly one container takes each). The exit code is 3.
 */
export const CRASH_MESSAGE = 'crashing on purpose';

// Exits at once on SIGTERM (a plain `sleep` as PID 1 would ignore it and every stop would wait for the kill).
const APP_SH = `#!/bin/sh
trap 'exit \${code:-0}' TERM INT
r=$(cat /www/release)
crash=
if [ -e /shared/crash-$r ]; then crash="${CRASH_MESSAGE}"; else for f in /shared/crash-once-$r.*; do if mv $f /shared/taken-$r-$$ 2>/dev/null; then crash="${CRASH_MESSAGE} (once)"; break; fi; done; fi
if [ -n "$crash" ]; then code=3; (sleep 1.5; echo "$crash"; kill -TERM 1) & fi
echo "app $(cat /www/version) starting, replica \${WHARF_REPLICA:-?}"
if [ -n "$PORT" ]; then httpd -f -p "127.0.0.1:$PORT" -h /www & fi
while :; do sleep 1 & wait $!; done
`;

/** GET /cgi-bin/slow answers the version after a second: a request in flight while a proxy switches. */
const SLOW_CGI = '#!/bin/sh\necho Content-Type: text/plain\necho\nsleep 1\ncat /www/version\n';

export interface TestRelease {
  /** the version written into /www/version */
  version: string;
  digest: string;
}

export interface TestReleases {
  /** the repository as hosts pull it: 127.0.0.1:PORT/NAME */
  image: string;
  releases: Record<string, TestRelease>;
}

/**
 * Makes one image per version (a `bad` version fails its health check) and pushes it to `registryHost` through the
 * registry API, so that every host must pull from Wharf. No engine builds them: `docker build` and `docker push` of
 * four releases took 5–17 s of every deploy test file's setup (a container per Dockerfile step, on the machine's
 * busy dockerd), this takes well under one. The images are what such a build made: the busybox base layer (the same
 * blob for every release, as a shared base layer is) and a layer with the app, as Docker image manifests.
 */
export async function pushTestReleases(registryHost: string, repository: string, versions: string[]): Promise<TestReleases> {
  const base = `http://${registryHost}`;
  const image = `${registryHost}/${repository}`;
  const rootfs = await baseLayer();
  // pushed once before the releases that share it
  await pushBlob(base, repository, rootfs.blob);
  const releases: Record<string, TestRelease> = {};
  const push = async (version: string) => {
    const bad = version.startsWith('bad');
    const app = gzipped(
      await tarOf([
        { name: 'app.sh', content: APP_SH },
        { name: 'www/', type: 'directory' },
        { name: 'www/release', content: `${version}\n` },
        // unique content per push, so each version has its own digest
        { name: 'www/version', content: `${version}-${randomBytes(6).toString('hex')}\n` },
        bad ? { name: 'www/fail', content: '' } : { name: 'www/health', content: 'ok\n' },
        { name: 'www/cgi-bin/', type: 'directory' },
        { name: 'www/cgi-bin/slow', mode: 0o755, content: SLOW_CGI },
      ]),
    );
    const config = Buffer.from(
      JSON.stringify({
        architecture: ARCHITECTURE,
        os: 'linux',
        created: new Date().toISOString(),
        config: {
          Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
          Cmd: ['/bin/sh', '/app.sh'],
          // Each probe is a `runc exec` (about 0.1 CPU s): five replicas probed every 300 ms kept 1.6 of two cores
          // busy, and the engines here (Docker 20.10) have no start interval. So a good release is probed every
          // second (healthy one second after its start), a bad one every 300 ms (it fails at once, exit 1, and lives
          // only that long). A probe is allowed 10 s because on a loaded machine starting the exec alone can take
          // seconds, and a good replica must not be failed for that.
          Healthcheck: { Test: ['CMD', '/bin/sh', '-c', HEALTH_SCRIPT], Interval: (bad ? 300 : 1_000) * MS, Timeout: 10_000 * MS, Retries: 2 },
        },
        rootfs: { type: 'layers', diff_ids: [rootfs.diffId, app.diffId] },
        history: [{ created_by: `busybox rootfs (${BASE_IMAGE})` }, { created_by: `wharf deploy test app ${version}` }],
      }),
    );
    await Promise.all([pushBlob(base, repository, app.blob), pushBlob(base, repository, config)]);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: DOCKER_MANIFEST,
        config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: sha256(config) },
        layers: [rootfs, app].map((l) => ({ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: l.blob.length, digest: l.digest })),
      }),
    );
    const res = await fetch(`${base}/v2/${repository}/manifests/${version}`, {
      method: 'PUT',
      headers: { ...authHeaders(base), 'content-type': DOCKER_MANIFEST },
      body: new Uint8Array(manifest),
    });
    if (res.status !== 201) throw new Error(`PUT ${repository}:${version}: ${res.status} ${await res.text()}`);
    releases[version] = { version, digest: sha256(manifest) };
  };
  await Promise.all(versions.map(push));
  return { image, releases };
}

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const MS = 1_000_000;
const ARCHITECTURE = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch] ?? process.arch;

interface Entry {
  name: string;
  type?: 'file' | 'directory' | 'symlink';
  mode?: number;
  content?: string | Buffer;
  linkname?: string;
}

interface Layer {
  blob: Buffer;
  digest: string;
  /** the uncompressed tar's digest: what the image config lists */
  diffId: string;
}

let rootfsLayer: Promise<Layer> | undefined;

/** The base image's root file system (images.ts: a static busybox and its applets), made once per process. */
function baseLayer(): Promise<Layer> {
  rootfsLayer ??= (async () => {
    const busybox = await readFile(BUSYBOX_PATH);
    return gzipped(
      await tarOf([
        ...['bin', 'etc', 'www', 'root'].map((d) => ({ name: `${d}/`, type: 'directory' as const })),
        { name: 'tmp/', type: 'directory', mode: 0o1777 },
        { name: 'bin/busybox', mode: 0o755, content: busybox },
        ...APPLETS.map((a) => ({ name: `bin/${a}`, type: 'symlink' as const, linkname: 'busybox' })),
        { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' },
        { name: 'etc/group', content: 'root:x:0:\nnogroup:x:65534:\n' },
      ]),
    );
  })();
  rootfsLayer.catch(() => (rootfsLayer = undefined));
  return rootfsLayer;
}

/** A tar of the entries, owned by root, with a fixed date (the base layer is the same blob in every process). */
async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const done = streamToBuffer(pack);
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = { name: e.name, type, mode: e.mode ?? (type === 'file' ? 0o644 : 0o755), uid: 0, gid: 0, mtime: new Date('2024-01-01T00:00:00Z'), linkname: e.linkname };
    await new Promise<void>((resolve, reject) => pack.entry(header, type === 'file' ? Buffer.from(e.content ?? '') : undefined, (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  return done;
}

function gzipped(tarball: Buffer): Layer {
  const blob = gzipSync(tarball);
  return { blob, digest: sha256(blob), diffId: sha256(tarball) };
}

async function streamToBuffer(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
