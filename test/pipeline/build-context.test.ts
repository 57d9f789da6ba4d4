// The build context tar, read back by the system's tar: names (long ones through PAX), modes, symlinks and
// contents survive, .dockerignore'd files are left out, the Dockerfile and .dockerignore never are.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { contextEntries, contextTar } from '../../src/pipeline/build-context.js';
import { mustRun } from '../support/command.js';

test('packs a context that the system tar extracts byte for byte', async () => {
  const work = await mkdtemp(join(tmpdir(), 'wharf-context-'));
  try {
    const ctx = join(work, 'ctx');
    const longDir = 'd'.repeat(60) + '/' + 'e'.repeat(60);
    await mkdir(join(ctx, longDir), { recursive: true });
    await mkdir(join(ctx, 'secrets'));
    await mkdir(join(ctx, 'docs'));
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\n');
    await writeFile(join(ctx, '.dockerignore'), 'secrets\n*.md\n.dockerignore\nDockerfile\ndocs\n!docs/keep.txt\n');
    await writeFile(join(ctx, 'run.sh'), '#!/bin/sh\necho hi\n');
    await chmod(join(ctx, 'run.sh'), 0o755);
    await writeFile(join(ctx, 'README.md'), 'not in the image');
    await writeFile(join(ctx, 'secrets', 'key'), 'never sent');
    await writeFile(join(ctx, 'docs', 'keep.txt'), 'kept by an exception');
    await writeFile(join(ctx, 'docs', 'drop.txt'), 'dropped');
    await writeFile(join(ctx, 'empty'), '');
    const big = Buffer.alloc(70_000, 7);
    await writeFile(join(ctx, longDir, 'f'.repeat(40) + '.bin'), big);
    await symlink('run.sh', join(ctx, 'link'));

    const entries = await contextEntries(ctx, 'Dockerfile');
    const tarFile = join(work, 'ctx.tar');
    await pipeline(contextTar(entries), createWriteStream(tarFile));

    const listed = (await mustRun('tar', ['-tf', tarFile])).stdout.trim().split('\n').sort();
    assert.deepEqual(listed, [
      '.dockerignore',
      'Dockerfile',
      'd'.repeat(60) + '/',
      `${longDir}/`,
      `${longDir}/${'f'.repeat(40)}.bin`,
      'docs/keep.txt',
      'empty',
      'link',
      'run.sh',
    ]);
    const out = join(work, 'out');
    await mkdir(out);
    await mustRun('tar', ['-xf', tarFile, '-C', out]);
    assert.deepEqual(await readFile(join(out, longDir, 'f'.repeat(40) + '.bin')), big);
    assert.equal(await readFile(join(out, 'docs', 'keep.txt'), 'utf8'), 'kept by an exception');
    const verbose = (await mustRun('tar', ['-tvf', tarFile])).stdout;
    assert.match(verbose, /^-rwxr-xr-x .* run\.sh$/m);
    assert.match(verbose, /^lrwxrwxrwx .* link -> run\.sh$/m);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
