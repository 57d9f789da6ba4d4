// HTTPS: `wharf serve --tls-cert --tls-key` with a certificate from a throwaway CA. Clients that trust the
// CA get in (Node, skopeo with --cert-dir, docker with /etc/docker/certs.d/HOST:PORT/ca.crt); clients
// that do not are refused by their own TLS check; nothing is served in plain HTTP on that port.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { mkdir, mkdtemp, readFile, rm, rmdir, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needTool } from '../support/tools.js';
import { mustRun, run } from '../support/command.js';
import { BASE_IMAGE, ensureBaseImage, removeImages } from '../support/images.js';
import { runWharf, startWharf, withLogsOnFailure, type WharfServer } from '../support/server.js';

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'wharf-test-tls-'));
});
after(() => rm(work, { recursive: true, force: true }));

/** A CA and a server certificate for 127.0.0.1 signed by it, made with the openssl CLI. */
async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const p = (f: string) => join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await mustRun('openssl', ['req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '1', '-subj', '/CN=Wharf test CA']);
  await mustRun('openssl', ['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=127.0.0.1']);
  await writeFile(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  await mustRun('openssl', ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.crt'), '-days', '1', '-extfile', p('ext.cnf')]);
  return { ca: p('ca.crt'), cert: p('server.crt'), key: p('server.key') };
}

function get(url: string, opts: { ca?: Buffer; auth?: string }): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, { ca: opts.ca, headers: opts.auth ? { authorization: opts.auth } : {} }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

let server: WharfServer;
let certs: { ca: string; cert: string; key: string };

test('HTTPS with a self-signed CA: Node, skopeo and docker', { timeout: 300_000 }, async (t) => {
  if (!(await needTool(t, 'openssl', 'skopeo', 'docker', 'busybox'))) return;
  certs = await makeCertificates(work);
  server = await startWharf({ args: ['--tls-cert', certs.cert, '--tls-key', certs.key] });
  const ca = await readFile(certs.ca);
  const certsD = '/etc/docker/certs.d';
  const dockerCertDir = join(certsD, server.host);
  const image = `${server.host}/tls/app:1`;
  const dockerConfig = await mkdtemp(join(work, 'docker-'));
  const docker = (args: string[], input?: string) => run('docker', args, { env: { DOCKER_CONFIG: dockerConfig }, input, timeoutMs: 180_000 });
  try {
    await withLogsOnFailure(server, async () => {
      assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/, 'the listening line says https');

      const challenge = await get(`${server.url}/v2/`, { ca });
      assert.equal(challenge.status, 401);
      assert.equal(challenge.headers['www-authenticate'], `Bearer realm="${server.url}/token",service="wharf"`, 'the realm is https too');
      const token = await get(`${server.url}/token?service=wharf&scope=repository:tls/app:pull`, { ca, auth: server.authorization });
      assert.equal(token.status, 200, token.body);

      await assert.rejects(get(`${server.url}/v2/`, {}), /self[- ]signed|unable to verify|certificate/i, 'a client without the CA refuses the server');
      await assert.rejects(get(`http://${server.host}/v2/`, {}), 'no plain HTTP on the TLS port');

      // The wharf CLI trusts what Node trusts: the CA added with NODE_EXTRA_CA_CERTS, and refuses the server without it.
      const cliConfig = await mkdtemp(join(work, 'wharf-cli-'));
      const cli = (args: string[], extra: Record<string, string>) =>
        runWharf(args, { env: { ...process.env, WHARF_CONFIG_DIR: cliConfig, ...extra }, input: server.admin.password });
      const loggedIn = await cli(['login', server.url, '-u', server.admin.username, '--password-stdin'], { NODE_EXTRA_CA_CERTS: certs.ca });
      assert.equal(loggedIn.code, 0, loggedIn.stderr);
      const listed = await cli(['user', 'list', '--server', server.url], { NODE_EXTRA_CA_CERTS: certs.ca });
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, new RegExp(`^${server.admin.username} `, 'm'));
      const refused = await cli(['user', 'list', '--server', server.url], {});
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^wharf user: cannot connect to https:\/\/127\.0\.0\.1:\d+: .*(self[- ]signed|unable to verify|certificate).*NODE_EXTRA_CA_CERTS/i);
      assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr);

      // skopeo verifies certificates even on loopback: refused without the CA, accepted with it.
      const certDir = join(work, 'skopeo-certs');
      await mkdir(certDir);
      await copyFile(certs.ca, join(certDir, 'ca.crt'));
      await ensureBaseImage('docker');
      const creds = `${server.admin.username}:${server.admin.password}`;
      const untrusted = await run('skopeo', ['copy', '--dest-creds', creds, `docker-daemon:${BASE_IMAGE}`, `docker://${server.host}/tls/base:1`]);
      assert.notEqual(untrusted.code, 0);
      assert.match(untrusted.stderr, /x509|certificate signed by unknown authority/);
      await mustRun('skopeo', ['copy', '--dest-cert-dir', certDir, '--dest-creds', creds, `docker-daemon:${BASE_IMAGE}`, `docker://${server.host}/tls/base:1`], { timeoutMs: 120_000 });
      const inspected = JSON.parse((await mustRun('skopeo', ['inspect', '--cert-dir', certDir, '--creds', creds, `docker://${server.host}/tls/base:1`])).stdout) as { Digest: string };
      assert.match(inspected.Digest, /^sha256:/);

      // docker: the CA goes where a real install puts it. (dockerd treats 127.0.0.0/8 as an insecure
      // registry and skips verification there, so only the HTTPS transport itself is proven by docker.)
      await mkdir(dockerCertDir, { recursive: true });
      await copyFile(certs.ca, join(dockerCertDir, 'ca.crt'));
      const login = await docker(['login', '-u', server.admin.username, '--password-stdin', server.host], server.admin.password);
      assert.equal(login.code, 0, login.stderr);
      await mustRun('docker', ['tag', BASE_IMAGE, image]);
      const push = await docker(['push', image]);
      assert.equal(push.code, 0, push.stderr);
      await removeImages('docker', [image]);
      const pull = await docker(['pull', image]);
      assert.equal(pull.code, 0, pull.stderr);
    });
  } finally {
    await removeImages('docker', [image]);
    await docker(['logout', server.host]);
    await rm(dockerCertDir, { recursive: true, force: true });
    await rmdir(certsD).catch(() => {}); // only if it is empty: other registries' certificates stay
    await server.stop();
  }
});
