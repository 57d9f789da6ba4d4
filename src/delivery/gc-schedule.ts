// Runs retention and garbage collection in the server every `gc.interval`, counted from the last run (also
// across restarts, so a server restarted more often than the interval still collects, and across the instances
// over one database, so they take turns rather than each collecting every interval).
import type { Logger } from 'pino';
import { RegistryError } from '../oci/errors.js';
import { summarize, type GarbageCollector } from './gc.js';

export class GcSchedule {
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly gc: GarbageCollector,
    /** ms; 0 or less: never */
    private readonly interval: number,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    if (this.interval <= 0) return;
    const last = await this.gc.lastRunFinishedAt();
    this.arm(last === null ? this.interval : Math.max(0, last + this.interval - Date.now()));
  }

  private arm(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.current = this.turn().finally(() => (this.current = undefined));
    }, delay);
    this.timer.unref();
  }

  /**
   * One turn. Several instances over one database each run a schedule, and the interval counts from the last run of
   * any of them (gc_runs): a turn finding a newer run than it was armed for waits for that one's next turn instead,
   * so together they collect about once per interval. Two turns that still meet: the second is skipped (CONFLICT
   * from the lease), not queued.
   */
  private async turn(): Promise<void> {
    let next = this.interval;
    try {
      const last = await this.gc.lastRunFinishedAt();
      const due = last === null ? 0 : last + this.interval - Date.now();
      if (due > 0) {
        next = due;
        return;
      }
      this.log.info(summarize(await this.gc.collect({ trigger: 'schedule' })), 'garbage collected');
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'CONFLICT') this.log.info(`garbage collection skipped: ${err.message}`);
      else this.log.error({ err }, 'garbage collection failed');
    } finally {
      this.arm(next);
    }
  }

  /** Stops the schedule, waiting for a run in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.current;
  }
}
