// The pipeline's Docker Engine adapter against the real dockerd: a test step's exit code and output, a step
// that outlives its timeout, and no container left behind either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { DockerPipelineEngine } from '../../src/engine/docker-pipeline-engine.js';
import { RUN_LABEL } from '../../src/pipeline/runner.js';
import { needTool } from '../support/tools.js';
import { mustRun } from '../support/command.js';
import { BASE_IMAGE, ensureBaseImage } from '../support/images.js';

async function containersOf(runId: string): Promise<string> {
  return (await mustRun('docker', ['ps', '-aq', '--filter', `label=${RUN_LABEL}=${runId}`])).stdout.trim();
}

async function imageId(): Promise<string> {
  return (await mustRun('docker', ['image', 'inspect', '--format', '{{.Id}}', BASE_IMAGE])).stdout.trim();
}

test('a test step reports its exit code and output, and its container is removed', { timeout: 60_000 }, async (t) => {
  if (!(await needTool(t, 'docker', 'busybox'))) return;
  await ensureBaseImage('docker');
  const engine = new DockerPipelineEngine();
  const runId = randomUUID();
  const lines: string[] = [];
  const quick = { image: await imageId(), env: { GREETING: 'hello' }, timeoutMs: 30_000, network: 'host', labels: { [RUN_LABEL]: runId } };
  const failing = await engine.test({ ...quick, command: ['/bin/sh', '-c', 'echo "$GREETING out"; echo err >&2; exit 3'] }, (l) => lines.push(l));
  assert.deepEqual(failing, { exitCode: 3, timedOut: false });
  assert.deepEqual(lines.sort(), ['err', 'hello out']);
  // A command that exits at once with 0 still has to have run: its output is there.
  const seen: string[] = [];
  assert.deepEqual(await engine.test({ ...quick, command: ['echo', 'ran'] }, (l) => seen.push(l)), { exitCode: 0, timedOut: false });
  assert.deepEqual(seen, ['ran']);
  assert.equal(await containersOf(runId), '');
});

test('a test step that outlives its timeout is killed and reported as timed out', { timeout: 60_000 }, async (t) => {
  if (!(await needTool(t, 'docker', 'busybox'))) return;
  await ensureBaseImage('docker');
  const engine = new DockerPipelineEngine();
  const runId = randomUUID();
  const started = Date.now();
  const outcome = await engine.test(
    { image: await imageId(), command: ['sleep', '60'], env: {}, timeoutMs: 1_000, network: 'host', labels: { [RUN_LABEL]: runId } },
    () => {},
  );
  assert.equal(outcome.timedOut, true);
  assert.notEqual(outcome.exitCode, 0);
  assert.ok(Date.now() - started < 30_000, 'the step did not run to its end');
  assert.equal(await containersOf(runId), '');
});
