// Container images for end-to-end tests, made locally: no image can be pulled from the internet.
// The base is a one-layer busybox rootfs; a test app adds three layers and serves files with busybox httpd.
import { mkdtemp, mkdir, copyFile, symlink, writeFile, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { mustRun, run } from './command.js';
import { BUSYBOX_PATH } from './tools.js';

export type Engine = 'docker' | 'podman';

export const BASE_IMAGE = 'wharf-test/busybox:1';

/** The busybox applets the base image links (deploy-images.ts lays out the same root file system). */
export const APPLETS = [
  'sh', 'ls', 'cat', 'echo', 'sleep', 'wget', 'httpd', 'true', 'false', 'mkdir', 'rm', 'cp', 'mv', 'ln',
  'dd', 'head', 'tail', 'sed', 'grep', 'env', 'id', 'ps', 'kill', 'sha256sum', 'tar', 'gzip', 'date',
  'uname', 'pwd', 'touch', 'chmod', 'test', '[', 'printf', 'hostname', 'nc', 'du', 'wc',
];

const ensured = new Map<Engine, Promise<void>>();

/** Makes `wharf-test/busybox:1` in the engine's image store, once per process and only if it is missing. */
export function ensureBaseImage(engine: Engine = 'docker'): Promise<void> {
  let p = ensured.get(engine);
  if (!p) {
    p = makeBaseImage(engine);
    ensured.set(engine, p);
    p.catch(() => ensured.delete(engine));
  }
  return p;
}

async function makeBaseImage(engine: Engine): Promise<void> {
  if ((await run(engine, ['image', 'inspect', BASE_IMAGE], { timeoutMs: 30_000 })).code === 0) return;
  const work = await mkdtemp(join(tmpdir(), 'wharf-test-rootfs-'));
  try {
    const root = join(work, 'rootfs');
    for (const dir of ['bin', 'etc', 'www', 'tmp', 'root']) await mkdir(join(root, dir), { recursive: true });
    await chmod(join(root, 'tmp'), 0o1777);
    await copyFile(BUSYBOX_PATH, join(root, 'bin', 'busybox'));
    await chmod(join(root, 'bin', 'busybox'), 0o755);
    for (const applet of APPLETS) await symlink('busybox', join(root, 'bin', applet));
    await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
    await writeFile(join(root, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
    const tar = join(work, 'rootfs.tar');
    await mustRun('tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', tar, '.']);
    await mustRun(engine, ['import', '--change', 'CMD ["/bin/sh"]', tar, BASE_IMAGE], { timeoutMs: 60_000 });
    // A broken base (e.g. a dynamically linked busybox) shows up here, not as a puzzling build failure later.
    await mustRun(engine, ['run', '--rm', '--network', 'host', BASE_IMAGE, '/bin/true'], { timeoutMs: 60_000 });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export interface AppContext {
  /** Build context directory holding the Dockerfile; the caller removes it. */
  dir: string;
  /** Random text in /www/index.html and /www/built.txt; unique per context, so no layer is shared with earlier builds. */
  marker: string;
}

export interface AppOptions {
  /** Size of the random file in the last layer. */
  sizeKiB?: number;
}

/**
 * Writes a build context: FROM the base image plus three layers (COPY, RUN, RUN).
 * The image runs `httpd` on 127.0.0.1:$PORT (default 8080) serving /www.
 */
export async function writeAppContext(opts: AppOptions = {}): Promise<AppContext> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-test-app-'));
  const marker = `wharf-test-${randomBytes(8).toString('hex')}`;
  await writeFile(join(dir, 'index.html'), `<h1>${marker}</h1>\n`);
  await writeFile(
    join(dir, 'Dockerfile'),
    [
      `FROM ${BASE_IMAGE}`,
      'COPY index.html /www/index.html',
      `RUN echo ${marker} > /www/built.txt`,
      `RUN dd if=/dev/urandom of=/www/random.bin bs=1024 count=${opts.sizeKiB ?? 256} 2>/dev/null`,
      'CMD exec httpd -f -p "127.0.0.1:${PORT:-8080}" -h /www',
      '',
    ].join('\n'),
  );
  return { dir, marker };
}

/** Builds a fresh test app image tagged `tag` with the engine's own builder. */
export async function buildTestApp(tag: string, opts: AppOptions & { engine?: Engine } = {}): Promise<AppContext> {
  const engine = opts.engine ?? 'docker';
  await ensureBaseImage(engine);
  const ctx = await writeAppContext(opts);
  try {
    // --no-cache: every context is unique, so the cache could only miss; and its lookup walks the base image's
    // children, which fails ("unable to find image") when another suite removes one of them at that moment.
    await mustRun(engine, ['build', '--no-cache', '--network', 'host', '-t', tag, '.'], { cwd: ctx.dir, timeoutMs: 180_000 });
  } finally {
    await rm(ctx.dir, { recursive: true, force: true });
  }
  return ctx;
}

/** Removes images a test created; a missing image is not an error. */
export async function removeImages(engine: Engine, refs: string[]): Promise<void> {
  if (refs.length > 0) await run(engine, ['rmi', '-f', ...refs], { timeoutMs: 60_000 });
}
