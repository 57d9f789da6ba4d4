// Deploy targets, secrets and privileges over the management API with authentication on, each denied case on its
// own: only a global admin registers targets (API and config file); an admin of `team/*` applies app files that
// name registered targets covering the app, with no raw endpoint, no secret read from the server, and no
// privileged option the target does not allow; secrets go in and never come out; and the deploy re-checks what
// the registrations say then, also against an app file written around apply.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_PASSWORD, auditRows, basic, member, pushImage, startAuthHub, type AuthHub } from '../auth/auth-harness.js';
import { onDatabase } from '../support/database.js';

const ADMIN = basic('admin', ADMIN_PASSWORD);
const SOCKET = 'unix:///var/run/wharf-test-never-dialled.sock';

describe('deploy targets, secrets and privileges over the API', () => {
  let hub: AuthHub;
  let teamAdmin: string;
  let puller: string;

  const call = async (method: string, path: string, auth: string, body?: unknown) => {
    const res = await hub.req(path, { method, auth, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
    const text = await res.text();
    return { status: res.status, text, json: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : undefined };
  };
  const apply = (file: string, auth = teamAdmin) => call('POST', '/api/v1/apply', auth, { file });
  const appFile = (env: string, container = '{}') => `app: team/web\ncontainer: ${container}\nenvironments:\n  production:\n${env}\n`;

  before(async () => {
    hub = await startAuthHub(`targets:\n  - { name: from-config, endpoint: "${SOCKET}", apps: ["ops/*"], allow: [privileged] }\n`);
    teamAdmin = await member(hub, 'alice', 'pull,push,release,admin', 'team/*');
    puller = await member(hub, 'paul', 'pull', 'team/*');
  });
  after(() => hub?.close());

  it('only a global admin registers, lists and removes targets', async () => {
    const target = { name: 'shared', endpoint: SOCKET, apps: ['team/*'] };
    for (const [method, path, body] of [
      ['POST', '/api/v1/targets', target],
      ['GET', '/api/v1/targets', undefined],
      ['DELETE', '/api/v1/targets/from-config', undefined],
    ] as const) {
      const r = await call(method, path, teamAdmin, body);
      assert.equal(r.status, 403, `${method} ${path} by an admin of team/*: ${r.text}`);
    }
    const added = await call('POST', '/api/v1/targets', ADMIN, target);
    assert.equal(added.status, 201, added.text);
    const listed = (await call('GET', '/api/v1/targets', ADMIN)).json as { name: string; source: string; allow: string[] }[];
    assert.deepEqual(listed.map((t) => [t.name, t.source, t.allow.join(',')]), [['from-config', 'config', 'privileged'], ['shared', 'api', '']]);
    const rows = await auditRows(hub, { action: 'target.add' }, 2);
    assert.deepEqual(rows.map((r) => [r.actor, r.target, r.result]).sort(), [['admin', 'shared', 'ok'], ['alice', null, 'denied']]);

    assert.match((await call('POST', '/api/v1/targets', ADMIN, { ...target, endpoint: 'htp://x' })).text, /endpoint: unknown endpoint scheme/);
    assert.match((await call('POST', '/api/v1/targets', ADMIN, { ...target, allow: ['root'] })).text, /allow\.0: privileges are/);
    const fromConfig = await call('DELETE', '/api/v1/targets/from-config', ADMIN);
    assert.equal(fromConfig.status, 409, 'the config file owns its targets');
    assert.equal((await call('DELETE', '/api/v1/targets/nothing', ADMIN)).status, 404);
  });

  it('apply refuses raw endpoints and server-side secret sources (400, naming the rule)', async () => {
    for (const env of ['    targets: [unix:///var/run/docker.sock]', '    targets: ["tcp://127.0.0.1:2375"]', '    swarm: { manager: ssh://root@host, service: s }']) {
      const r = await apply(appFile(env));
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.errors[0].message, /is an endpoint; app files name registered deploy targets, never endpoints: a global admin registers one with 'wharf target add/);
    }
    for (const secret of ['{ file: /var/lib/wharf/auth/signing-key.json }', '{ env: WHARF_ADMIN_PASSWORD }']) {
      const r = await apply(appFile('    targets: [shared]', `{ secrets: { S: ${secret} } }`));
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.errors[0].message, /refused: secrets come from Wharf's secret store .* no secret may read the Wharf server's own files or environment/);
    }
  });

  it('apply refuses unregistered targets, targets of other apps and privileges the target does not allow (403)', async () => {
    const refused = async (env: string, container: string, message: RegExp) => {
      const r = await apply(appFile(env, container));
      assert.equal(r.status, 403, r.text);
      assert.match(r.json.errors[0].message, message);
    };
    await refused('    targets: [nowhere]', '{}', /no deploy target named 'nowhere' is registered/);
    await refused('    targets: [from-config]', '{}', /target 'from-config' is not for app team\/web: it takes apps ops\/\*/);
    await refused('    targets: [shared]', '{ volumes: ["/var/lib/wharf:/stolen"] }', /container\.volumes\[0\]: bind mount of the host path \/var\/lib\/wharf needs 'bind-mounts', which target 'shared' does not allow/);
    await refused('    targets: [shared]', '{ privileged: true }', /'privileged', which target 'shared' does not allow/);
    await refused('    targets: [shared]', '{ capAdd: [SYS_ADMIN] }', /'cap-add', which target 'shared' does not allow/);
    await refused('    targets: [shared]', '{ pid: host }', /'host-pid'/);
    await refused('    targets: [shared]', '{ ipc: host }', /'host-ipc'/);
    await refused('    targets: [shared]', '{ devices: [/dev/sda] }', /'devices'/);
    await refused('    targets: [shared]', '{ network: host }', /'network-host'/);
    assert.equal((await call('GET', '/api/v1/apps/team/web/app-file', teamAdmin)).status, 404, 'nothing refused was stored');
    // A dry run is checked the same way: it shows what an apply would do.
    assert.equal((await call('POST', '/api/v1/apply', teamAdmin, { file: appFile('    targets: [shared]', '{ privileged: true }'), dryRun: true })).status, 403);
  });

  it('secrets: set by an admin of the app, listed by name, never returned, audited without their value', async () => {
    const value = 'pa55-value-never-returned';
    assert.equal((await call('PUT', '/api/v1/apps/team/web/secrets/production/db', teamAdmin, { value })).status, 204);
    assert.equal((await call('PUT', '/api/v1/apps/other/web/secrets/production/db', teamAdmin, { value })).status, 403, 'not an admin of other/web');
    assert.equal((await call('PUT', '/api/v1/apps/team/web/secrets/production/db', puller, { value })).status, 403, 'pull is not enough');
    assert.equal((await call('GET', '/api/v1/apps/team/web/secrets', puller)).status, 403, 'nor to list names');
    assert.equal((await call('PUT', '/api/v1/apps/team/web/secrets/production/bad%20name', teamAdmin, { value })).status, 400);
    const listed = await call('GET', '/api/v1/apps/team/web/secrets?environment=production', teamAdmin);
    assert.deepEqual((listed.json as { name: string }[]).map((s) => s.name), ['db']);
    assert.ok(!listed.text.includes(value) && !listed.text.includes('v1:'), listed.text);
    assert.equal((await call('GET', '/api/v1/apps/team/web/secrets/production/db', ADMIN)).status, 405, 'there is no route that reads a value, even for a global admin');
    const rows = await auditRows(hub, { action: 'secret.set' }, 4);
    assert.deepEqual(rows.map((r) => [r.actor, r.repository, r.target, r.result]).sort(), [
      ['alice', 'other/web', 'production/db', 'denied'],
      ['alice', 'team/web', 'production/bad name', 'failed'],
      ['alice', 'team/web', 'production/db', 'ok'],
      ['paul', 'team/web', 'production/db', 'denied'],
    ]);
    assert.ok(!JSON.stringify(await hub.audit.list()).includes(value), 'no audit row holds the value');
  });

  it('a narrowed registration or an app file written around apply is refused at deploy time', async () => {
    // The global admin allows bind mounts for team/* on `shared`; the team admin applies a file that uses one.
    assert.equal((await call('POST', '/api/v1/targets', ADMIN, { name: 'shared', endpoint: SOCKET, apps: ['team/*'], allow: ['bind-mounts'] })).status, 201);
    const allowed = await apply(appFile('    targets: [shared]', '{ volumes: ["/srv/web:/data"] }'));
    assert.equal(allowed.status, 200, allowed.text);
    await pushImage(hub, teamAdmin, 'team/web', 'v1');
    const released = await call('POST', '/api/v1/apps/team/web/releases', teamAdmin, { environment: 'production', ref: 'v1', deploy: false });
    assert.equal(released.status, 201, released.text);

    const deploy = async () => {
      const r = await call('POST', '/api/v1/apps/team/web/deployments', teamAdmin, { environment: 'production' });
      assert.equal(r.status, 200, r.text);
      return r.text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>).at(-1)!;
    };
    // …then narrows the registration: the same stored file no longer deploys, and the record says why.
    assert.equal((await call('POST', '/api/v1/targets', ADMIN, { name: 'shared', endpoint: SOCKET, apps: ['team/*'] })).status, 201);
    const narrowed = await deploy();
    assert.equal(narrowed.result.status, 'failed', JSON.stringify(narrowed));
    assert.match(narrowed.result.reason, /^refused: environments\.production\.container\.volumes\[0\]: bind mount of the host path \/srv\/web needs 'bind-mounts', which target 'shared' does not allow/);
    const history = (await call('GET', '/api/v1/apps/team/web/deployments?environment=production', teamAdmin)).json as { status: string; reason: string }[];
    assert.equal(history[0]!.status, 'failed');

    // The target taken away from team/*: refused the same way.
    assert.equal((await call('POST', '/api/v1/targets', ADMIN, { name: 'shared', endpoint: SOCKET, apps: ['ops/*'], allow: ['bind-mounts'] })).status, 201);
    assert.match((await deploy()).result.reason, /target 'shared' is not for app team\/web/);
    assert.equal((await call('GET', '/api/v1/apps/team/web/status', teamAdmin)).status, 403, 'status does not read engines the app may not use');

    // An app file written into the database around apply (raw endpoint, server-side secrets): never deployed.
    await onDatabase(hub.dataDir, async (db) => {
      const repo = await db.selectFrom('repositories').select('id').where('name', '=', 'team/web').executeTakeFirstOrThrow();
      await db
        .updateTable('app_files')
        .set({ body: appFile('    targets: [unix:///var/run/docker.sock]', '{ secrets: { K: { file: /etc/shadow } } }') })
        .where('repository_id', '=', repo.id)
        .execute();
    });
    const around = await call('POST', '/api/v1/apps/team/web/deployments', teamAdmin, { environment: 'production' });
    assert.match(around.text, /"error":\{"code":"CONFLICT","message":"the stored app file of team\/web is refused: .*is an endpoint; app files name registered deploy targets/);
    assert.match(around.text, /refused: secrets come from Wharf's secret store/);
    // …and a corrected file can be applied over it.
    assert.equal((await call('POST', '/api/v1/targets', ADMIN, { name: 'shared', endpoint: SOCKET, apps: ['team/*'] })).status, 201);
    assert.equal((await apply(appFile('    targets: [shared]'))).status, 200);
  });
});
