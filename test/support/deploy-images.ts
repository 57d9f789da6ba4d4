// Releases of a small test app for deploy tests, built locally on the busybox base and pushed to a real Wharf:
// good ones (healthy), and a bad one whose HEALTHCHECK fails with a message the tests look for.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { mustRun } from './command.js';
import { BASE_IMAGE, ensureBaseImage, removeImages } from './images.js';

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
const SLOW_CGI = `mkdir /www/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\nsleep 1\\ncat /www/version\\n' > /www/cgi-bin/slow && chmod 755 /www/cgi-bin/slow`;

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
 * Builds one image per version (a `bad` version fails its health check), pushes each to `registryHost`
 * and removes the local copies, so that every host must pull from Wharf.
 */
export async function pushTestReleases(registryHost: string, repository: string, versions: string[]): Promise<TestReleases> {
  await ensureBaseImage('docker');
  const image = `${registryHost}/${repository}`;
  const releases: Record<string, TestRelease> = {};
  const build = async (version: string) => {
    const dir = await mkdtemp(join(tmpdir(), 'wharf-deploy-app-'));
    const tag = `${image}:${version}`;
    try {
      const bad = version.startsWith('bad');
      await writeFile(join(dir, 'app.sh'), APP_SH);
      await writeFile(
        join(dir, 'Dockerfile'),
        [
          `FROM ${BASE_IMAGE}`,
          'COPY app.sh /app.sh',
          // unique content per build, so each version has its own digest
          `RUN echo ${version} > /www/release && echo ${version}-${randomBytes(6).toString('hex')} > /www/version && echo ok > /www/health${bad ? ' && rm /www/health && touch /www/fail' : ''} && ${SLOW_CGI}`,
          // Each probe is a `runc exec` (about 0.1 CPU s): five replicas probed every 300 ms kept 1.6 of two cores
          // busy, and the engines here (Docker 20.10) have no start interval. So a good release is probed every
          // second (healthy one second after its start), a bad one every 300 ms (it fails at once, exit 1, and lives
          // only that long). A probe is allowed 10 s because on a loaded machine starting the exec alone can take
          // seconds, and a good replica must not be failed for that.
          `HEALTHCHECK --interval=${bad ? '300ms' : '1s'} --timeout=10s --retries=2 CMD ${JSON.stringify(['/bin/sh', '-c', HEALTH_SCRIPT])}`,
          'CMD ["/bin/sh", "/app.sh"]',
          '',
        ].join('\n'),
      );
      await mustRun('docker', ['build', '--network', 'host', '-q', '-t', tag, '.'], { cwd: dir, timeoutMs: 180_000 });
      const push = await mustRun('docker', ['push', tag]);
      const digest = push.stdout.match(/digest: (sha256:[0-9a-f]{64})/)?.[1];
      if (!digest) throw new Error(`docker push printed no digest:\n${push.stdout}`);
      releases[version] = { version, digest };
    } finally {
      await removeImages('docker', [tag]);
      await rm(dir, { recursive: true, force: true });
    }
  };
  await Promise.all(versions.map(build));
  return { image, releases };
}
