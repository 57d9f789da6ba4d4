// Per-target overrides in the app file: hosts need not be identical. What each target runs (env and labels merged
// key by key, port and volumes replaced, its own replicas), the checks (an unknown target name, a secret set as env,
// start-first where an override makes the port fixed), a bind mount only one host's registration allows, the
// containers and Swarm spec made from it, and the diff `wharf apply --dry-run` shows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppFileError, parseAppFile } from '../../src/app-file/parse.js';
import { resolveEnvironment, targetPlan, targetPlans } from '../../src/app-file/plan.js';
import { diffAppFiles, formatChanges } from '../../src/app-file/diff.js';
import { stringifyAppFile } from '../../src/app-file/document.js';
import { containerCreate } from '../../src/deploy/container-create.js';
import { serviceSpec } from '../../src/deploy/service-spec.js';
import { specFingerprint } from '../../src/deploy/spec-fingerprint.js';
import { neededPorts } from '../../src/deploy/foreign-containers.js';
import { checkPlan } from '../../src/deploy/target-policy.js';

const FILE = `
app: shop/web
container:
  env: { LOG_LEVEL: info, REGION: eu }
  labels: { team: shop }
  port: 8080
  volumes: ["data:/data"]
environments:
  production:
    targets: [web-1, web-2, web-3]
    replicas: 2
    container: { env: { LOG_LEVEL: warn } }
    overrides:
      web-2:
        port: 9090
        env: { REGION: us, EXTRA: "1" }
        labels: { rack: b }
        replicas: 3
      web-3:
        volumes: ["/mnt/ssd:/data"]
  swarm:
    swarm: { target: manager, service: web }
    replicas: 4
    overrides:
      manager: { replicas: 6, env: { REGION: ap } }
`;

function errors(text: string): string[] {
  try {
    parseAppFile(text);
  } catch (e) {
    if (e instanceof AppFileError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  return [];
}

test('each target runs the environment spec with its own override laid over it', () => {
  const plan = resolveEnvironment(parseAppFile(FILE), 'production');
  const [one, two, three] = targetPlans(plan);
  assert.deepEqual([one!.replicas, one!.container.port, one!.container.env, one!.container.labels], [2, 8080, { LOG_LEVEL: 'warn', REGION: 'eu' }, { team: 'shop' }]);
  assert.deepEqual([two!.replicas, two!.container.port, two!.container.env, two!.container.labels], [3, 9090, { LOG_LEVEL: 'warn', REGION: 'us', EXTRA: '1' }, { team: 'shop', rack: 'b' }]);
  assert.deepEqual(two!.container.volumes, [{ source: 'data', target: '/data', readOnly: false }], 'what it does not override stays');
  assert.deepEqual(three!.container.volumes, [{ source: '/mnt/ssd', target: '/data', readOnly: false }]);
  assert.equal(three!.container.port, 8080);
  assert.equal(targetPlan(plan, 'web-1'), plan, 'a target without an override runs the plan itself');

  // The containers and the fingerprint that makes a redeploy a no-op are per target.
  const req = (p: typeof plan) => ({ id: '7', plan: p, image: 'reg/shop/web', release: { id: 1, digest: 'sha256:' + 'a'.repeat(64) } });
  const c2 = containerCreate(req(two!), 2, {});
  assert.ok(c2.env.includes('REGION=us') && c2.env.includes('PORT=9090') && c2.env.includes('EXTRA=1'), c2.env.join(' '));
  assert.equal(c2.labels.rack, 'b');
  assert.ok(containerCreate(req(one!), 0, {}).env.includes('REGION=eu'));
  assert.notEqual(specFingerprint(one!), specFingerprint(two!));
  assert.equal(c2.labels['wharf.spec'], specFingerprint(two!));

  // On a Swarm target the override is the service's own.
  const swarm = resolveEnvironment(parseAppFile(FILE), 'swarm');
  const spec = serviceSpec(req(swarm) as never, {});
  assert.deepEqual(spec.Mode, { Replicated: { Replicas: 6 } });
  assert.ok(spec.TaskTemplate.ContainerSpec.Env!.includes('REGION=ap'));
});

test('host networking: the ports a host needs, and the rollout order, follow its own port', () => {
  const file = parseAppFile(`app: a
container: { network: host }
environments:
  production:
    targets: [h1, h2]
    replicas: 2
    overrides: { h2: { port: 7000 } }
`);
  const plan = resolveEnvironment(file, 'production');
  assert.deepEqual(targetPlans(plan).map(neededPorts), [[], [7000, 7001]]);
  assert.equal(plan.rollout.order, 'stop-first', 'a fixed host port on one host means stop-first');
  assert.deepEqual(errors(`app: a
container: { network: host }
rollout: { order: start-first }
environments:
  production:
    targets: [h1]
    overrides: { h1: { port: 7000 } }
`), ['environments.production.rollout.order: start-first needs a free port for each new container; with network host and a fixed port use stop-first']);
});

test('an override names a target of its environment, and cannot set what the file does not allow there', () => {
  assert.deepEqual(errors(`app: a
environments:
  production:
    targets: [web-1, web-2]
    overrides:
      web-3: { port: 80 }
      web-1: { command: ["/x"], replicas: -1 }
  edge:
    overrides: { web-1: { port: 80 } }
  swarm:
    swarm: { target: manager, service: s }
    overrides: { web-1: { replicas: 2 } }
`).sort(), [
    "environments.edge.overrides.web-1: 'web-1' is not a target of this environment (this environment deploys to no target)",
    'environments.production.overrides.web-1.replicas: Too small: expected number to be >=0',
    "environments.production.overrides.web-1: unknown key 'command'",
    "environments.production.overrides.web-3: 'web-3' is not a target of this environment (this environment's targets are web-1, web-2)",
    "environments.swarm.overrides.web-1: 'web-1' is not a target of this environment (this environment's targets are manager)",
  ]);
  assert.deepEqual(errors(`app: a
container: { secrets: { TOKEN: { secret: token } } }
environments:
  production:
    targets: [h1]
    overrides: { h1: { env: { TOKEN: plain } } }
`), ['environments.production.overrides.h1.env.TOKEN: TOKEN is a secret; an override cannot set it as an env variable']);
  assert.deepEqual(errors(`app: a
environments:
  production:
    targets: [h1]
    overrides: { h1: { labels: { wharf.app: x } } }
`), [`environments.production.overrides.h1.labels["wharf.app"]: labels starting with 'wharf.' are Wharf's own`]);
});

test("a bind mount one host's override asks for is checked against that host's registration only", () => {
  const plan = resolveEnvironment(parseAppFile(FILE), 'production');
  const registration = (name: string, allow: string[]) => ({ name, endpoint: `unix:///${name}`, apps: ['shop/*'], allow } as never);
  const lookup = (allow3: string[]) => (name: string) => (name === 'web-3' ? registration(name, allow3) : registration(name, []));
  assert.deepEqual(checkPlan(plan, lookup([])).map((r) => r.path), ['environments.production.overrides.web-3.volumes[0]']);
  assert.match(checkPlan(plan, lookup([]))[0]!.message, /bind mount of the host path \/mnt\/ssd needs 'bind-mounts', which target 'web-3' does not allow/);
  assert.deepEqual(checkPlan(plan, lookup(['bind-mounts'])), []);
});

test('the dry-run diff shows an override added or changed, and the file round-trips', () => {
  const before = parseAppFile(FILE);
  const after = parseAppFile(FILE.replace('port: 9090', 'port: 9091').replace('      web-3:\n', '      web-1: { replicas: 1 }\n      web-3:\n'));
  assert.equal(formatChanges(diffAppFiles(before, after)), ['~ environments.production.overrides.web-2.port: 9090 → 9091', '+ environments.production.overrides.web-1: {"replicas":1}'].join('\n'));
  assert.deepEqual(parseAppFile(stringifyAppFile(before)), before);
});
