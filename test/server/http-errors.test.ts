// The one mapping from error codes to HTTP: every code of the catalogue has a status and a wire code, the statuses
// clients and tests rely on hold, and a failure that is not a RegistryError is a 500 that tells nothing of its cause.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ERRORS, RegistryError, type ErrorCode } from '../../src/oci/errors.js';
import { streamDeployment } from '../../src/server/api/deploy.js';
import { HTTP_ERRORS, httpErrorOf, sendError } from '../../src/server/http-errors.js';

const codes = Object.keys(ERRORS) as ErrorCode[];

test('every code of the catalogue maps to a 4xx or 5xx status and an upper-case wire code', () => {
  assert.ok(codes.length >= 20, 'the catalogue is read, not an empty list');
  assert.deepEqual(Object.keys(HTTP_ERRORS).sort(), [...codes].sort(), 'the mapping names exactly the codes of the catalogue');
  for (const code of codes) {
    const answer = httpErrorOf(new RegistryError(code));
    assert.ok(Number.isInteger(answer.status) && answer.status >= 400 && answer.status <= 599, `${code}: status ${answer.status}`);
    assert.match(answer.error.code, /^[A-Z][A-Z_]*$/, code);
    assert.equal(answer.error.message, ERRORS[code], `${code} without a message says its default one`);
    assert.equal(answer.error.detail, null);
    assert.equal(answer.known?.code, code);
  }
});

test('the statuses and wire codes clients see', () => {
  const expected: [ErrorCode, number, string][] = [
    ['BLOB_UNKNOWN', 404, 'BLOB_UNKNOWN'],
    ['BLOB_UPLOAD_UNKNOWN', 404, 'BLOB_UPLOAD_UNKNOWN'],
    ['DIGEST_INVALID', 400, 'DIGEST_INVALID'],
    ['MANIFEST_BLOB_UNKNOWN', 400, 'MANIFEST_BLOB_UNKNOWN'],
    ['MANIFEST_UNKNOWN', 404, 'MANIFEST_UNKNOWN'],
    ['NAME_INVALID', 400, 'NAME_INVALID'],
    ['NAME_UNKNOWN', 404, 'NAME_UNKNOWN'],
    ['TAG_INVALID', 400, 'TAG_INVALID'],
    ['PAGINATION_NUMBER_INVALID', 400, 'PAGINATION_NUMBER_INVALID'],
    ['UNSUPPORTED', 405, 'UNSUPPORTED'],
    ['UNAUTHORIZED', 401, 'UNAUTHORIZED'],
    ['DENIED', 403, 'DENIED'],
    ['TOOMANYREQUESTS', 429, 'TOOMANYREQUESTS'],
    ['UNAVAILABLE', 503, 'UNAVAILABLE'],
    // Wharf's refinements travel as the spec code clients know, with their own status.
    ['RANGE_INVALID', 416, 'BLOB_UPLOAD_INVALID'],
    ['MANIFEST_TOO_LARGE', 413, 'SIZE_INVALID'],
    ['BODY_STALLED', 408, 'BLOB_UPLOAD_INVALID'],
    ['STORAGE_FULL', 507, 'UNKNOWN'],
    // The general codes of the other domains.
    ['INVALID', 400, 'INVALID'],
    ['NOT_FOUND', 404, 'NOT_FOUND'],
    ['CONFLICT', 409, 'CONFLICT'],
  ];
  for (const [code, status, wire] of expected) {
    const answer = httpErrorOf(new RegistryError(code, `a ${code}`, { why: code }));
    assert.deepEqual([answer.status, answer.error], [status, { code: wire, message: `a ${code}`, detail: { why: code } }], code);
  }
});

test('an error that is not a RegistryError is a 500 UNKNOWN that leaks nothing of its cause', () => {
  const secret = 'connect ECONNREFUSED /var/lib/wharf/secret.sock password=hunter2';
  for (const failure of [new Error(secret), new TypeError(secret), Object.assign(new Error(secret), { code: 'ECONNRESET' }), secret, undefined]) {
    const answer = httpErrorOf(failure);
    assert.equal(answer.status, 500);
    assert.deepEqual(answer.error, { code: 'UNKNOWN', message: 'internal server error', detail: null });
    assert.deepEqual(answer.headers, {});
    assert.equal(answer.known, undefined);
    assert.doesNotMatch(JSON.stringify(answer), /hunter2|secret|ECONN/);
  }
});

test('a full disk anywhere below is a 507 the client can act on, wrapped or not', () => {
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  for (const failure of [enospc, new Error('commit failed', { cause: enospc }), Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }), Object.assign(new Error('could not extend file: No space left on device'), { code: '53100' })]) {
    const answer = httpErrorOf(failure);
    assert.equal(answer.status, 507);
    assert.equal(answer.error.code, 'UNKNOWN');
    assert.equal(answer.error.message, ERRORS.STORAGE_FULL);
  }
});

test('a retry time becomes Retry-After, a challenge stays WWW-Authenticate', () => {
  const busy = new RegistryError('UNAVAILABLE', 'the object store is overloaded');
  busy.retryAfterSeconds = 5;
  assert.deepEqual(httpErrorOf(busy).headers, { 'Retry-After': '5' });
  const challenge = new RegistryError('UNAUTHORIZED');
  challenge.headers = { 'WWW-Authenticate': 'Bearer realm="http://127.0.0.1/token"' };
  assert.deepEqual(httpErrorOf(challenge).headers, challenge.headers);
  assert.deepEqual(httpErrorOf(new RegistryError('NOT_FOUND')).headers, {});
});

/** sendError over a real loopback server: what a client receives, and what the log receives. */
async function served(failure: unknown, method = 'GET'): Promise<{ status: number; headers: IncomingHttpHeaders; body: string; log: string }> {
  let log = '';
  const logger = pino(new Writable({ write: (chunk, _enc, done) => ((log += String(chunk)), done()) }));
  const server = createServer((_req, res) => sendError(res, failure, logger));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path: '/' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, log }));
      });
      req.on('error', reject);
      req.end();
    });
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

test('sendError writes the OCI error body; an internal failure goes to the log, not to the client', async () => {
  const invalid = await served(new RegistryError('INVALID', 'name: expected a string'));
  assert.equal(invalid.status, 400);
  assert.equal(invalid.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal(invalid.headers['docker-distribution-api-version'], 'registry/2.0');
  assert.deepEqual(JSON.parse(invalid.body), { errors: [{ code: 'INVALID', message: 'name: expected a string', detail: null }] });
  assert.equal(invalid.log, '', "a client's mistake is not the operator's");

  const internal = await served(new Error('SQLITE_CORRUPT: database disk image is malformed at /var/lib/wharf/wharf.db'));
  assert.equal(internal.status, 500);
  assert.deepEqual(JSON.parse(internal.body), { errors: [{ code: 'UNKNOWN', message: 'internal server error', detail: null }] });
  assert.doesNotMatch(internal.body, /SQLITE|wharf\.db/);
  assert.match(internal.log, /SQLITE_CORRUPT/, 'the operator reads the cause in the log');

  const head = await served(new RegistryError('MANIFEST_UNKNOWN'), 'HEAD');
  assert.equal(head.status, 404);
  assert.equal(head.body, '');
});

test('a streamed deployment tells its failure in the words of the mapping, and an internal one only to the log', async () => {
  let log = '';
  const logger = pino(new Writable({ write: (chunk, _enc, done) => ((log += String(chunk)), done()) }));
  const failures: unknown[] = [new RegistryError('CONFLICT', 'deployment #4 of this environment is still running'), new Error('SQLITE_BUSY at /var/lib/wharf/wharf.db')];
  const server = createServer((_req, res) => void streamDeployment(res, logger, async () => Promise.reject(failures.shift())));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const conflict = await fetch(url);
    assert.equal(conflict.status, 200, 'the stream had begun');
    assert.deepEqual(JSON.parse(await conflict.text()), { error: { code: 'CONFLICT', message: 'deployment #4 of this environment is still running' } });
    assert.equal(log, '');
    const internal = await fetch(url);
    const text = await internal.text();
    assert.deepEqual(JSON.parse(text), { error: { code: 'UNKNOWN', message: 'internal server error' } });
    assert.doesNotMatch(text, /SQLITE|wharf\.db/);
    assert.match(log, /SQLITE_BUSY/);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
