// The engine a pipeline builds on: the one the docker CLI would use here (DOCKER_HOST, DOCKER_TLS_VERIFY,
// DOCKER_CERT_PATH). Runs against a real engine: test/e2e/pipeline-engine.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { engineFromEnvironment } from '../../src/engine/docker-pipeline-engine.js';

test('the engine is the one DOCKER_HOST names, with client certificates under DOCKER_TLS_VERIFY', () => {
  assert.deepEqual(engineFromEnvironment({}), { endpoint: 'unix:///var/run/docker.sock' });
  assert.deepEqual(engineFromEnvironment({ DOCKER_HOST: 'ssh://ci@builder' }), { endpoint: 'ssh://ci@builder' });
  assert.deepEqual(engineFromEnvironment({ DOCKER_HOST: 'tcp://10.0.0.5:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' }), {
    endpoint: 'tcp://10.0.0.5:2376',
    tls: { ca: '/certs/ca.pem', cert: '/certs/cert.pem', key: '/certs/key.pem' },
  });
});
