// Runs a document's shell blocks as a reader would type them: line by line, in one shell session (its working
// directory and exported variables carry over from line to line), with only the hub's port changed. Used by the
// tests that keep README.md and examples/hello/README.md true.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from './command.js';

/** The ```sh blocks of a markdown section (from its heading to the next heading of the same level), as lines. */
export async function shellSteps(markdownFile: string, heading: string): Promise<string[]> {
  const text = await readFile(markdownFile, 'utf8');
  const at = text.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`${markdownFile} has no section "${heading}"`);
  const level = heading.match(/^#+/)![0];
  const rest = text.slice(at + heading.length + 2);
  const next = rest.search(new RegExp(`^${level} `, 'm'));
  const section = next < 0 ? rest : rest.slice(0, next);
  const steps: string[] = [];
  for (const m of section.matchAll(/^```(?:sh|bash|shell)\n([\s\S]*?)^```$/gm)) {
    for (const line of m[1]!.split('\n')) if (line.trim() !== '' && !line.trim().startsWith('#')) steps.push(line);
  }
  return steps;
}

export interface StepResult extends RunResult {
  command: string;
}

/** One shell session run a line at a time, so that each line's outcome can be checked on its own. */
export class ShellSession {
  private constructor(
    private readonly state: string,
    private readonly env: Record<string, string>,
  ) {}

  /** `env` is the whole environment of the session (nothing else of the test's is inherited); `cwd` where it starts. */
  static async start(cwd: string, env: Record<string, string>): Promise<ShellSession> {
    const state = await mkdtemp(join(tmpdir(), 'wharf-walkthrough-'));
    await writeFile(join(state, 'pwd'), cwd);
    await writeFile(join(state, 'env'), '');
    return new ShellSession(state, env);
  }

  /** Runs one line verbatim (as `eval` of the text, in bash with pipefail), then keeps its directory and exports. */
  async step(command: string, timeoutMs = 180_000): Promise<StepResult> {
    const script = [
      'cd "$(cat "$WALK_STATE/pwd")" || exit 97',
      '. "$WALK_STATE/env" 2>/dev/null',
      'set -o pipefail',
      'eval "$WALK_STEP"',
      'rc=$?',
      'pwd > "$WALK_STATE/pwd"',
      'export -p | grep -v -e " WALK_STEP=" -e " WALK_STATE=" -e " PWD=" -e " OLDPWD=" -e " SHLVL=" > "$WALK_STATE/env"',
      'exit $rc',
    ].join('\n');
    // run() adds the test's own environment; a session must not see it (HOME, XDG_*, WHARF_* of the test).
    const r = await run('env', ['-i', ...Object.entries({ ...this.env, WALK_STEP: command, WALK_STATE: this.state }).map(([k, v]) => `${k}=${v}`), 'bash', '-c', script], {
      timeoutMs,
    });
    return { ...r, command };
  }

  async close(): Promise<void> {
    await rm(this.state, { recursive: true, force: true });
  }
}

/** A step's output for a failure message. */
export function describeStep(r: StepResult): string {
  return `$ ${r.command}\nexit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** A clone as a reader has it after `npm ci`: the checkout's files (linked), a data directory of its own. */
export async function makeClone(home: string, repoRoot: string): Promise<string> {
  const clone = join(home, 'wharf');
  await mkdir(clone);
  for (const entry of ['package.json', 'bin', 'dist', 'node_modules', 'web']) await symlink(join(repoRoot, entry), join(clone, entry));
  return clone;
}

export interface NpmStartedHub {
  /** what `npm start` printed so far */
  log(): string;
  stop(): Promise<void>;
}

/** `npm start` in the clone, as the README says, on another port through WHARF_LISTEN (the README's way). */
export function npmStart(clone: string, env: Record<string, string>, port: number): NpmStartedHub {
  const hub = spawn('npm', ['start'], { cwd: clone, env: { ...env, WHARF_LISTEN: `127.0.0.1:${port}` }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let log = '';
  hub.stdout!.on('data', (b: Buffer) => (log += b.toString()));
  hub.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<void>((resolve) => hub.once('exit', () => resolve()));
  return {
    log: () => log,
    stop: async () => {
      try {
        // npm, its shell and the hub: the whole group, by the group's id.
        process.kill(-hub.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
      await exited;
    },
  };
}
