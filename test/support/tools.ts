// Decides whether an end-to-end test can run here: skips (with the reason) when a tool is missing,
// but fails under CI=true, so CI can never go green by skipping.
import type { TestContext } from 'node:test';
import { openSync, readSync, closeSync } from 'node:fs';
import { run, succeeds } from './command.js';
import { usePodmanTestConfig } from './podman-config.js';

export type Tool = 'docker' | 'skopeo' | 'podman' | 'docker-registry' | 'busybox' | 'nginx' | 'wrk' | 'openssl';

/** The statically linked busybox from Debian's busybox-static; the test base image is made of it. */
export const BUSYBOX_PATH = '/bin/busybox';

const probes: Record<Tool, () => Promise<string | undefined>> = {
  docker: async () =>
    (await succeeds('docker', ['version', '--format', '{{.Server.Version}}']))
      ? undefined
      : 'docker CLI missing or no Docker daemon answering (docker version failed)',
  skopeo: async () => ((await installed('skopeo')) ? undefined : 'skopeo not installed'),
  podman: async () =>
    (usePodmanTestConfig(), await succeeds('podman', ['info', '--format', '{{.Host.OCIRuntime.Name}}']))
      ? undefined
      : 'podman missing or not working (podman info failed)',
  'docker-registry': async () =>
    (await installed('docker-registry')) ? undefined : 'docker-registry (CNCF Distribution) not installed',
  busybox: async () =>
    isStaticExecutable(BUSYBOX_PATH) ? undefined : `no statically linked busybox at ${BUSYBOX_PATH} (apt install busybox-static)`,
  nginx: async () => ((await installed('nginx')) ? undefined : 'nginx not installed'),
  wrk: async () => ((await installed('wrk')) ? undefined : 'wrk not installed'),
  openssl: async () => ((await succeeds('openssl', ['version'])) ? undefined : 'openssl not installed'),
};

const cache = new Map<Tool, Promise<string | undefined>>();

/** Why the tool cannot be used here, or undefined if it can. Probed once per process. */
export function missingReason(name: Tool): Promise<string | undefined> {
  let p = cache.get(name);
  if (!p) {
    p = probes[name]();
    cache.set(name, p);
  }
  return p;
}

/**
 * Returns true if every named tool works. Otherwise skips the test and returns false
 * (the caller returns at once) — or, under CI=true, throws so the test fails.
 */
export async function needTool(t: TestContext, ...names: Tool[]): Promise<boolean> {
  for (const name of names) {
    const reason = await missingReason(name);
    if (reason === undefined) continue;
    if (process.env.CI === 'true') throw new Error(`CI=true and a required tool is unusable: ${reason}`);
    t.skip(reason);
    return false;
  }
  return true;
}

/** True if the command can be started at all (some, like wrk, exit non-zero for --version). */
async function installed(cmd: string): Promise<boolean> {
  try {
    await run(cmd, ['--version'], { timeoutMs: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** An ELF executable without a PT_INTERP program header needs no dynamic loader, so it runs in an empty rootfs. */
function isStaticExecutable(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    const head = Buffer.alloc(64 * 1024);
    const n = readSync(fd, head, 0, head.length, 0);
    if (n < 64 || head.readUInt32BE(0) !== 0x7f454c46 || head[4] !== 2 /* ELFCLASS64 */) return false;
    const phoff = Number(head.readBigUInt64LE(0x20));
    const phentsize = head.readUInt16LE(0x36);
    const phnum = head.readUInt16LE(0x38);
    for (let i = 0; i < phnum; i++) {
      const at = phoff + i * phentsize;
      if (at + 4 > n) return false;
      if (head.readUInt32LE(at) === 3 /* PT_INTERP */) return false;
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

/**
 * CI runs two suites at once: SQLite on Node 20 and PostgreSQL on Node 24. A packaging test runs the hub on its
 * embedded defaults whatever the suite (the container image, the npm tarball), so it tests nothing of the metadata
 * backend, and CI's 25 minutes do not hold it twice: .ci/run names in WHARF_TEST_ELSEWHERE, for each suite, the ones
 * the other suite runs. Returns true (the test is skipped, the caller returns) for those.
 */
export function runsElsewhere(t: TestContext, name: string): boolean {
  const elsewhere = (process.env.WHARF_TEST_ELSEWHERE ?? '').split(',').map((s) => s.trim());
  if (!elsewhere.includes(name)) return false;
  t.skip(`CI runs ${name} in its other suite (WHARF_TEST_ELSEWHERE)`);
  return true;
}
