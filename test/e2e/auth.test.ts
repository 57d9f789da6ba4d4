// Access end to end, with the real docker, podman and skopeo against a real `wharf serve`: a fresh Wharf
// refuses anonymous push and pull, the admin hands out a CI token limited to one repository pattern with
// `wharf token create`, every client logs in with it and is refused outside its scope, the audit log
// names who pushed the tag, and a revoked token stops working on the running server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needTool } from '../support/tools.js';
import { mustRun, run, type RunResult } from '../support/command.js';
import { BASE_IMAGE, buildTestApp, ensureBaseImage, removeImages } from '../support/images.js';
import { runWharf, startWharf, withLogsOnFailure, type WharfServer } from '../support/server.js';

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-test-auth-'));
});
after(() => rm(work, { recursive: true, force: true }));

/** docker with its own client config dir, so logins here touch nothing else. */
function dockerAs(configDir: string) {
  return (args: string[], input?: string) => run('docker', args, { env: { DOCKER_CONFIG: configDir }, input, timeoutMs: 180_000 });
}

function ok(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);
  return r;
}

function refused(r: RunResult, what: string, why: RegExp): void {
  assert.notEqual(r.code, 0, `${what} should have been refused:\n${r.stdout}`);
  assert.match(r.stderr + r.stdout, why, what);
}

const AUTH_REFUSAL = /unauthorized|authentication required|no basic auth credentials/i;
const DENIED = /denied|requested access to the resource is denied|403|unauthorized/i;

test('a fresh Wharf refuses anonymous push and pull; the generated admin password is in a 0600 file', { timeout: 240_000 }, async (t) => {
  if (!(await needTool(t, 'docker', 'busybox'))) return;
  await ensureBaseImage('docker');
  const server = await startWharf({ env: { WHARF_ADMIN_PASSWORD: '' } });
  const docker = dockerAs(await mkdtemp(join(work, 'docker-')));
  const image = `${server.host}/fresh/app:1`;
  try {
    await withLogsOnFailure(server, async () => {
      const file = join(server.dataDir, 'initial-admin-password');
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      const password = (await readFile(file, 'utf8')).trim();
      assert.ok(password.length >= 20);
      assert.match(server.logs(), new RegExp(`"file":"${file}"`), 'the log names the file');
      assert.ok(!server.logs().includes(password), 'the password itself is never logged');

      ok(await docker(['tag', BASE_IMAGE, image]), 'docker tag');
      refused(await docker(['push', image]), 'anonymous docker push', AUTH_REFUSAL);

      ok(await docker(['login', '-u', 'admin', '--password-stdin', server.host], password), 'docker login with the initial password');
      ok(await docker(['push', image]), 'docker push as admin');
      ok(await docker(['logout', server.host]), 'docker logout');
      await removeImages('docker', [image]);
      refused(await docker(['pull', image]), 'anonymous docker pull of an existing image', AUTH_REFUSAL);

      const wrong = await docker(['login', '-u', 'admin', '--password-stdin', server.host], 'not-the-password');
      refused(wrong, 'docker login with a wrong password', /unauthorized|incorrect username or password/i);
    });
  } finally {
    await removeImages('docker', [image]);
    await server.stop();
  }
});

interface CiToken {
  name: string;
  scope: string;
  expires: string | null;
  secret: string;
}

async function createToken(server: WharfServer, name: string, scope: string): Promise<CiToken> {
  const r = await runWharf(['token', 'create', '--name', name, '--scope', scope, '--expires', '1d', '--json', '--data', server.dataDir]);
  assert.equal(r.code, 0, r.stderr);
  const token = JSON.parse(r.stdout) as CiToken;
  assert.deepEqual([token.name, token.scope], [name, scope]);
  assert.ok(Math.abs(Date.parse(token.expires!) - Date.now() - 86_400_000) < 60_000);
  assert.match(token.secret, /^wharf_[0-9a-f]{16}_/);
  return token;
}

async function auditRows(server: WharfServer, repo: string): Promise<{ actor: string; actorKind: string; action: string; target: string; result: string; detail: { digest?: string } | null }[]> {
  const r = await runWharf(['audit', '--repo', repo, '--json', '--data', server.dataDir]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('a CI token limited to ci/*: docker login, push, pull; refused elsewhere; the audit names it', { timeout: 300_000 }, async (t) => {
  if (!(await needTool(t, 'docker', 'busybox'))) return;
  const server = await startWharf();
  const docker = dockerAs(await mkdtemp(join(work, 'docker-')));
  const image = `${server.host}/ci/app:1`;
  const outside = `${server.host}/other/app:1`;
  try {
    await withLogsOnFailure(server, async () => {
      const token = await createToken(server, 'ci', 'repository:ci/*:pull,push');
      await buildTestApp(image);
      ok(await docker(['login', '-u', 'ci', '--password-stdin', server.host], token.secret), 'docker login with the token');
      const push = ok(await docker(['push', image]), 'docker push ci/app');
      const digest = push.stdout.match(/digest: (sha256:[0-9a-f]{64})/)?.[1];
      assert.ok(digest, push.stdout);

      ok(await docker(['tag', image, outside]), 'docker tag');
      refused(await docker(['push', outside]), 'docker push outside the token scope', DENIED);

      await removeImages('docker', [image]);
      const pull = ok(await docker(['pull', image]), 'docker pull with the token');
      assert.match(pull.stdout, new RegExp(`Digest: ${digest}`));

      // Who pushed this tag? The audit log says: the token, from loopback, this digest.
      const pushes = (await auditRows(server, 'ci/app')).filter((r) => r.action === 'manifest.push' && r.target === '1');
      assert.equal(pushes.length, 1, JSON.stringify(pushes));
      assert.deepEqual([pushes[0]!.actor, pushes[0]!.actorKind, pushes[0]!.result, pushes[0]!.detail?.digest], ['ci', 'token', 'ok', digest]);
      const denied = (await auditRows(server, 'other/app')).filter((r) => r.result === 'denied');
      assert.ok(denied.length > 0, 'the refused push outside the scope is in the audit log');

      const human = await runWharf(['audit', '--repo', 'ci/app', '--data', server.dataDir]);
      assert.match(human.stdout, /token:ci\s+127\.0\.0\.1\s+manifest\.push\s+ci\/app\s+1\s+ok/);
    });
  } finally {
    await removeImages('docker', [image, outside]);
    await server.stop();
  }
});

test('podman login and skopeo --creds with a CI token; a revoked token stops working at once', { timeout: 300_000 }, async (t) => {
  if (!(await needTool(t, 'podman', 'skopeo', 'busybox'))) return;
  const server = await startWharf();
  const authfile = join(await mkdtemp(join(work, 'podman-')), 'auth.json');
  await writeFile(authfile, '{"auths":{}}');
  const image = `${server.host}/ci/podman:1`;
  try {
    await withLogsOnFailure(server, async () => {
      const token = await createToken(server, 'ci', 'repository:ci/*:pull,push');
      await buildTestApp(image, { engine: 'podman' });
      const podman = (...args: string[]) => run('podman', [args[0]!, '--authfile', authfile, '--tls-verify=false', ...args.slice(1)], { timeoutMs: 180_000 });
      refused(await podman('push', image), 'podman push without login', AUTH_REFUSAL);
      ok(await run('podman', ['login', '--authfile', authfile, '--tls-verify=false', '-u', 'ci', '--password-stdin', server.host], { input: token.secret }), 'podman login');
      ok(await podman('push', image), 'podman push');
      refused(await podman('push', image, `docker://${server.host}/other/podman:1`), 'podman push outside the scope', DENIED);
      await removeImages('podman', [image]);
      ok(await podman('pull', image), 'podman pull');

      const creds = `ci:${token.secret}`;
      const inspect = (ref: string, ...flags: string[]) => run('skopeo', ['inspect', '--tls-verify=false', ...flags, `docker://${server.host}/${ref}`]);
      const inspected = JSON.parse(ok(await inspect('ci/podman:1', '--creds', creds), 'skopeo inspect --creds').stdout) as { Digest: string };
      refused(await inspect('ci/podman:1', '--no-creds'), 'skopeo inspect without credentials', AUTH_REFUSAL);
      refused(await inspect('ci/podman:1', '--creds', 'ci:wharf_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), 'a made-up token', AUTH_REFUSAL);
      ok(
        await run('skopeo', ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--src-creds', creds, '--dest-creds', creds, `docker://${image}`, `docker://${server.host}/ci/copied:1`]),
        'skopeo copy within the scope',
      );
      const copied = JSON.parse(ok(await inspect('ci/copied:1', '--creds', creds), 'inspect the copy').stdout) as { Digest: string };
      assert.equal(copied.Digest, inspected.Digest);
      refused(
        await run('skopeo', ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--src-creds', creds, '--dest-creds', creds, `docker://${image}`, `docker://${server.host}/other/copied:1`]),
        'skopeo copy outside the scope',
        DENIED,
      );

      assert.equal((await runWharf(['token', 'revoke', 'ci', '--data', server.dataDir])).code, 0);
      // The server rereads tokens at least every second (auth.policyRefresh); give it a few.
      let last: RunResult | undefined;
      for (let i = 0; i < 20; i++) {
        last = await inspect('ci/podman:1', '--creds', creds);
        if (last.code !== 0) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      refused(last!, 'skopeo inspect with the revoked token', AUTH_REFUSAL);
      const list = await runWharf(['token', 'list', '--json', '--data', server.dataDir]);
      assert.deepEqual((JSON.parse(list.stdout) as { name: string; state: string }[]).map((t) => [t.name, t.state]), [['ci', 'revoked']]);
      assert.ok(!list.stdout.includes(token.secret), 'the secret is never shown again');
    });
  } finally {
    await removeImages('podman', [image]);
    await server.stop();
  }
});
