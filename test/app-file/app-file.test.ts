// The app file: parsing, located validation errors, merging per environment, YAML round trip, and the diff
// `wharf apply --dry-run` shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppFileError, parseAppFile } from '../../src/app-file/parse.js';
import { SECRET_RULE, TARGET_RULE } from '../../src/app-file/schema.js';
import { resolveEnvironment } from '../../src/app-file/plan.js';
import { stringifyAppFile } from '../../src/app-file/document.js';
import { diffAppFiles, formatChanges } from '../../src/app-file/diff.js';

const GOOD = `
app: team/myapp
container:
  command: ["/app", "--serve"]
  env: { LOG_LEVEL: info, WORKERS: 4, DEBUG: false }
  secrets:
    DB_PASSWORD: { secret: db-password }
  volumes: ["/srv/data:/data", "cache:/cache:ro"]
  labels: { team: a }
  healthcheck: { docker: image }
  stopTimeout: 20s
rollout: { parallelism: 2, delay: 5s }
environments:
  staging:
    autoDeploy: true
    targets: [local]
    replicas: 2
    container:
      env: { LOG_LEVEL: debug }
  production:
    requiresPromotionFrom: staging
    protected: true
    requires: [sbom, provenance]
    targets:
      - web-1
      - web-2
    replicas: 3
    container:
      network: host
      port: 8080
      healthcheck: { http: "http://{host}:{port}/healthz", interval: 2s }
      secrets:
        API_KEY: { secret: api-key }
    rollout: { failureAction: pause, healthTimeout: 2m, rollback: { parallelism: 3, order: start-first } }
  edge:
    swarm: { target: edge-manager, service: myapp_edge }
    replicas: 5
`;

function issuesOf(text: string): string[] {
  try {
    parseAppFile(text);
  } catch (e) {
    assert.ok(e instanceof AppFileError, String(e));
    return e.issues.map((i) => `${i.path}: ${i.message}`);
  }
  assert.fail('expected the app file to be refused');
}

test('an environment plan merges the app-level container spec and rollout with its own, over the defaults', () => {
  const file = parseAppFile(GOOD);
  const staging = resolveEnvironment(file, 'staging');
  assert.deepEqual(staging.container.env, { LOG_LEVEL: 'debug', WORKERS: '4', DEBUG: 'false' });
  assert.deepEqual(staging.container.command, ['/app', '--serve']);
  assert.deepEqual(staging.container.volumes, [
    { source: '/srv/data', target: '/data', readOnly: false },
    { source: 'cache', target: '/cache', readOnly: true },
  ]);
  assert.equal(staging.container.stopTimeout, 20_000);
  assert.deepEqual(staging.rollout, {
    parallelism: 2,
    delay: 5000,
    order: 'start-first',
    healthTimeout: 60_000,
    monitor: 5000,
    failureAction: 'rollback',
    rollback: { parallelism: 2, delay: 5000, order: 'start-first', monitor: 5000 },
  });
  assert.deepEqual(staging.rules, { requiresPromotionFrom: null, protected: false, requiresApproval: false, autoHeal: false, autoDeploy: true, requires: [] });
  assert.equal(staging.replicas, 2);

  const production = resolveEnvironment(file, 'production');
  assert.deepEqual(production.container.secrets, { DB_PASSWORD: { secret: 'db-password' }, API_KEY: { secret: 'api-key' } });
  assert.deepEqual(production.container.healthcheck, { http: 'http://{host}:{port}/healthz', interval: 2000 });
  assert.equal(production.rollout.order, 'stop-first', 'host network with a fixed port cannot start the new container first');
  assert.equal(production.rollout.failureAction, 'pause');
  assert.equal(production.rollout.healthTimeout, 120_000);
  assert.deepEqual(production.rollout.rollback, { parallelism: 3, delay: 5000, order: 'start-first', monitor: 5000 }, 'the rollback has its own settings, the rest from the rollout');
  assert.deepEqual(production.rules, { requiresPromotionFrom: 'staging', protected: true, requiresApproval: false, autoHeal: false, autoDeploy: false, requires: ['sbom', 'provenance'] });
  assert.deepEqual(production.targets, ['web-1', 'web-2']);

  const edge = resolveEnvironment(file, 'edge');
  assert.deepEqual(edge.targets, []);
  assert.deepEqual(edge.swarm, { target: 'edge-manager', service: 'myapp_edge' });
  assert.throws(() => resolveEnvironment(file, 'qa'), /no environment 'qa'/);
});

test('validation errors name the path, and the line in the file', () => {
  const text = `app: myapp
environments:
  production:
    targets:
      - local
      - Not A Name
`;
  try {
    parseAppFile(text);
    assert.fail('refused');
  } catch (e) {
    assert.ok(e instanceof AppFileError);
    assert.equal(e.message, 'environments.production.targets[1]: a target is the name of a registered deploy target (lowercase letters, digits, ., - and _)');
    assert.equal(e.issues[0]!.line, 6);
  }
});

test('every problem is reported, each at its place', () => {
  assert.deepEqual(
    issuesOf(`app: MyApp
environments:
  staging:
    targets: [tcp://h]
  production:
    requiresPromotionFrom: qa
    targets:
      - endpoint: ssh://me@h
        tls: { ca: a, cert: b, key: c }
    replicas: -1
    bogus: 1
    container:
      volumes: ["relative:path"]
      labels: { wharf.app: x }
      env: { 1BAD: x }
      secrets: { A: { file: /data/auth/signing-key.json }, B: { env: WHARF_ADMIN_PASSWORD } }
      healthcheck: { http: "http://{host}:{prot}/", command: [x] }
    rollout: { order: random }
`),
    [
      'app: not a valid repository name',
      `environments.staging.targets[0]: 'tcp://h' is an endpoint; ${TARGET_RULE}`,
      `environments.production.targets[0]: 'ssh://me@h' is an endpoint; ${TARGET_RULE}`,
      'environments.production.replicas: Too small: expected number to be >=0',
      'environments.production.container.env["1BAD"]: variable names are letters, digits and _, not starting with a digit',
      `environments.production.container.secrets.A: refused: ${SECRET_RULE}`,
      `environments.production.container.secrets.B: refused: ${SECRET_RULE}`,
      'environments.production.container.volumes[0].target: the container path must be absolute',
      'environments.production.container.labels["wharf.app"]: labels starting with \'wharf.\' are Wharf\'s own',
      'environments.production.container.healthcheck: give exactly one of docker, http, command',
      'environments.production.container.healthcheck.http: unknown placeholder {prot} (use {host}, {port})',
      'environments.production.rollout.order: Invalid option: expected one of "start-first"|"stop-first"',
      "environments.production: unknown key 'bogus'",
    ],
  );
});

test('rules that span fields are checked on the merged environment', () => {
  assert.deepEqual(
    issuesOf(`app: myapp
container: { network: host, port: 8080 }
environments:
  staging:
    targets: [local]
    rollout: { order: start-first }
  production:
    requiresPromotionFrom: qa
    targets: [local]
    container:
      healthcheck: { http: "http://{host}:{port}/" }
      env: { TOKEN: x }
      secrets: { TOKEN: { secret: token } }
  web:
    targets: [local]
    container:
      network: bridge
      healthcheck: { http: "http://{host}:{port}/" }
`),
    [
      'environments.staging.rollout.order: start-first needs a free port for each new container; with network host and a fixed port use stop-first',
      "environments.production.requiresPromotionFrom: no environment named 'qa'",
      'environments.production.container.secrets.TOKEN: TOKEN is both an env variable and a secret',
    ],
  );
  assert.deepEqual(
    issuesOf(`app: myapp
environments:
  web:
    targets: [local]
    container: { healthcheck: { http: "http://{host}:{port}/" } }
`),
    ['environments.web.container.port: the health check URL uses {port}: set container.port'],
  );
});

test('Swarm environments accept only the engine\'s health check', () => {
  assert.deepEqual(
    issuesOf(`app: myapp
environments:
  edge:
    swarm: { target: manager-1, service: edge }
    container: { healthcheck: { command: [check] } }
`),
    ['environments.edge.container.healthcheck: Swarm runs only docker health checks (it restarts unhealthy tasks itself)'],
  );
});

test('invalid YAML is reported with its line', () => {
  try {
    parseAppFile('app: x\nenvironments:\n  a: [unclosed\n');
    assert.fail('refused');
  } catch (e) {
    assert.ok(e instanceof AppFileError);
    assert.match(e.message, /^invalid YAML/);
    assert.ok(e.issues[0]!.line! >= 3);
  }
});

test('written back as YAML it reads the same (durations as text, secrets as their sources)', () => {
  const file = parseAppFile(GOOD);
  const yaml = stringifyAppFile(file);
  assert.match(yaml, /stopTimeout: 20s/);
  assert.match(yaml, /healthTimeout: 2m/);
  assert.match(yaml, /DB_PASSWORD:\n\s+secret: db-password/);
  assert.deepEqual(parseAppFile(yaml), file);
});

test('the dry-run diff names each change by path; hosts are matched by target name', () => {
  const before = parseAppFile(GOOD);
  const after = parseAppFile(
    GOOD.replace('replicas: 3', 'replicas: 5')
      .replace('      - web-1\n', '')
      .replace('rollout: { parallelism: 2, delay: 5s }', 'rollout: { parallelism: 2, delay: 10s }')
      .replace('  edge:\n', '  qa:\n    targets: [local]\n  edge:\n'),
  );
  const changes = diffAppFiles(before, after);
  assert.deepEqual(
    changes.map((c) => `${c.kind} ${c.path}`),
    [
      'changed rollout.delay',
      'removed environments.production.targets[0]',
      'changed environments.production.replicas',
      'added environments.qa',
    ],
  );
  const text = formatChanges(changes);
  assert.match(text, /^~ rollout\.delay: 5s → 10s$/m);
  assert.match(text, /^- environments\.production\.targets\[0\]: web-1$/m);
  assert.match(text, /^~ environments\.production\.replicas: 3 → 5$/m);
  assert.equal(formatChanges(diffAppFiles(before, before)), 'no changes');
  assert.deepEqual(diffAppFiles(undefined, before).map((c) => `${c.kind} ${c.path}`), ['added app', 'added container', 'added rollout', 'added environments'], 'a new app');
});

test('an app file names registered targets only: raw endpoints anywhere are refused, naming the rule', () => {
  for (const [where, yaml] of [
    ['targets[0]', 'targets: [unix:///var/run/docker.sock]'],
    ['targets[0]', 'targets: ["tcp://10.0.0.5:2376"]'],
    ['targets[0]', 'targets: [ssh://root@host]'],
    ['targets[0]', 'targets: [{ endpoint: unix:///var/run/docker.sock }]'],
    ['swarm.target', 'swarm: { manager: unix:///var/run/docker.sock, service: s }'],
    ['swarm.target', 'swarm: { target: "tcp://h:2376", service: s }'],
  ] as const) {
    const issues = issuesOf(`app: team/web\nenvironments:\n  production:\n    ${yaml}\n`);
    assert.equal(issues.length, 1, `${yaml}: ${issues.join('\n')}`);
    assert.ok(issues[0]!.startsWith(`environments.production.${where}: '`), issues[0]);
    assert.ok(issues[0]!.endsWith(TARGET_RULE), issues[0]);
  }
});

test('privileged container options parse; Swarm refuses those it cannot set', () => {
  const plan = resolveEnvironment(
    parseAppFile(`app: team/web
container: { privileged: true, capAdd: [NET_ADMIN], pid: host, ipc: host, devices: [/dev/fuse] }
environments:
  production: { targets: [local] }
`),
    'production',
  );
  assert.deepEqual([plan.container.privileged, plan.container.capAdd, plan.container.pid, plan.container.ipc, plan.container.devices], [true, ['NET_ADMIN'], 'host', 'host', ['/dev/fuse']]);
  assert.deepEqual(issuesOf(`app: team/web\nenvironments:\n  edge:\n    swarm: { target: m, service: s }\n    container: { privileged: true }\n`), [
    'environments.edge.container.privileged: Wharf does not set privileged on Swarm services',
  ]);
});
