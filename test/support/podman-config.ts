// The podman configuration the tests run with, written by the tests themselves (not only by .ci/run): rootful
// podman without systemd, and container ulimits no higher than this machine's hard limits.
//
// Rootful podman gives containers RLIMIT_NOFILE 1048576 and a raised RLIMIT_NPROC by default. Where the machine
// forbids raising hard limits (even to root, as on these VMs), every `podman run` and every RUN of `podman build`
// then fails with "error setting rlimit type 7: operation not permitted": ask for what the machine has. Podman
// reads only the file CONTAINERS_CONF names, so a developer's own configuration cannot break the tests either.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function hardLimit(flag: '-Hn' | '-Hu', cap: number): number {
  try {
    const v = execFileSync('sh', ['-c', `ulimit ${flag}`], { encoding: 'utf8' }).trim();
    return v === 'unlimited' ? cap : Math.min(cap, Number(v));
  } catch {
    return 1024;
  }
}

export function containersConf(): string {
  const nofile = hardLimit('-Hn', 1_048_576);
  const nproc = hardLimit('-Hu', 32_768);
  return [
    '# Written by test/support/podman-config.ts for this test process.',
    '[containers]',
    `default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]`,
    '',
    '[engine]',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    '',
  ].join('\n');
}

let written: string | undefined;

/**
 * Points every podman this process starts at the test configuration (CONTAINERS_CONF, inherited by child
 * processes); the file goes when the process ends. A CONTAINERS_CONF set by the caller is left as it is.
 */
export function usePodmanTestConfig(): void {
  if (written || process.env.CONTAINERS_CONF) return;
  const dir = mkdtempSync(join(tmpdir(), 'wharf-podman-conf-'));
  written = join(dir, 'containers.conf');
  writeFileSync(written, containersConf());
  process.env.CONTAINERS_CONF = written;
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
}
