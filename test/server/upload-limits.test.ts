// Stalled uploads do not hold the server: a request body idle for uploads.idleTimeout has its connection
// closed, and one user may hold only uploads.maxSessionsPerUser upload sessions at once (429 TOOMANYREQUESTS).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { digestOf } from '../../src/oci/digest.js';
import { ADMIN_PASSWORD, basic, startAuthHub, type AuthHub } from '../auth/auth-harness.js';

const ADMIN = basic('admin', ADMIN_PASSWORD);
let stalls: AuthHub;
let capped: AuthHub;

before(async () => {
  stalls = await startAuthHub('uploads:\n  idleTimeout: 300ms\n');
  capped = await startAuthHub('uploads:\n  maxSessionsPerUser: 3\nauth:\n  policyRefresh: 0\n');
});
after(async () => {
  await stalls?.close();
  await capped?.close();
});

async function startSession(hub: AuthHub, auth: string): Promise<Response> {
  return hub.req('/v2/team/app/blobs/uploads/', { method: 'POST', auth });
}

/** Opens a connection that sends the headers of a 1 MiB PATCH and 10 bytes of its body, then nothing. */
function stalledPatch(hub: AuthHub, location: string): Promise<Socket> {
  const { hostname, port } = new URL(hub.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => {
      socket.write(
        `PATCH ${location} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: ${ADMIN}\r\n` +
          `Content-Type: application/octet-stream\r\nContent-Length: ${1 << 20}\r\n\r\n0123456789`,
      );
      resolve(socket);
    });
    socket.on('error', () => undefined);
    socket.once('error', reject);
  });
}

const closed = (socket: Socket) => new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));

test('connections that send 10 bytes of a 1 MiB body and then stall are closed after the idle timeout', async () => {
  const sockets: Socket[] = [];
  for (let i = 0; i < 20; i++) {
    const res = await startSession(stalls, ADMIN);
    assert.equal(res.status, 202);
    sockets.push(await stalledPatch(stalls, res.headers.get('location')!));
  }
  // No clock is read here: without the timeout these connections stay open and the test runner's own timeout ends the test.
  await Promise.all(sockets.map(closed));
  const res = await stalls.req('/v2/', { auth: ADMIN });
  assert.equal(res.status, 200, 'the server goes on serving');
});

test('a body that keeps arriving is not cut off, however long the upload takes in total', async () => {
  const res = await startSession(stalls, ADMIN);
  const location = res.headers.get('location')!;
  const body = Buffer.alloc(64, 7);
  // Each piece well inside the idle timeout; the whole upload several times longer than it.
  const pieces = (async function* () {
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 60));
      yield body.subarray(i * 8, i * 8 + 8);
    }
  })();
  const put = await fetch(`${stalls.url}${location}${location.includes('?') ? '&' : '?'}digest=${digestOf(body)}`, {
    method: 'PUT',
    headers: { authorization: ADMIN, 'content-type': 'application/octet-stream' },
    body: pieces as unknown as BodyInit,
    duplex: 'half',
  } as RequestInit);
  assert.equal(put.status, 201, await put.text());
});

test('one user may hold maxSessionsPerUser upload sessions: the next is refused with 429 until one ends', async () => {
  const sessions: string[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await startSession(capped, ADMIN);
    assert.equal(res.status, 202);
    sessions.push(res.headers.get('location')!);
  }
  const refused = await startSession(capped, ADMIN);
  assert.equal(refused.status, 429);
  const body = (await refused.json()) as { errors: { code: string; message: string }[] };
  assert.equal(body.errors[0]!.code, 'TOOMANYREQUESTS');
  assert.match(body.errors[0]!.message, /3 upload sessions are open/);
  const blob = Buffer.from('a whole blob');
  const monolithic = await capped.req(`/v2/team/app/blobs/uploads/?digest=${digestOf(blob)}`, { method: 'POST', body: blob, auth: ADMIN });
  assert.equal(monolithic.status, 429, 'a one-request upload is a session too');

  // Another caller has its own allowance.
  const { secret } = await capped.accounts.createToken('ci', ['repository:team/*:pull,push']);
  assert.equal((await startSession(capped, basic('ci', secret))).status, 202);

  // Ending a session (cancel, or finishing it) frees its place.
  assert.equal((await capped.req(sessions[0]!, { method: 'DELETE', auth: ADMIN })).status, 204);
  const again = await startSession(capped, ADMIN);
  assert.equal(again.status, 202);
  const loc = again.headers.get('location')!;
  const done = await capped.req(`${loc}${loc.includes('?') ? '&' : '?'}digest=${digestOf(blob)}`, { method: 'PUT', body: blob, auth: ADMIN });
  assert.equal(done.status, 201);
  assert.equal((await startSession(capped, ADMIN)).status, 202);
});
