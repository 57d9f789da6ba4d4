// No request gets a 5xx: every route of the management API (the route table of server/routes.ts) and of /v2
// (v2Api's table) is sent hostile path parameters, query parameters and bodies — numbers, huge and negative
// numbers, bad percent-encodings, wrong JSON types, huge strings, unicode, empty values — as a global admin
// over real authentication, so the requests get past the access check to the code behind it. Routes are
// read from the tables, so a route added later is fuzzed without touching this file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { openRequestAccess as openAccess } from '../../src/server/access.js';
import { uploadWriters } from '../../src/storage/upload-writer.js';
import { hubRoutes } from '../../src/server/routes.js';
import { v2Api, V2_FIXED_PATHS } from '../../src/server/v2.js';
import { ADMIN_PASSWORD, basic, pushImage, startAuthHub, type AuthHub } from '../auth/auth-harness.js';
import { REPO_ROOT } from '../support/server.js';

const ADMIN = basic('admin', ADMIN_PASSWORD);
const APP = 'fuzz/app';

interface Sent {
  method: string;
  path: string;
  body?: Buffer | string;
  contentType?: string;
}

interface Answer {
  status: number;
  body: string;
}

const CONCURRENCY = 4;
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

/** One request with the path exactly as given (fetch would resolve dot segments and re-encode). */
function send(base: URL, s: Sent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { authorization: ADMIN };
    if (s.body !== undefined) {
      headers['content-type'] = s.contentType ?? 'application/json';
      headers['content-length'] = Buffer.byteLength(s.body);
    }
    const req = request({ host: base.hostname, port: base.port, method: s.method, path: s.path, headers, agent, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 20 s')));
    req.on('error', reject);
    req.end(s.body);
  });
}

/**
 * A route pattern as a path template: named groups become {name} (a group holding groups is one parameter),
 * unnamed ones {repository} then {reference} (the /v2 routes'), escapes are unescaped, an optional trailing
 * character is kept.
 */
export function templateOf(pattern: RegExp): { template: string; params: string[] } {
  const src = pattern.source.replace(/^\^/, '').replace(/\$$/, '');
  const positional = ['repository', 'reference'];
  const params: string[] = [];
  let out = '';
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '\\') {
      out += src[++i];
    } else if (c === '(') {
      let depth = 1;
      let j = i + 1;
      for (; j < src.length && depth > 0; j++) {
        if (src[j] === '\\') j++;
        else if (src[j] === '[') while (j < src.length && src[j] !== ']') j++;
        else if (src[j] === '(') depth++;
        else if (src[j] === ')') depth--;
      }
      const group = src.slice(i, j);
      const named = /^\(\?<(\w+)>/.exec(group);
      const name = named ? named[1]! : positional[params.filter((p) => positional.includes(p)).length]!;
      params.push(name);
      out += `{${name}}`;
      i = j - 1;
    } else if (c === '?') {
      // the previous character is optional; the template keeps it
    } else out += c;
  }
  return { template: out, params };
}

/** A value each path parameter takes when another is being fuzzed: real objects the seed created. */
function baseline(param: string, digest: string): string {
  switch (param) {
    case 'app':
    case 'repo':
    case 'repository':
      return APP;
    case 'env':
    case 'environment':
      return 'staging';
    case 'slot':
      return 'staging/FUZZ_SECRET';
    case 'name':
      return 'fuzz-name';
    case 'tag':
      return '1.0.0';
    case 'ref':
    case 'reference':
      return digest;
    case 'id':
      return '1';
    default:
      return 'x';
  }
}

const PATH_VALUES = [
  '0',
  '-1',
  '1.5',
  '1e30',
  '99999999999999999999',
  '%zz',
  '%',
  '%E0%A4%A',
  '%00',
  '%2F..%2F..%2Fetc',
  '..',
  '.x',
  '-x',
  'x'.repeat(4000),
  encodeURIComponent('ünïcødé ✓'),
  '%F0%9F%92%A5',
  'null',
  '%20',
  '',
  'sha256:zz',
  'sha256:' + 'f'.repeat(64),
];

const QUERY_VALUES = [
  '',
  '0',
  '-1',
  '1.5',
  '1e30',
  '99999999999999999999',
  'abc',
  '%zz',
  '%',
  encodeURIComponent('ünïcødé ✓'),
  'x'.repeat(8000),
  'null',
  '%5B%5D',
  '2026-13-45T99:99:99Z',
  'sha256:zz',
];

const BODY_VALUES: unknown[] = [null, 0, -1, 1.5, 1e308, -1e308, '', 'x'.repeat(100_000), true, [], {}, [1, 'a', null], 'ünïcødé ✓', '%zz', '../../etc/passwd', { nested: { deep: [1] } }];

/** Raw bodies no schema gets to see: broken JSON, JSON of every top-level type, too large, too deep. */
const RAW_BODIES = ['{', '[]', 'null', '0', '"x"', '{"a":', '\u0000', '['.repeat(100_000), '{"x":' + '9'.repeat(400) + '}', 'x'.repeat(2 << 20)];

/** Values a field of that name accepts, to get past its schema to the next field (and to the handler). */
const VALID_FIELDS: Record<string, unknown> = {
  name: 'fz-env',
  environment: 'staging',
  ref: '1.0.0',
  from: 'staging',
  to: 'production',
  url: 'https://hooks.example.com/wharf',
  events: ['push'],
  file: `app: ${APP}\n`,
  repositories: 'fuzz/*',
  keepLast: 3,
  digest: '',
  kind: 'test',
  // deploy targets and managed secrets; the endpoint is a closed port, so nothing is ever deployed
  endpoint: 'tcp://127.0.0.1:9',
  apps: ['fuzz/*'],
  allow: [],
  value: 'fuzzed secret value',
};

/** Names of the query parameters routes read, from the sources: `searchParams.get('x')` and `…Query` schemas. */
async function queryNames(): Promise<string[]> {
  const names = new Set(['n', 'last', 'limit']);
  const src = join(REPO_ROOT, 'src');
  for (const file of (await readdir(src, { recursive: true })).filter((f) => f.endsWith('.ts'))) {
    const text = await readFile(join(src, file), 'utf8');
    for (const m of text.matchAll(/searchParams\.get\('(\w+)'\)/g)) names.add(m[1]!);
    for (const m of text.matchAll(/const \w+Query = z\s*\.object\(\{([\s\S]*?)\}\)/g)) for (const k of m[1]!.matchAll(/(\w+):/g)) names.add(k[1]!);
  }
  return [...names];
}

interface Failure {
  sent: string;
  status: number | string;
  body: string;
}

class Fuzzer {
  readonly failures: Failure[] = [];
  count = 0;
  passed = 0;

  constructor(private readonly base: URL) {}

  async hit(s: Sent): Promise<Answer | undefined> {
    this.count++;
    const what = `${s.method} ${s.path.slice(0, 200)}${s.body === undefined ? '' : ` body ${String(s.body).slice(0, 120)}`}`;
    try {
      const a = await send(this.base, s);
      // A streamed answer (NDJSON deploy progress) has sent its 200: an internal error shows as an UNKNOWN line.
      if (a.status >= 500 || (a.status === 200 && a.body.includes('"code":"UNKNOWN"'))) this.failures.push({ sent: what, status: a.status, body: a.body.slice(0, 300) });
      if (a.status !== 401 && a.status !== 403) this.passed++;
      return a;
    } catch (e) {
      this.failures.push({ sent: what, status: 'no answer', body: (e as Error).message });
      return undefined;
    }
  }

  private readonly inflight = new Set<Promise<unknown>>();

  /** `hit` without waiting for the answer, at most CONCURRENCY at once (the verdict is kept all the same). */
  async queue(s: Sent): Promise<void> {
    while (this.inflight.size >= CONCURRENCY) await Promise.race(this.inflight);
    const p = this.hit(s).finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  async drain(): Promise<void> {
    await Promise.all(this.inflight);
  }

  report(): string {
    return `${this.failures.length} of ${this.count} requests failed:\n` + this.failures.slice(0, 25).map((f) => `  ${f.status} ← ${f.sent}\n     ${f.body}`).join('\n');
  }
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_, k: string) => values[k]!);
}

/** Fields a route's body needs, learned from its 400s ("name: expected string …"), filled from VALID_FIELDS. */
async function discoverBody(f: Fuzzer, method: string, path: string): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = {};
  for (let i = 0; i < 8; i++) {
    const a = await f.hit({ method, path, body: JSON.stringify(body) });
    if (!a || a.status !== 400) break;
    const message = (JSON.parse(a.body) as { errors: { message: string }[] }).errors[0]?.message ?? '';
    const field = /^(\w+)[.:]/.exec(message)?.[1];
    if (!field || field in body || !(field in VALID_FIELDS)) break;
    body[field] = VALID_FIELDS[field];
  }
  return body;
}

async function seed(hub: AuthHub): Promise<string> {
  const image = await pushImage(hub, ADMIN, APP, '1.0.0');
  for (const name of ['staging', 'production']) {
    const res = await hub.req(`/api/v1/apps/${APP}/environments`, { method: 'POST', auth: ADMIN, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
    assert.equal(res.status, 201, await res.text());
  }
  const res = await hub.req(`/api/v1/apps/${APP}/releases`, { method: 'POST', auth: ADMIN, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ environment: 'staging', ref: '1.0.0' }) });
  assert.equal(res.status, 201, await res.text());
  return image.digest;
}

test('no fuzzed request to any /api/v1 or /v2 route is answered with a 5xx', { timeout: 600_000 }, async (t) => {
  const hub = await startAuthHub();
  t.after(async () => {
    agent.destroy();
    await hub.close();
    // The fuzz opens thousands of upload sessions it never finishes; their hashing worker is the process's.
    await uploadWriters().close();
  });
  const digest = await seed(hub);
  const f = new Fuzzer(new URL(hub.url));
  const queries = await queryNames();

  const apiRoutes = hubRoutes(hub.wharf, openAccess).map((r) => ({ pattern: r.pattern, methods: [r.method] }));
  const v2Routes = v2Api({ registry: hub.wharf.registry, access: openAccess, log: pino({ level: 'silent' }) }).routes;
  // FUZZ_ROUTES=regexp narrows the run to matching route patterns, to chase one finding.
  const only = process.env.FUZZ_ROUTES === undefined ? undefined : new RegExp(process.env.FUZZ_ROUTES);
  const table = [...apiRoutes, ...v2Routes].filter((r) => !only || only.test(r.pattern.source));
  assert.ok(apiRoutes.length >= 20 && v2Routes.length >= 5, 'the route tables were read');
  assert.ok(table.length > 0, 'FUZZ_ROUTES matches some route');

  for (const route of table) {
    const { template, params } = templateOf(route.pattern);
    const base = Object.fromEntries(params.map((p) => [p, baseline(p, digest)]));
    const basePath = fill(template, base);
    assert.match(basePath.split('?')[0]!, route.pattern, `the template ${template} of ${route.pattern} makes paths the route matches`);
    for (const method of route.methods) {
      const withBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
      const body = withBody ? '{}' : undefined;
      // Path parameters, one at a time.
      for (const p of params) for (const v of PATH_VALUES) await f.queue({ method, path: fill(template, { ...base, [p]: v }), body });
      // Query parameters, one at a time, then each repeated.
      for (const q of queries) {
        for (const v of QUERY_VALUES) await f.queue({ method, path: `${basePath}?${q}=${v}`, body });
        await f.queue({ method, path: `${basePath}?${q}=1&${q}=2`, body });
      }
      if (!withBody) continue;
      // Bodies: raw garbage, then each field of a body the route accepts set to each hostile value.
      for (const raw of RAW_BODIES) await f.queue({ method, path: basePath, body: raw });
      if (basePath.startsWith('/v2/')) continue;
      await f.drain();
      const good = await discoverBody(f, method, basePath);
      for (const field of new Set([...Object.keys(good), ...Object.keys(VALID_FIELDS)])) {
        for (const v of BODY_VALUES) await f.queue({ method, path: basePath, body: JSON.stringify({ ...good, [field]: v }) });
      }
      await f.queue({ method, path: basePath, body: JSON.stringify({ ...good, ['x'.repeat(10_000)]: 1 }) });
      await f.drain();
    }
  }

  // The /v2 routes' bodies: manifests whose every field has the wrong type, under every manifest media type.
  const manifestPath = `/v2/${APP}/manifests/fuzzed`;
  const manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: 1 }, layers: [] as unknown[] };
  for (const type of ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json', 'text/plain', '']) {
    for (const field of ['schemaVersion', 'mediaType', 'config', 'layers', 'manifests', 'subject', 'annotations', 'artifactType']) {
      for (const v of BODY_VALUES) await f.queue({ method: 'PUT', path: manifestPath, body: JSON.stringify({ ...manifest, [field]: v }), contentType: type });
    }
    for (const v of BODY_VALUES) {
      await f.queue({ method: 'PUT', path: manifestPath, body: JSON.stringify({ ...manifest, config: { ...manifest.config, size: v } }), contentType: type });
      await f.queue({ method: 'PUT', path: manifestPath, body: JSON.stringify({ ...manifest, layers: [{ ...manifest.config, digest: v }] }), contentType: type });
    }
  }
  for (const path of V2_FIXED_PATHS) for (const q of queries) for (const v of QUERY_VALUES) await f.queue({ method: 'GET', path: `${path}?${q}=${v}` });
  await f.drain();

  t.diagnostic(`${f.count} requests, ${f.passed} past the access check`);
  assert.equal(f.failures.length, 0, f.report());
  assert.ok(f.passed > f.count * 0.9, `the fuzz ran as admin: ${f.passed} of ${f.count} got past the access check`);
});
