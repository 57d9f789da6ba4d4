// One test at a time across processes, for the tests that must use fixed names on this machine's Docker engine: the
// README's walkthrough and examples/hello run their blocks verbatim (a container named myapp, an app named hello).
// CI runs two suites at once over one engine; without this they meet there, one Wharf replacing the other's
// containers. flock(1) holds the lock for as long as its `cat` reads our pipe, so a test process that dies
// releases it too.
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Waits for the machine-wide lock NAME (up to timeoutMs) and returns its release. */
export async function holdMachineLock(name: string, timeoutMs = 600_000): Promise<() => Promise<void>> {
  const file = join(tmpdir(), `wharf-test-${name}.lock`);
  const child = spawn('flock', ['-w', String(Math.ceil(timeoutMs / 1000)), file, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const locked = await new Promise<boolean>((resolve) => {
    child.stdout.once('data', () => resolve(true));
    void exited.then(() => resolve(false));
    child.once('error', () => resolve(false));
  });
  if (!locked) throw new Error(`could not take the machine lock ${file} within ${timeoutMs} ms (flock exited ${await exited})`);
  return async () => {
    child.stdin.end();
    await exited;
  };
}
