// Runs retention and garbage collection in the server every `gc.interval`, counted from the last run (also
// across restarts, so a server restarted more often than the interval still collects).
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
      this.current = this.gc
        .collect({ trigger: 'schedule' })
        .then((r) => this.log.info(summarize(r), 'garbage collected'))
        .catch((err) => {
          // A collection started over the API is running: this turn is skipped, not failed.
          if (err instanceof RegistryError && err.code === 'CONFLICT') this.log.info('garbage collection skipped: another one is running');
          else this.log.error({ err }, 'garbage collection failed');
        })
        .finally(() => {
          this.current = undefined;
          this.arm(this.interval);
        });
    }, delay);
    this.timer.unref();
  }

  /** Stops the schedule, waiting for a run in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.current;
  }
}
