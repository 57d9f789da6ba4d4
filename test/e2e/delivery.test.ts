// The delivery story with real docker pushes and the `wharf` CLI against a running server: environments,
// release, promote by digest, pulling APP:ENV, immutable versions, reserved tags, rollback and history.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needTool } from '../support/tools.js';
import { mustRun, run } from '../support/command.js';
import { buildTestApp, removeImages } from '../support/images.js';
import { runWharf, startWharf, withLogsOnFailure } from '../support/server.js';

function pushedDigest(stdout: string): string {
  const d = stdout.match(/digest: (sha256:[0-9a-f]{64})/)?.[1];
  assert.ok(d, `docker push printed no digest:\n${stdout}`);
  return d;
}

test('release, promote, pull APP:ENV, refuse overwrites and roll back with docker and the wharf CLI', { timeout: 300_000 }, async (t) => {
  if (!(await needTool(t, 'docker', 'busybox'))) return;
  const server = await startWharf();
  const configDir = await mkdtemp(join(tmpdir(), 'wharf-cli-'));
  const env = { WHARF_SERVER: server.url, WHARF_CONFIG_DIR: configDir };
  const wharf = async (...args: string[]) => {
    const r = await runWharf(args, { env: { ...process.env, ...env } });
    return r;
  };
  const ok = async (...args: string[]) => {
    const r = await wharf(...args);
    assert.equal(r.code, 0, `wharf ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const repo = `${server.host}/shop`;
  const images = [`${repo}:1.0.0`, `${repo}:1.1.0`, `${repo}:1.2.0`, `${repo}:production`];
  try {
    await withLogsOnFailure(server, async () => {
      await server.login('docker');
      const login = await runWharf(['login', server.url, '-u', server.admin.username, '--password-stdin'], { env: { ...process.env, ...env }, input: server.admin.password });
      assert.equal(login.code, 0, login.stderr);
      const digests: Record<string, string> = {};
      for (const v of ['1.0.0', '1.1.0', '1.2.0']) {
        await buildTestApp(`${repo}:${v}`, { sizeKiB: 64 });
        digests[v] = pushedDigest((await mustRun('docker', ['push', `${repo}:${v}`])).stdout);
      }

      await ok('env', 'create', 'shop', 'staging');
      await ok('env', 'create', 'shop', 'production', '--requires-promotion-from', 'staging', '--protected');
      // A protected environment takes changes only from an explicit release:production grant (not the admin role).
      await ok('grant', 'admin', 'release:production', 'shop', '--server', server.url);

      const released = JSON.parse(await ok('release', 'shop', '1.1.0', '--env', 'staging', '--note', 'ship it', '--json'));
      assert.equal(released.digest, digests['1.1.0'], 'the release records the digest docker pushed');
      const promoted = JSON.parse(await ok('promote', 'shop', '--from', 'staging', '--to', 'production', '--json'));
      assert.equal(promoted.digest, digests['1.1.0']);
      assert.equal(promoted.kind, 'promote');

      // Every environment pulls the same digest: the reserved tag follows the release.
      await removeImages('docker', [`${repo}:production`]);
      const pull = await mustRun('docker', ['pull', `${repo}:production`]);
      assert.match(pull.stdout, new RegExp(`Digest: ${digests['1.1.0']}`));

      // A direct release to production is refused: it only takes promotions from staging.
      const direct = await wharf('release', 'shop', '1.2.0', '--env', 'production');
      assert.notEqual(direct.code, 0);
      assert.match(direct.stderr.trim(), /^wharf release: shop\/production only accepts promotions from staging/);
      assert.equal(direct.stderr.trim().split('\n').length, 1, 'a plain one-line error');

      // Immutable versions: pushing other bytes under 1.0.0 is refused and changes nothing.
      await mustRun('docker', ['tag', `${repo}:1.2.0`, `${repo}:1.0.0`]);
      const overwrite = await run('docker', ['push', `${repo}:1.0.0`]);
      assert.notEqual(overwrite.code, 0, 'docker push over an immutable tag must fail');
      assert.match(overwrite.stdout + overwrite.stderr, /tag 1\.0\.0 is immutable/);
      // Reserved environment tags cannot be pushed.
      await mustRun('docker', ['tag', `${repo}:1.2.0`, `${repo}:production`]);
      const reserved = await run('docker', ['push', `${repo}:production`]);
      assert.notEqual(reserved.code, 0);
      assert.match(reserved.stdout + reserved.stderr, /reserved/);

      const history = JSON.parse(await ok('tags', 'history', 'shop:1.0.0', '--json')) as { newDigest: string; actor: string }[];
      assert.deepEqual(history.map((h) => h.newDigest), [digests['1.0.0']], 'the refused push left no trace');
      assert.equal(history[0]!.actor, 'admin', 'the history says who pushed the tag');

      // Roll production forward and back again.
      await ok('release', 'shop', '1.2.0', '--env', 'staging');
      await ok('promote', 'shop', '--from', 'staging', '--to', 'production');
      const back = JSON.parse(await ok('rollback', 'shop', '--env', 'production', '--json'));
      assert.equal(back.digest, digests['1.1.0']);
      assert.equal(back.kind, 'rollback');
      const unknown = await wharf('rollback', 'shop', '--env', 'production', '--to', '9.9.9');
      assert.notEqual(unknown.code, 0);
      assert.match(unknown.stderr, /no release 9\.9\.9/);

      const releases = JSON.parse(await ok('releases', 'shop', '--env', 'production', '--json')) as { kind: string; note: string | null }[];
      assert.deepEqual(releases.map((r) => r.kind), ['rollback', 'promote', 'promote']);
      assert.ok(releases.every((r) => (r as { actor?: string }).actor === 'admin'), 'every release names who made it');
      const table = await ok('releases', 'shop');
      assert.match(table, /^ID\s+ENV\s+KIND/);
      assert.match(table, /ship it/);
    });
  } finally {
    await removeImages('docker', images);
    await rm(configDir, { recursive: true, force: true });
    await server.stop();
  }
});
