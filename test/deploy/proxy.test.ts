// The proxy's rules without an engine: what an app file's `proxy` may say (strictly numbers and a plain path, so
// nothing reaches nginx's configuration as text), what a target's registration allows, the configuration generated
// from numbers only, and the ports new replicas get beside the running ones. Real nginx: test/e2e/deploy-proxy.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppFileError, parseAppFile } from '../../src/app-file/parse.js';
import { type EnvironmentPlan, resolveEnvironment } from '../../src/app-file/plan.js';
import { checkPlan, type TargetRegistration } from '../../src/deploy/target-policy.js';
import { targetRegistrationSchema } from '../../src/deploy/target-registration.js';
import { proxyConfig } from '../../src/deploy/proxy-config.js';
import { proxiedPorts } from '../../src/deploy/rollout.js';
import { specFingerprint } from '../../src/deploy/spec-fingerprint.js';
import { containerCreate } from '../../src/deploy/container-create.js';
import type { ContainerState } from '../../src/engine/docker-host.js';

const FILE = (proxy: string, extra = '', container = '{ network: host, port: 9000 }') =>
  `app: team/web\ncontainer: ${container}\nproxy: ${proxy}\n${extra}environments:\n  production:\n    targets: [web-1]\n    replicas: 2\n`;

function plan(text: string): EnvironmentPlan {
  return resolveEnvironment(parseAppFile(text), 'production');
}

function refusal(text: string): string {
  try {
    parseAppFile(text);
  } catch (e) {
    assert.ok(e instanceof AppFileError);
    return e.message;
  }
  assert.fail('the app file was accepted');
}

test('the proxy section: defaults, and an environment laid over the app level field by field', () => {
  const p = plan(FILE('{ port: 8080 }'));
  assert.deepEqual(p.proxy, { port: 8080, portEnv: 'PORT', healthPath: '/up', drain: 30_000 });
  assert.equal(p.rollout.order, 'start-first', 'host network and a fixed port, but behind a proxy: start-first');
  const own = resolveEnvironment(
    parseAppFile(`app: team/web\ncontainer: { network: host, port: 9000 }\nproxy: { port: 8080, drain: 5s }\nenvironments:\n  production:\n    targets: [web-1]\n    proxy: { healthPath: /healthz, portEnv: HTTP_PORT }\n`),
    'production',
  );
  assert.deepEqual(own.proxy, { port: 8080, portEnv: 'HTTP_PORT', healthPath: '/healthz', drain: 5_000 });
  assert.equal(plan(FILE('{ port: 8080 }').replace('proxy: { port: 8080 }\n', '')).proxy, undefined);
});

test('nothing an app file writes reaches nginx as text: paths, ports and names are checked strictly', () => {
  const injections = [
    ['{ port: 8080, healthPath: "/up; return 200" }', /proxy\.healthPath: a path such as \/up/],
    ['{ port: 8080, healthPath: "/up\\n}" }', /proxy\.healthPath: a path such as \/up/],
    ['{ port: 8080, healthPath: "up" }', /proxy\.healthPath/],
    ['{ port: 8080, healthPath: "/a?b=$host" }', /proxy\.healthPath/],
    ['{ port: "8080; include /etc/passwd" }', /proxy\.port/],
    ['{ port: 70000 }', /proxy\.port/],
    ['{ port: 8080, portEnv: "PORT=1 X" }', /proxy\.portEnv/],
    // the image and the listen address are the admin's, never the app file's
    ['{ port: 8080, image: "evil/nginx" }', /proxy: unknown key 'image'/],
    ['{ port: 8080, address: "0.0.0.0" }', /proxy: unknown key 'address'/],
    ['{ port: 8080, config: "server {}" }', /unknown key 'config'/],
  ] as const;
  for (const [proxy, message] of injections) assert.match(refusal(FILE(proxy)), message, proxy);
});

test('a proxy needs Docker hosts on the host network, a port, start-first and its own health check', () => {
  assert.match(refusal(FILE('{ healthPath: /up }')), /environments\.production\.proxy\.port: give the public port/);
  assert.match(refusal(FILE('{ port: 8080 }', '', '{ network: bridge, port: 9000 }')), /container\.network: the proxy reaches the app on the host network/);
  assert.match(refusal(FILE('{ port: 8080 }', '', '{ network: host }')), /container\.port: behind a proxy the app needs container\.port/);
  assert.match(refusal(FILE('{ port: 9002 }')), /proxy\.port: the public port is among the app's own ports 9000-9003/);
  assert.match(refusal(FILE('{ port: 8080 }', 'rollout: { order: stop-first }\n')), /rollout\.order: behind a proxy .* start-first/);
  assert.match(refusal(FILE('{ port: 8080 }', 'rollout: { rollback: { order: stop-first } }\n')), /start-first/);
  assert.match(refusal(FILE('{ port: 8080 }', '', '{ network: host, port: 9000, healthcheck: { http: "http://{host}:{port}/" } }')), /container\.healthcheck: behind a proxy/);
  assert.match(
    refusal(`app: team/web\ncontainer: { network: host, port: 9000 }\nproxy: { port: 8080 }\nenvironments:\n  production:\n    swarm: { target: s, service: web }\n`),
    /a proxy is for Docker hosts/,
  );
});

const registration = (proxy?: TargetRegistration['proxy']): ((name: string) => TargetRegistration | undefined) => {
  const t: TargetRegistration = { name: 'web-1', endpoint: 'unix:///var/run/docker.sock', apps: ['team/*'], allow: ['network-host'], ...(proxy ? { proxy } : {}) };
  return (name) => (name === t.name ? t : undefined);
};

test("a target without a proxy, or whose ports exclude the app's public port, refuses it; the admin's range allows it", () => {
  const p = plan(FILE('{ port: 8080 }'));
  assert.deepEqual(checkPlan(p, registration()), [
    { path: 'environments.production.proxy.port', message: "target 'web-1' has no proxy (a global admin allows one: 'wharf target add web-1 … --proxy-image nginx:stable')" },
  ]);
  const narrow = registration({ image: 'nginx:stable', address: '0.0.0.0', ports: { from: 8000, to: 8079 } });
  assert.match(checkPlan(p, narrow)[0]!.message, /port 8080 is not among the public ports target 'web-1' allows \(8000-8079\)/);
  assert.deepEqual(checkPlan(p, registration({ image: 'nginx:stable', address: '0.0.0.0', ports: { from: 8000, to: 8080 } })), []);
  // Reading what runs needs no proxy.
  assert.deepEqual(checkPlan(p, registration(), { targetsOnly: true }), []);
});

test('a registration names the proxy image, an IP to listen on and a port range; anything else is refused', () => {
  const base = { name: 'web-1', endpoint: 'unix:///var/run/docker.sock', apps: ['team/*'] };
  const ok = targetRegistrationSchema.parse({ ...base, proxy: { image: 'nginx:stable' } });
  assert.deepEqual(ok.proxy, { image: 'nginx:stable', address: '0.0.0.0', ports: { from: 1024, to: 65535 } });
  assert.deepEqual(targetRegistrationSchema.parse({ ...base, proxy: { image: 'registry.example.com:5000/ops/nginx@sha256:' + 'a'.repeat(64), address: '::1', ports: '80-443' } }).proxy, {
    image: 'registry.example.com:5000/ops/nginx@sha256:' + 'a'.repeat(64),
    address: '::1',
    ports: { from: 80, to: 443 },
  });
  for (const proxy of [
    { image: 'nginx:stable --privileged' },
    { image: 'NGINX' },
    { image: 'nginx', address: 'example.com' },
    { image: 'nginx', address: '0.0.0.0; ' },
    { image: 'nginx', ports: '9000-8000' },
    { image: 'nginx', ports: '0-10' },
    { image: 'nginx', ports: '80' },
    { image: 'nginx', extra: true },
  ]) {
    assert.equal(targetRegistrationSchema.safeParse({ ...base, proxy }).success, false, JSON.stringify(proxy));
  }
});

test('the nginx configuration is made of numbers and the admin address only, and refuses anything else', () => {
  const text = proxyConfig({ address: '127.0.0.1', port: 8080, upstreams: [9002, 9003], drainMs: 2_500 });
  assert.match(text, /^ {4}listen 127\.0\.0\.1:8080;$/m);
  assert.match(text, /^ {4}server 127\.0\.0\.1:9002 max_fails=0;\n {4}server 127\.0\.0\.1:9003 max_fails=0;$/m);
  assert.match(text, /^worker_shutdown_timeout 3s;$/m);
  assert.match(proxyConfig({ address: '::', port: 80, upstreams: [1], drainMs: 0 }), /listen \[::\]:80;/);
  assert.throws(() => proxyConfig({ address: '0.0.0.0; include /x', port: 80, upstreams: [1], drainMs: 0 }), /not an IP address/);
  assert.throws(() => proxyConfig({ address: '0.0.0.0', port: 80.5, upstreams: [1], drainMs: 0 }), /not a port/);
  assert.throws(() => proxyConfig({ address: '0.0.0.0', port: 80, upstreams: [70000], drainMs: 0 }), /not a port/);
  assert.throws(() => proxyConfig({ address: '0.0.0.0', port: 80, upstreams: [], drainMs: 0 }), /at least one upstream/);
});

const running = (labels: Record<string, string>[]): ContainerState[] =>
  labels.map((l, i) => ({ id: `c${i}`, name: `c${i}`, image: 'x', imageId: '', labels: l, status: 'running', running: true }));

test('new replicas get the set of ports the running ones do not hold, alternating', () => {
  assert.deepEqual(proxiedPorts(9000, 2, []), [9000, 9001]);
  assert.deepEqual(proxiedPorts(9000, 2, running([{ 'wharf.port': '9000' }, { 'wharf.port': '9001' }])), [9002, 9003]);
  assert.deepEqual(proxiedPorts(9000, 2, running([{ 'wharf.port': '9002' }, { 'wharf.port': '9003' }])), [9000, 9001]);
  // Containers from before the proxy (host network, port + replica) hold the first set.
  assert.deepEqual(proxiedPorts(9000, 2, running([{ 'wharf.replica': '0' }, { 'wharf.replica': '1' }])), [9002, 9003]);
  // Replicas went from 2 to 3 while the second set ran: 9002-9003 held, 9000-9002 overlaps, so past both.
  assert.deepEqual(proxiedPorts(9000, 3, running([{ 'wharf.port': '9003' }, { 'wharf.port': '9001' }])), [9004, 9005, 9006]);
});

test('a proxied replica is told its port in portEnv and labelled with it; the proxy is part of the fingerprint', () => {
  const p = plan(FILE('{ port: 8080, portEnv: HTTP_PORT }'));
  const spec = containerCreate({ id: '7', plan: p, image: 'r/team/web', release: { id: 1, digest: 'sha256:' + 'b'.repeat(64) } }, 1, {}, 9003);
  assert.ok(spec.env.includes('HTTP_PORT=9003'));
  assert.ok(!spec.env.some((e) => e.startsWith('PORT=')));
  assert.equal(spec.labels['wharf.port'], '9003');
  assert.notEqual(specFingerprint(p), specFingerprint(plan(FILE('{ port: 8081, portEnv: HTTP_PORT }'))));
  const without = resolveEnvironment(parseAppFile(FILE('{ port: 8080 }').replace('proxy: { port: 8080 }\n', '')), 'production');
  assert.equal(specFingerprint(without), specFingerprint({ ...without, proxy: undefined }), 'plans without a proxy keep their fingerprint');
});

test('the proxy section is written back as written (wharf get, the stored copy, the dry-run diff)', async () => {
  const { stringifyAppFile } = await import('../../src/app-file/document.js');
  const text = stringifyAppFile(parseAppFile(FILE('{ port: 8080, drain: 5s, healthPath: /healthz }')));
  assert.match(text, /proxy:\n {2}port: 8080\n {2}healthPath: \/healthz\n {2}drain: 5s\n/);
  assert.deepEqual(parseAppFile(text).proxy, { port: 8080, drain: 5_000, healthPath: '/healthz' });
});

test("behind a proxy a deploy needs both sets of the app's ports and the public port free of other containers", async () => {
  const { neededPorts } = await import('../../src/deploy/foreign-containers.js');
  assert.deepEqual(neededPorts(plan(FILE('{ port: 8080 }'))), [9000, 9001, 9002, 9003, 8080]);
});
