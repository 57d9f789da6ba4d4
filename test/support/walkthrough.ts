// Runs a document's shell blocks as a reader would type them: line by line, in one shell session (its working
// directory and exported variables carry over from line to line), with only the hub's port changed. Used by the
// tests that keep README.md and examples/hello/README.md true.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
