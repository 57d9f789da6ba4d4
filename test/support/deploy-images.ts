// Releases of a small test app for deploy tests, built locally on the busybox base and pushed to a real Wharf:
// good ones (healthy), and a bad one whose HEALTHCHECK fails with a message the tests look for.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { mustRun } from './command.js';
import { baseLayerTar } from './images.js';
import { MEDIA_TYPE } from './oci-layout.js';
import { authHeaders, pushBlob, sha256 } from './registry-client.js';

/**
 * What a failing health check prints; tests expect it in the failure reason. Release VERSION also fails its check
 * while /shared/fail-VERSION exists (when a test mounts /shared): that fails a good release on the hosts not yet
 * switched, and leaves the other releases alone.
 */
export const HEALTH_FAILURE = 'self-test failed';
const HEALTH_SCRIPT = `for f in /www/fail /shared/fail-$(cat /www/release); do if [ -e $f ]; then echo "${HEALTH_FAILURE}: $f present"; exit 1; fi; done; touch /tmp/passed; echo ok`;

/**
 * What a release prints when it exits on purpose, a second after its first passing health check (so that Swarm
 * counts it as a task that failed while monitored; at a fixed time after its start, 1.5 s, the crash could come
 * before a probe slowed down by a loaded machine had passed), or 10 s
 * after its start if no check passes by then: while /shared/crash-VERSION exists (every start), or once when it
 * claims a file /shared/crash-once-VERSION.N (renamed away, so exactly one container takes each). The exit code is 3.
 */
export const CRASH_MESSAGE = 'crashing on purpose';

// Exits at once on SIGTERM (a plain `sleep` as PID 1 would ignore it and every stop would wait for the kill): the
// trap runs as soon as the signal interrupts `wait`. One long sleep, not one a second: every replica of every test
// forked a `sleep` each second (17,000 processes in a CI run).
const APP_SH = `#!/bin/sh
trap 'exit \${code:-0}' TERM INT
r=$(cat /www/release)
crash=
if [ -e /shared/crash-$r ]; then crash="${CRASH_MESSAGE}"; else for f in /shared/crash-once-$r.*; do if mv $f /shared/taken-$r-$$ 2>/dev/null; then crash="${CRASH_MESSAGE} (once)"; break; fi; done; fi
if [ -n "$crash" ]; then code=3; (i=0; while [ ! -e /tmp/passed ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; sleep 1; echo "$crash"; kill -TERM 1) & fi
echo "app $(cat /www/version) starting, replica \${WHARF_REPLICA:-?}"
if [ -n "$PORT" ]; then httpd -f -p "127.0.0.1:$PORT" -h /www & fi
while :; do sleep 3600 & wait $!; done
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
 * Makes one image per version (a `bad` version fails its health check) and pushes each to `registryHost` over the
 * registry API, as the admin startWharf logged in: every host must then pull it from Wharf. No engine builds them:
 * a `docker build` with a RUN step and a `docker push` cost 1.4 CPU s per version (a container, layer tars, their
 * digests), in every deploy test; these are two layers and a config, written here. The image is what the Dockerfile
 * this replaced made: the busybox base, then /app.sh and /www (release, version, health or fail, cgi-bin/slow), a
 * HEALTHCHECK and the command.
 */
export async function pushTestReleases(registryHost: string, repository: string, versions: string[]): Promise<TestReleases> {
  const base = `http://${registryHost}`;
  const image = `${registryHost}/${repository}`;
  const baseTar = await baseLayerTar();
  const baseBlob = gzipSync(baseTar, { level: 1 });
  const baseDigest = await pushBlob(base, repository, baseBlob);
  const releases: Record<string, TestRelease> = {};
  const push = async (version: string) => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-deploy-app-'));
    try {
      const bad = version.startsWith('bad');
      const root = join(dir, 'root');
      await mkdir(join(root, 'www', 'cgi-bin'), { recursive: true });
      await writeFile(join(root, 'app.sh'), APP_SH);
      await writeFile(join(root, 'www', 'release'), `${version}\n`);
      // unique content per build, so each version has its own digest
      await writeFile(join(root, 'www', 'version'), `${version}-${randomBytes(6).toString('hex')}\n`);
      await writeFile(join(root, 'www', bad ? 'fail' : 'health'), bad ? '' : 'ok\n');
      await writeFile(join(root, 'www', 'cgi-bin', 'slow'), SLOW_CGI, { mode: 0o755 });
      const tarFile = join(dir, 'layer.tar');
      await mustRun('tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', tarFile, 'app.sh', 'www']);
      const appTar = await readFile(tarFile);
      const appBlob = gzipSync(appTar, { level: 1 });
      const appDigest = await pushBlob(base, repository, appBlob);
      const config = Buffer.from(
        JSON.stringify({
          architecture: process.arch === 'x64' ? 'amd64' : process.arch,
          os: 'linux',
          created: new Date().toISOString(),
          config: {
            Cmd: ['/bin/sh', '/app.sh'],
            // Each probe is a `runc exec` (about 0.1 CPU s): five replicas probed every 300 ms kept 1.6 of two cores
            // busy, and the engines here (Docker 20.10) have no start interval. So a good release is probed every
            // second (healthy one second after its start), a bad one every 300 ms (it fails at once, exit 1, and lives
            // only that long). A probe is allowed 10 s because on a loaded machine starting the exec alone can take
            // seconds, and a good replica must not be failed for that.
            Healthcheck: { Test: ['CMD', '/bin/sh', '-c', HEALTH_SCRIPT], Interval: (bad ? 300 : 1_000) * 1e6, Timeout: 10_000 * 1e6, Retries: 2 },
          },
          rootfs: { type: 'layers', diff_ids: [sha256(baseTar), sha256(appTar)] },
          history: [{ created_by: 'wharf test: busybox base' }, { created_by: `wharf test: release ${version}` }],
        }),
      );
      const configDigest = await pushBlob(base, repository, config);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA_TYPE.manifest,
          config: { mediaType: MEDIA_TYPE.config, digest: configDigest, size: config.length },
          layers: [
            { mediaType: MEDIA_TYPE.layer, digest: baseDigest, size: baseBlob.length },
            { mediaType: MEDIA_TYPE.layer, digest: appDigest, size: appBlob.length },
          ],
        }),
      );
      const res = await fetch(`${base}/v2/${repository}/manifests/${version}`, {
        method: 'PUT',
        headers: { ...authHeaders(base), 'content-type': MEDIA_TYPE.manifest },
        body: new Uint8Array(manifest),
      });
      if (res.status !== 201) throw new Error(`PUT ${repository}:${version}: ${res.status} ${await res.text()}`);
      releases[version] = { version, digest: sha256(manifest) };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  await Promise.all(versions.map(push));
  return { image, releases };
}
