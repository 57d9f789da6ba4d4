// Reads CPU time and memory of a process and its children from /proc, to report what each server and load generator costs.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';

const ticksPerSecond = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Fields of /proc/<pid>/stat after the command name; index 0 is field 3 (state). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).trim().split(' ');
  } catch {
    return undefined;
  }
}

/** The pid and all its descendants (nginx workers, or any worker process a registry forks). */
export function processTree(root: number | number[]): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const fields = statFields(pid);
    if (fields) parentOf.set(pid, Number(fields[1]));
  }
  const tree = Array.isArray(root) ? [...root] : [root];
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, parent] of parentOf) if (parent === tree[i]) tree.push(pid);
  }
  return tree;
}

/** User + system CPU seconds used so far by the process tree. */
export function cpuSeconds(root: number | number[]): number {
  let ticks = 0;
  for (const pid of processTree(root)) {
    const fields = statFields(pid);
    if (fields) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / ticksPerSecond;
}

export function ticksToSeconds(ticks: number): number {
  return ticks / ticksPerSecond;
}

function statusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

export function rssMiB(root: number | number[]): number {
  return processTree(root).reduce((sum, pid) => sum + statusKiB(pid, 'VmRSS'), 0) / 1024;
}

/**
 * Peak resident memory of a process tree over a stretch of time. The kernel's high-water mark (VmHWM) is reset at
 * the start by writing 5 to clear_refs; where that is not allowed, RSS is sampled every 20 ms instead.
 */
export class PeakRss {
  private sampled = 0;
  private readonly pids: number[];
  private readonly timer?: NodeJS.Timeout;

  constructor(root: number | number[]) {
    this.pids = processTree(root);
    let reset = true;
    for (const pid of this.pids) {
      try {
        writeFileSync(`/proc/${pid}/clear_refs`, '5');
      } catch {
        reset = false;
      }
    }
    if (!reset) this.timer = setInterval(() => this.sample(), 20);
  }

  private sample(): void {
    this.sampled = Math.max(this.sampled, this.sum('VmRSS'));
  }

  private sum(field: 'VmHWM' | 'VmRSS'): number {
    return this.pids.reduce((total, pid) => total + statusKiB(pid, field), 0) / 1024;
  }

  /** Stops sampling and returns the peak in MiB. */
  stop(): number {
    if (!this.timer) return this.sum('VmHWM');
    clearInterval(this.timer);
    this.sample();
    return this.sampled;
  }
}

/**
 * CPU seconds all cores have spent running processes since boot (from /proc/stat), to see what else ran during a
 * measurement. Interrupt time is left out: with IRQ time accounting much of loopback networking lands there, charged
 * to no process. Time stolen by the hypervisor is counted, as it is noise too.
 */
export function machineBusySeconds(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , , , steal] = fields;
  return (user + nice + system + steal) / ticksPerSecond;
}

/** CPU seconds of the server and of the whole machine over a stretch of time. */
export class CpuMeter {
  private readonly server: number;
  private readonly machine: number;

  constructor(private readonly pid: number | number[]) {
    this.server = cpuSeconds(pid);
    this.machine = machineBusySeconds();
  }

  read(): { serverCpu: number; machineCpu: number } {
    return { serverCpu: cpuSeconds(this.pid) - this.server, machineCpu: machineBusySeconds() - this.machine };
  }
}
