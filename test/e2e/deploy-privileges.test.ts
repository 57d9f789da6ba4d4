// Issue 14's critical hole, end to end with the wharf CLI, a running server and real engines: an admin of `team/*`
// only applies an app file whose secrets read the server's signing key and admin password, that bind-mounts host
// paths and targets the server's own engine, then releases with --deploy. Refused at apply (naming the rule), and
// refused at deploy time — after the global admin narrows the target's registration, and for a file written into
// the database around apply. The allowed path works on a real dockerd: a target registered for team/* that allows
// bind mounts, a managed secret that reaches the container and that no API answer ever carries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import { onDatabase } from '../support/database.js';
import { mustRun } from '../support/command.js';
import { withDeployHub } from '../support/deploy-hub.js';
import { runWharf } from '../support/server.js';

const APP = 'team/web';
const SECRET_VALUE = 'db-pa55word-only-for-the-container';

test('a repository-scoped admin cannot take the server over through an app file', { timeout: 300_000 }, async (t) => {
  await withDeployHub(t, { name: 'deploy-privileges', hosts: 1, app: APP, versions: ['v1', 'v2', 'v3'], login: false }, async ({ server: s, hosts, releases: rel, dir }) => {
    const host = hosts[0]!;

    // Two people at two terminals: the global admin, and alice, admin of team/* and nothing else.
    const as = (who: string) => {
      const env = { ...process.env, WHARF_SERVER: s.url, WHARF_CONFIG_DIR: join(dir, who) };
      return async (args: string[], input?: string) => runWharf(args, { env, input, timeoutMs: 120_000 });
    };
    const admin = as('admin');
    const alice = as('alice');
    const ok = async (r: Promise<{ code: number | null; stdout: string; stderr: string }>, what: string) => {
      const done = await r;
      assert.equal(done.code, 0, `${what} exited ${done.code}:\n${done.stdout}\n${done.stderr}`);
      return done.stdout;
    };
    await ok(runWharf(['user', 'add', 'alice', '--password-stdin', '--data', s.dataDir], { input: 'alice-password-1' }), 'user add');
    await ok(runWharf(['grant', 'alice', 'pull,push,release,admin', 'team/*', '--data', s.dataDir]), 'grant');
    await ok(admin(['login', s.url, '-u', 'admin', '--password-stdin'], s.admin.password), 'admin login');
    await ok(alice(['login', s.url, '-u', 'alice', '--password-stdin'], 'alice-password-1'), 'alice login');
    // grants are reread every second
    for (let i = 0; i < 40 && (await alice(['secret', 'list', APP])).code !== 0; i++) await new Promise((r) => setTimeout(r, 100));

    // --- the exploit, exactly: server files and environment as secrets, host paths, the server's own engine --
    const exploit = join(dir, 'exploit.yaml');
    const exploitText = `app: ${APP}
container:
  secrets:
    KEY: { file: ${join(s.dataDir, 'auth', 'signing-key.json')} }
    PASSWORD: { env: WHARF_ADMIN_PASSWORD }
  volumes: ["/:/host", "/var/run/docker.sock:/var/run/docker.sock"]
environments:
  production:
    autoDeploy: true
    targets: [unix:///var/run/docker.sock]
`;
    await writeFile(exploit, exploitText);
    const refused = await alice(['apply', '-f', exploit]);
    assert.notEqual(refused.code, 0, refused.stdout);
    assert.match(refused.stderr, /environments\.production\.targets\[0\]: 'unix:\/\/\/var\/run\/docker\.sock' is an endpoint; app files name registered deploy targets, never endpoints/);
    assert.match(refused.stderr, /container\.secrets\.KEY: refused: .*no secret may read the Wharf server's own files or environment/);
    assert.match(refused.stderr, /container\.secrets\.PASSWORD: refused:/);
    assert.match(refused.stderr, /^wharf apply: /, 'every problem, each located, no stack');

    // Registered targets do not help: alice cannot register one, and the global admin's does not allow host paths.
    const selfServe = await alice(['target', 'add', 'mine', 'unix:///var/run/docker.sock', '--apps', 'team/*', '--allow', 'bind-mounts,privileged']);
    assert.notEqual(selfServe.code, 0);
    assert.match(selfServe.stderr, /denied|403/i);
    await ok(admin(['target', 'add', 'team-host', host.endpoint, '--apps', 'team/*']), 'target add');
    await writeFile(exploit, exploitText.replace('targets: [unix:///var/run/docker.sock]', 'targets: [team-host]').replace(/ {4}KEY: .*\n {4}PASSWORD: .*\n/, '    KEY: { secret: key }\n'));
    const mounts = await alice(['apply', '-f', exploit]);
    assert.notEqual(mounts.code, 0);
    assert.match(mounts.stderr, /container\.volumes\[0\]: bind mount of the host path \/ needs 'bind-mounts', which target 'team-host' does not allow \(a global admin allows it: 'wharf target add team-host … --allow bind-mounts'\)/);
    const release = await alice(['release', APP, 'v1', '--env', 'production', '--deploy']);
    assert.notEqual(release.code, 0, 'nothing to deploy: no app file was applied');
    const onServerEngine = async () => (await mustRun('docker', ['ps', '-aq', '--filter', `label=wharf.app=${APP}`])).stdout.trim();
    assert.equal(await onServerEngine(), '', "nothing of the app on the server's own engine");

    // --- the allowed path: bind mounts allowed for team/* on team-host; a managed secret ---------------------
    await ok(admin(['target', 'add', 'team-host', host.endpoint, '--apps', 'team/*', '--allow', 'bind-mounts']), 'target add --allow');
    const shared = join(dir, 'shared');
    await mustRun('mkdir', ['-p', shared]);
    await writeFile(join(shared, 'marker'), 'from the host\n');
    await ok(alice(['secret', 'set', APP, 'production', 'db'], `${SECRET_VALUE}\n`), 'secret set');
    const good = join(dir, 'wharf.yaml');
    await writeFile(
      good,
      `app: ${APP}
container:
  stopTimeout: 2s
  secrets: { DB_PASSWORD: { secret: db } }
  volumes: ["${shared}:/shared:ro"]
rollout: { healthTimeout: 20s, monitor: 300ms }
environments:
  production:
    autoDeploy: true
    targets: [team-host]
`,
    );
    await ok(alice(['apply', '-f', good]), 'apply');
    const deployed = await ok(alice(['release', APP, 'v1', '--env', 'production']), 'release v1 (auto-deploy)');
    assert.match(deployed, /succeeded/);
    const running = async () => (await host.mustDocker(['ps', '--no-trunc', '--filter', `label=wharf.app=${APP}`, '--format', '{{.ID}} {{.Image}}'])).stdout.trim().split('\n').filter(Boolean);
    const [container] = (await running()).map((l) => l.split(' ') as [string, string]);
    assert.equal(container![1], `${rel.image}@${rel.releases.v1!.digest}`);
    assert.equal((await host.mustDocker(['exec', container![0], 'sh', '-c', 'printf %s "$DB_PASSWORD"'])).stdout, SECRET_VALUE, 'the managed secret reached the container');
    assert.equal((await host.mustDocker(['exec', container![0], 'cat', '/shared/marker'])).stdout, 'from the host\n', 'the allowed bind mount works');

    // No answer of the API carries the value: secret list, the app file, deployments, status, releases, audit.
    const answers = [
      await ok(alice(['secret', 'list', APP, '--json']), 'secret list'),
      await ok(alice(['get', APP, '-o', 'yaml']), 'get'),
      await ok(alice(['deployments', APP, '--env', 'production', '--json']), 'deployments'),
      await ok(alice(['status', APP, '--json']), 'status'),
      await ok(alice(['releases', APP, '--json']), 'releases'),
      await ok(runWharf(['audit', '--json', '--repo', APP, '--data', s.dataDir]), 'audit'),
      deployed,
    ];
    for (const a of answers) assert.ok(!a.includes(SECRET_VALUE), a);
    assert.deepEqual((JSON.parse(answers[0]!) as { name: string }[]).map((x) => x.name), ['db']);
    assert.match(answers[5]!, /"action": "secret\.set"/);

    // --- refused at deploy time: the registration narrowed after apply -------------------------------------
    await ok(admin(['target', 'add', 'team-host', host.endpoint, '--apps', 'team/*']), 'target narrowed');
    const narrowed = await alice(['release', APP, 'v2', '--env', 'production', '--deploy']);
    assert.notEqual(narrowed.code, 0, narrowed.stdout);
    assert.match(narrowed.stdout + narrowed.stderr, /refused: environments\.production\.container\.volumes\[0\]: bind mount of the host path .* needs 'bind-mounts', which target 'team-host' does not allow/);
    assert.deepEqual((await running()).map((l) => l.split(' ')[1]), [`${rel.image}@${rel.releases.v1!.digest}`], 'v1 still runs, untouched');

    // --- refused at deploy time: the exploit written into the database around apply -----------------------
    // Through a connection of its own, as an operator's sqlite3 or psql shell would (either backend).
    const changed = await onDatabase(s.dataDir, (db) =>
      sql`update app_files set body = ${exploitText.replace('autoDeploy: true', 'autoDeploy: false')} where repository_id = (select id from repositories where name = ${APP})`.execute(db),
    );
    assert.equal(Number(changed.numAffectedRows), 1);
    const around = await alice(['deploy', APP, '--env', 'production']);
    assert.notEqual(around.code, 0, around.stdout);
    assert.match(around.stderr, /the stored app file of team\/web is refused: .*is an endpoint; app files name registered deploy targets/s);
    const released = await alice(['release', APP, 'v3', '--env', 'production', '--deploy']);
    assert.notEqual(released.code, 0, released.stdout);
    assert.match(released.stdout + released.stderr, /the stored app file of team\/web is refused/);
    assert.equal(await onServerEngine(), '', "still nothing of the app on the server's own engine");
    assert.deepEqual((await running()).map((l) => l.split(' ')[1]), [`${rel.image}@${rel.releases.v1!.digest}`], 'and v1 still runs on the target');
  });
});
