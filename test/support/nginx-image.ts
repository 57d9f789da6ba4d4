// A local nginx image for proxy tests (nothing can be pulled): Debian's nginx-light binary with the libraries `ldd`
// names, the directories its compiled-in paths need and a stand-in nginx.conf, `docker import`ed in a second or two.
import { mkdtemp, mkdir, copyFile, writeFile, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { mustRun } from './command.js';

export const NGINX_BINARY = '/usr/sbin/nginx';

/** Writes the rootfs tarball once per process; `importInto` loads it into an engine as `tag`. */
let tarball: Promise<{ tar: string; cleanup: () => Promise<void> }> | undefined;

async function makeTarball(): Promise<{ tar: string; cleanup: () => Promise<void> }> {
  const work = await mkdtemp(join(tmpdir(), 'wharf-nginx-rootfs-'));
  const root = join(work, 'rootfs');
  const ldd = await mustRun('ldd', [NGINX_BINARY]);
  const libs = [...ldd.stdout.matchAll(/(\/\S+)\s+\(0x/g)].map((m) => m[1]!);
  for (const file of [NGINX_BINARY, ...libs]) {
    await mkdir(join(root, dirname(file)), { recursive: true });
    await copyFile(file, join(root, file));
  }
  await chmod(join(root, NGINX_BINARY), 0o755);
  for (const d of ['etc/nginx', 'run', 'tmp', 'var/lib/nginx', 'var/log/nginx']) await mkdir(join(root, d), { recursive: true });
  await chmod(join(root, 'tmp'), 0o1777);
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  await writeFile(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  // The image's own configuration, as an operator's nginx image has one; Wharf runs its generated file instead.
  await writeFile(join(root, 'etc/nginx/nginx.conf'), 'events {}\nhttp { server { listen 127.0.0.1:1; } }\n');
  const tar = join(work, 'rootfs.tar');
  await mustRun('tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-cf', tar, '.']);
  return { tar, cleanup: () => rm(work, { recursive: true, force: true }) };
}

/**
 * Imports the nginx image into the engine `docker` runs against (e.g. `['-H', endpoint]`), tagged `tag`, with
 * nginx in the foreground as its command, like the official image's.
 */
export async function importNginxImage(dockerArgs: string[], tag: string): Promise<void> {
  tarball ??= makeTarball();
  const { tar } = await tarball;
  await mustRun('docker', [...dockerArgs, 'import', '--change', 'CMD ["/usr/sbin/nginx", "-g", "daemon off;"]', tar, tag], { timeoutMs: 60_000 });
}

/** Removes the tarball (the images go with their engines). */
export async function removeNginxTarball(): Promise<void> {
  if (tarball) await (await tarball).cleanup();
  tarball = undefined;
}
