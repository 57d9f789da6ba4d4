// Who may deploy what where, decided by the global admin's target registrations: a target's patterns must cover
// the app, and every privileged container option must be allowed by the target — each denied case on its own,
// then the same options allowed. Also what a registration itself may say.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAppFile } from '../../src/app-file/parse.js';
import { type EnvironmentPlan, resolveEnvironment } from '../../src/app-file/plan.js';
import { checkPlan, privilegesOf, PRIVILEGES, type Privilege, type TargetRegistration } from '../../src/deploy/target-policy.js';
import { targetRegistrationSchema } from '../../src/deploy/target-registration.js';

function plan(container: string, env = '    targets: [shared]', app = 'team/web'): EnvironmentPlan {
  return resolveEnvironment(parseAppFile(`app: ${app}\ncontainer: ${container}\nenvironments:\n  production:\n${env}\n`), 'production');
}

const registry = (allow: Privilege[] = [], apps = ['team/*']) => {
  const targets: TargetRegistration[] = [
    { name: 'shared', endpoint: 'unix:///var/run/docker.sock', apps, allow },
    { name: 'other-team', endpoint: 'tcp://10.0.0.5:2376', apps: ['other/*'], allow: [...PRIVILEGES] },
  ];
  return (name: string) => targets.find((t) => t.name === name);
};

const CASES: [Privilege, string, RegExp][] = [
  ['bind-mounts', '{ volumes: ["/:/host"] }', /^environments\.production\.container\.volumes\[0\]: bind mount of the host path \/ needs 'bind-mounts'/],
  ['privileged', '{ privileged: true }', /^environments\.production\.container\.privileged: a privileged container needs 'privileged'/],
  ['cap-add', '{ capAdd: [SYS_ADMIN] }', /^environments\.production\.container\.capAdd: added capabilities SYS_ADMIN needs 'cap-add'/],
  ['host-pid', '{ pid: host }', /^environments\.production\.container\.pid: the host's PID namespace needs 'host-pid'/],
  ['host-ipc', '{ ipc: host }', /^environments\.production\.container\.ipc: the host's IPC namespace needs 'host-ipc'/],
  ['devices', '{ devices: [/dev/sda] }', /^environments\.production\.container\.devices: host devices \/dev\/sda needs 'devices'/],
  ['network-host', '{ network: host }', /^environments\.production\.container\.network: the host's network needs 'network-host'/],
  ['network-host', '{ network: "container:wharf" }', /the network namespace of container:wharf needs 'network-host'/],
];

test('each privileged option is refused on a target that does not allow it, naming the option and the rule', () => {
  for (const [privilege, container, message] of CASES) {
    const refusals = checkPlan(plan(container), registry());
    assert.equal(refusals.length, 1, `${container}: ${JSON.stringify(refusals)}`);
    const text = `${refusals[0]!.path}: ${refusals[0]!.message}`;
    assert.match(text, message);
    assert.match(text, new RegExp(`target 'shared' does not allow \\(a global admin allows it: 'wharf target add shared … --allow ${privilege}'\\)$`));
    // allowing another privilege does not help …
    const others = PRIVILEGES.filter((p) => p !== privilege);
    assert.equal(checkPlan(plan(container), registry(others)).length, 1, `${container} with everything but ${privilege}`);
    // … allowing this one does
    assert.deepEqual(checkPlan(plan(container), registry([privilege])), [], `${container} allowed by ${privilege}`);
  }
});

test('the exploit of issue 14 is refused for every reason at once', () => {
  const p = plan('{ volumes: ["/var/lib/wharf:/wharf:ro", "/var/run/docker.sock:/var/run/docker.sock"], privileged: true, network: host }');
  assert.deepEqual(
    checkPlan(p, registry()).map((r) => r.path),
    ['environments.production.container.volumes[0]', 'environments.production.container.volumes[1]', 'environments.production.container.privileged', 'environments.production.container.network'],
  );
});

test('named volumes, bridge and named networks need no privilege', () => {
  assert.deepEqual(privilegesOf(plan('{ volumes: ["cache:/cache", "data:/data:ro"], network: backend }').container), []);
  assert.deepEqual(checkPlan(plan('{ volumes: ["cache:/cache"], network: bridge, env: { A: b } }'), registry()), []);
});

test("a target must be registered, and its patterns must cover the app", () => {
  assert.deepEqual(checkPlan(plan('{}', '    targets: [nowhere]'), registry()), [
    { path: 'environments.production.targets[0]', message: "no deploy target named 'nowhere' is registered (a global admin registers targets: 'wharf target add')" },
  ]);
  assert.match(checkPlan(plan('{}', '    targets: [other-team]'), registry())[0]!.message, /^target 'other-team' is not for app team\/web: it takes apps other\/\*/);
  assert.equal(checkPlan(plan('{}', '    targets: [shared]', 'teamx/web'), registry()).length, 1, "'team/*' does not cover teamx/web");
  assert.equal(checkPlan(plan('{}', '    swarm: { target: other-team, service: s }'), registry())[0]!.path, 'environments.production.swarm.target');
  assert.deepEqual(checkPlan(plan('{}', '    targets: [shared]', 'team/a/b'), registry()), [], "'team/*' covers nested names");
  assert.deepEqual(checkPlan(plan('{ volumes: ["/srv:/srv"] }', '    targets: [shared]', 'team/web'), registry(['bind-mounts'], ['team/web'])), []);
});

test('a registration names an endpoint, the apps it takes and only known privileges', () => {
  const ok = targetRegistrationSchema.parse({ name: 'web-1', endpoint: 'tcp://10.0.0.5:2376', tls: { ca: '/c', cert: '/d', key: '/e' }, apps: ['team/*'] });
  assert.deepEqual(ok.allow, []);
  const issue = (v: unknown) => {
    const r = targetRegistrationSchema.safeParse(v);
    assert.ok(!r.success, JSON.stringify(v));
    return `${r.error.issues[0]!.path.join('.')}: ${r.error.issues[0]!.message}`;
  };
  assert.match(issue({ name: 'Web', endpoint: 'unix:///s', apps: ['x'] }), /^name: target names are lowercase/);
  assert.match(issue({ name: 'w', endpoint: 'htp://x', apps: ['x'] }), /^endpoint: unknown endpoint scheme/);
  assert.match(issue({ name: 'w', endpoint: 'unix:///s', apps: [] }), /^apps: name the apps/);
  assert.match(issue({ name: 'w', endpoint: 'unix:///s', apps: ['x'], allow: ['root'] }), /^allow\.0: privileges are bind-mounts, privileged/);
  assert.match(issue({ name: 'w', endpoint: 'unix:///s', apps: ['x'], tls: { ca: '/a', cert: '/b', key: '/c' } }), /^tls: tls applies only to tcp/);
  assert.match(issue({ name: 'w', endpoint: 'tcp://h:1', apps: ['x'], tls: { ca: 'rel', cert: '/b', key: '/c' } }), /^tls\.ca: a file path on the Wharf server must be absolute/);
});
