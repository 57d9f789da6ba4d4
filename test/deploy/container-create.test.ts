// The engine's container spec for a replica: image by digest, Wharf's labels, env with secrets and PORT, health check.
import { specFingerprint } from '../../src/deploy/spec-fingerprint.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAppFile } from '../../src/app-file/parse.js';
import { resolveEnvironment } from '../../src/app-file/plan.js';
import { containerCreate, containerName } from '../../src/deploy/container-create.js';
import type { DeploymentRequest } from '../../src/deploy/deployment.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

function request(container: string): DeploymentRequest {
  const plan = resolveEnvironment(
    parseAppFile(`app: team/myapp
environments:
  production:
    targets: [local]
    replicas: 3
    container: ${container}
`),
    'production',
  );
  return { id: 'd42', plan, image: 'wharf.example:5000/team/myapp', release: { id: 7, digest: DIGEST } };
}

test('a replica runs the release by digest, labelled with app, environment, release, digest and deployment', () => {
  const spec = containerCreate(request('{ labels: { team: a }, command: [serve], stopTimeout: 1500ms }'), 2, {});
  assert.equal(spec.name, 'team_myapp-production-d42-2');
  assert.equal(spec.image, `wharf.example:5000/team/myapp@${DIGEST}`);
  assert.deepEqual(spec.command, ['serve']);
  assert.equal(spec.stopTimeoutSec, 2, 'rounded up to whole seconds');
  assert.deepEqual(spec.labels, {
    team: 'a',
    'wharf.app': 'team/myapp',
    'wharf.env': 'production',
    'wharf.release': '7',
    'wharf.digest': DIGEST,
    'wharf.deployment': 'd42',
    'wharf.replica': '2',
    'wharf.spec': specFingerprint(request('{ labels: { team: a }, command: [serve], stopTimeout: 1500ms }').plan),
  });
  assert.equal(containerName(request('{}'), 0), 'team_myapp-production-d42-0');
});

test('env: the spec\'s variables, the secrets\' values, PORT (port + replica on the host network) and WHARF_REPLICA', () => {
  const host = containerCreate(request('{ network: host, port: 8080, env: { A: "1" }, secrets: { DB: { secret: db } } }'), 2, { DB: 's3cret' });
  assert.deepEqual(host.env, ['A=1', 'DB=s3cret', 'PORT=8082', 'WHARF_REPLICA=2']);
  assert.equal(host.network, 'host');
  const bridge = containerCreate(request('{ network: bridge, port: 8080 }'), 2, {});
  assert.deepEqual(bridge.env, ['PORT=8080', 'WHARF_REPLICA=2'], 'each container has its own network: the same port');
});

test('health: an explicit docker test overrides the image\'s HEALTHCHECK (durations in ns); otherwise the image\'s own is kept', () => {
  const custom = containerCreate(request('{ healthcheck: { docker: { test: "wget -q -O- localhost:8080/ || exit 1", interval: 2s, retries: 3, startPeriod: 10s } } }'), 0, {});
  assert.deepEqual(custom.healthcheck, { Test: ['CMD-SHELL', 'wget -q -O- localhost:8080/ || exit 1'], Interval: 2e9, Timeout: undefined, Retries: 3, StartPeriod: 10e9 });
  const argv = containerCreate(request('{ healthcheck: { docker: { test: [/bin/check, --quick] } } }'), 0, {});
  assert.deepEqual(argv.healthcheck?.Test, ['CMD', '/bin/check', '--quick']);
  assert.equal(containerCreate(request('{ healthcheck: { docker: image } }'), 0, {}).healthcheck, undefined);
  assert.equal(containerCreate(request('{ healthcheck: { http: "http://{host}:8080/" } }'), 0, {}).healthcheck, undefined, "Wharf's own checks are not the engine's");
});

test('volumes become mounts', () => {
  assert.deepEqual(containerCreate(request('{ volumes: ["/srv/data:/data:ro", "cache:/cache"] }'), 0, {}).mounts, [
    { source: '/srv/data', target: '/data', readOnly: true },
    { source: 'cache', target: '/cache', readOnly: false },
  ]);
});
