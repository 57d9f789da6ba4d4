// How a pipeline run shows itself: on a terminal a spinner line per step (with push progress) above the
// streamed logs; elsewhere (CI logs, --json's stderr) plain lines only.
import type { Reporter, StepResult } from './runner.js';

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export function seconds(ms: number | undefined): string {
  return ms === undefined ? '' : `${(ms / 1000).toFixed(1)}s`;
}

function outcome(s: StepResult): string {
  return [s.status === 'failed' ? s.error : s.detail].filter(Boolean).join(' ');
}

export class PlainReporter implements Reporter {
  constructor(private readonly out: NodeJS.WritableStream) {}

  stepStarted(step: { name: string }): void {
    this.out.write(`--- ${step.name}\n`);
  }

  log(step: string, line: string): void {
    this.out.write(`${step} | ${line}\n`);
  }

  /** Progress is for terminals; a CI log would fill with it. */
  progress(): void {}

  stepFinished(s: StepResult): void {
    const label = s.status === 'ok' ? 'ok' : s.status === 'failed' ? 'FAILED' : 'skipped';
    this.out.write(`${label.padEnd(7)} ${s.name}${s.durationMs === undefined ? '' : ` (${seconds(s.durationMs)})`}${outcome(s) ? `: ${outcome(s)}` : ''}\n`);
  }
}

export class TtyReporter implements Reporter {
  private current?: { name: string; started: number; note: string };
  private frame = 0;
  private timer?: NodeJS.Timeout;

  constructor(private readonly out: NodeJS.WriteStream) {}

  stepStarted(step: { name: string }): void {
    this.current = { name: step.name, started: Date.now(), note: '' };
    this.timer ??= setInterval(() => this.draw(), 80);
    this.timer.unref();
    this.draw();
  }

  log(_step: string, line: string): void {
    this.clear();
    this.out.write(`  \x1b[2m│ ${line}\x1b[0m\n`);
    this.draw();
  }

  progress(_step: string, text: string): void {
    if (this.current) this.current.note = text;
    this.draw();
  }

  stepFinished(s: StepResult): void {
    this.clear();
    this.current = undefined;
    const [mark, color] = s.status === 'ok' ? ['✔', '32'] : s.status === 'failed' ? ['✖', '31'] : ['-', '2'];
    const time = s.durationMs === undefined ? '' : ` \x1b[2m${seconds(s.durationMs)}\x1b[0m`;
    this.out.write(`\x1b[${color}m${mark} ${s.name}\x1b[0m${time}${outcome(s) ? `  ${outcome(s)}` : ''}\n`);
  }

  /** Stops the spinner for good (the run is over). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
  }

  private clear(): void {
    this.out.write('\r\x1b[2K');
  }

  private draw(): void {
    if (!this.current) return;
    this.frame = (this.frame + 1) % FRAMES.length;
    const width = this.out.columns ?? 80;
    const text = `${FRAMES[this.frame]} ${this.current.name} ${seconds(Date.now() - this.current.started)} ${this.current.note}`;
    this.clear();
    this.out.write(`\x1b[36m${text.slice(0, width - 1)}\x1b[0m`);
  }
}
