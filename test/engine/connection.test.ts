// Endpoints as written in the app file, the dockerode options they become, and Engine API version negotiation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endpointAddress, parseEndpoint } from '../../src/engine/endpoint.js';
import { dockerodeOptions, negotiateApiVersion } from '../../src/engine/connection.js';

test('endpoints: unix sockets, tcp host:port, ssh user@host[:port]; anything else is refused by name', () => {
  assert.deepEqual(parseEndpoint('unix:///var/run/docker.sock'), { scheme: 'unix', socketPath: '/var/run/docker.sock' });
  assert.deepEqual(parseEndpoint('tcp://10.0.0.5:2376'), { scheme: 'tcp', host: '10.0.0.5', port: 2376 });
  assert.deepEqual(parseEndpoint('tcp://[fd00::5]:2376'), { scheme: 'tcp', host: 'fd00::5', port: 2376 });
  assert.deepEqual(parseEndpoint('ssh://deploy@host.example'), { scheme: 'ssh', host: 'host.example', port: 22, user: 'deploy' });
  assert.deepEqual(parseEndpoint('ssh://host.example:2222'), { scheme: 'ssh', host: 'host.example', port: 2222, user: undefined });
  assert.throws(() => parseEndpoint('htp://host:2376'), { message: "unknown endpoint scheme 'htp'" });
  assert.throws(() => parseEndpoint('tcp://host'), /needs a port/);
  assert.throws(() => parseEndpoint('unix://relative.sock'), /absolute socket path/);
  assert.throws(() => parseEndpoint('/var/run/docker.sock'), /is not a URL/);
  assert.equal(endpointAddress(parseEndpoint('unix:///x.sock')), '127.0.0.1');
  assert.equal(endpointAddress(parseEndpoint('ssh://u@h1')), 'h1');
});

test('dockerode options: TLS files are read for tcp, the key file for ssh', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-tls-'));
  try {
    for (const f of ['ca', 'cert', 'key', 'id']) await writeFile(join(dir, f), `${f}-bytes`);
    assert.deepEqual(await dockerodeOptions({ endpoint: 'unix:///x.sock' }), { socketPath: '/x.sock' });
    assert.deepEqual(await dockerodeOptions({ endpoint: 'tcp://h:2375' }), { protocol: 'http', host: 'h', port: 2375 });
    const tls = await dockerodeOptions({ endpoint: 'tcp://h:2376', tls: { ca: join(dir, 'ca'), cert: join(dir, 'cert'), key: join(dir, 'key') } });
    assert.equal(tls.protocol, 'https');
    assert.equal(String(tls.ca), 'ca-bytes');
    assert.equal(String(tls.key), 'key-bytes');
    const ssh = await dockerodeOptions({ endpoint: 'ssh://deploy@h:2222', identityFile: join(dir, 'id') });
    assert.equal(ssh.protocol, 'ssh');
    assert.equal(ssh.username, 'deploy');
    assert.equal(ssh.port, 2222);
    assert.equal(String(ssh.sshOptions?.privateKey), 'id-bytes');
    await assert.rejects(dockerodeOptions({ endpoint: 'tcp://h:2376', tls: { ca: join(dir, 'missing'), cert: 'x', key: 'y' } }), /ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('API version negotiation: the lower of both sides, within what both support', () => {
  assert.equal(negotiateApiVersion({ ApiVersion: '1.41', MinAPIVersion: '1.12' }), '1.41', 'dockerd 20.10');
  assert.equal(negotiateApiVersion({ ApiVersion: '1.50', MinAPIVersion: '1.24' }), '1.47', 'an engine newer than Wharf');
  assert.equal(negotiateApiVersion({ ApiVersion: '1.43' }, '1.40'), '1.40');
  assert.equal(negotiateApiVersion({ ApiVersion: '1.44' }), '1.44', 'minor versions compare as numbers');
  assert.throws(() => negotiateApiVersion({ ApiVersion: '1.9' }), /engine speaks Docker API 1\.9; Wharf needs at least 1\.40/);
  assert.throws(() => negotiateApiVersion({ ApiVersion: '1.52', MinAPIVersion: '1.48' }), /engine needs Docker API 1\.48 or newer; Wharf speaks up to 1\.47/);
});
