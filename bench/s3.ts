// The S3 figures: Wharf and Distribution (Debian's docker-registry, s3-aws driver) over the same Ceph RGW, side by side:
// push monolithic and chunked, pull through the registry and redirected to the RGW, and peak RSS during a 1 GiB push.
//
//   npm run bench -- --s3 [--blobs N] [--size MiB] [--concurrency N] [--big MiB] [--runs N] [--wharf-node-args "ARGS"]
//   npm run bench -- --s3 --count [--size MiB]: S3 requests per push and pull instead (a counting proxy before the RGW)
//   --rgw-dir DIR (the DIR of scripts/ceph-rgw.sh start): also the CPU the RGW and its OSD spend per MiB of each figure
//   (their PIDs from DIR/pids), as CPU per byte is what a shared machine's load disturbs least
// Needs WHARF_TEST_S3_ENDPOINT, _ACCESS_KEY, _SECRET_KEY (eval "$(scripts/ceph-rgw.sh start DIR)").
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, PutObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { createBucket, s3Server, type S3Server, type TestBucket } from '../test/support/s3.js';
import { cpuSeconds } from './procstat.js';

const MiB = 1 << 20;
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const BLOBS = arg('blobs', 8);
const SIZE = arg('size', 32) * MiB;
const CONCURRENCY = arg('concurrency', 4);
const BIG = arg('big', 1024) * MiB;
const CHUNK = 8 * MiB;

interface Running {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
  };
}

async function waitUp(url: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const ok = await fetch(`${url}/v2/`).then((r) => r.status === 200, () => false);
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`${url} did not come up`);
}

const rgwDir = (() => {
  const i = process.argv.indexOf('--rgw-dir');
  return i >= 0 ? process.argv[i + 1]! : undefined;
})();
/** The RGW's and its OSD's PIDs (scripts/ceph-rgw.sh records them), for their CPU time; none without --rgw-dir. */
function storePids(): number[] {
  if (!rgwDir) return [];
  return ['rgw', 'osd'].map((n) => Number(readFileSync(join(rgwDir, 'pids', n), 'utf8').trim()));
}

const wharfNodeArgs = (() => {
  const i = process.argv.indexOf('--wharf-node-args');
  return i >= 0 ? process.argv[i + 1]!.split(' ').filter(Boolean) : [];
})();

async function startWharf(dir: string, bucket: TestBucket, redirect: boolean): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, [...wharfNodeArgs, 'bin/wharf.js', 'serve', '--listen', `127.0.0.1:${port}`, '--data', join(dir, 'data')], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...bucket.env, WHARF_AUTH: 'off', WHARF_S3_REDIRECT: String(redirect), WHARF_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUp(url);
  return { url, pid: child.pid!, stop: stopper(child) };
}

async function startDistribution(dir: string, s3: S3Server, bucket: TestBucket, redirect: boolean): Promise<Running> {
  const port = await freePort();
  const config = join(dir, `distribution-${port}.yml`);
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  cache:',
      '    blobdescriptor: inmemory',
      '  s3:',
      `    region: ${s3.region}`,
      `    regionendpoint: ${s3.endpoint}`,
      `    bucket: ${bucket.name}`,
      `    accesskey: ${s3.accessKey}`,
      `    secretkey: ${s3.secretKey}`,
      '    secure: false',
      '    v4auth: true',
      `    chunksize: ${CHUNK}`,
      '  redirect:',
      `    disable: ${!redirect}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      '',
    ].join('\n'),
  );
  // AWS_CA_BUNDLE (set on some machines for https) makes the s3-aws driver panic over a plain-http endpoint.
  const { AWS_CA_BUNDLE: _bundle, ...env } = process.env;
  const child = spawn('/usr/bin/docker-registry', ['serve', config], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  await waitUp(url);
  return { url, pid: child.pid!, stop: stopper(child) };
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function inParallel<T>(items: T[], n: number, run: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await run(items[next++]!);
  }));
}

function absolute(base: string, location: string): string {
  return new URL(location, base).toString();
}

async function pushMonolithic(url: string, repo: string, blob: Buffer): Promise<void> {
  // POST then PUT with the body: the monolithic upload docker and most clients do (Distribution has no POST ?digest=).
  const post = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await post.arrayBuffer();
  const loc = absolute(url, post.headers.get('location')!);
  const put = await fetch(`${loc}${loc.includes('?') ? '&' : '?'}digest=${sha(blob)}`, { method: "PUT", body: blob as unknown as BodyInit, headers: { 'content-type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`push ${repo}: ${put.status} ${await put.text()}`);
}

async function pushChunked(url: string, repo: string, blob: Buffer): Promise<void> {
  const post = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await post.arrayBuffer();
  let loc = absolute(url, post.headers.get('location')!);
  for (let o = 0; o < blob.length; o += CHUNK) {
    const chunk = blob.subarray(o, o + CHUNK);
    const res = await fetch(loc, { method: "PATCH", body: chunk as unknown as BodyInit, headers: { 'content-type': 'application/octet-stream', 'content-range': `${o}-${o + chunk.length - 1}` } });
    if (res.status !== 202) throw new Error(`patch ${repo}: ${res.status} ${await res.text()}`);
    loc = absolute(url, res.headers.get('location')!);
  }
  const put = await fetch(`${loc}${loc.includes('?') ? '&' : '?'}digest=${sha(blob)}`, { method: 'PUT' });
  if (put.status !== 201) throw new Error(`put ${repo}: ${put.status} ${await put.text()}`);
}

async function pullAll(url: string, repo: string, blobs: Buffer[]): Promise<void> {
  await inParallel(blobs, CONCURRENCY, async (b) => {
    const res = await fetch(`${url}/v2/${repo}/blobs/${sha(b)}`);
    const got = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200 || got.length !== b.length) throw new Error(`pull ${repo}: ${res.status}, ${got.length} bytes`);
  });
}

/** The RGW alone, for the ceiling: one PutObject of the blob, as a registry's monolithic push would at best. */
async function directPut(b: TestBucket, key: string, blob: Buffer): Promise<void> {
  await b.client.send(new PutObjectCommand({ Bucket: b.name, Key: key, Body: blob, ContentLength: blob.length }));
}

/** The RGW alone: a multipart upload of the blob in CHUNK parts, one after the other (as PATCHes arrive). */
async function directMultipart(b: TestBucket, key: string, blob: Buffer): Promise<void> {
  const { UploadId } = await b.client.send(new CreateMultipartUploadCommand({ Bucket: b.name, Key: key }));
  const parts: { PartNumber: number; ETag: string }[] = [];
  for (let o = 0, n = 1; o < blob.length; o += CHUNK, n++) {
    const body = blob.subarray(o, o + CHUNK);
    const res = await b.client.send(new UploadPartCommand({ Bucket: b.name, Key: key, UploadId, PartNumber: n, Body: body, ContentLength: body.length }));
    parts.push({ PartNumber: n, ETag: res.ETag ?? '' });
  }
  await b.client.send(new CompleteMultipartUploadCommand({ Bucket: b.name, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
}

/** The RGW alone: one GetObject, read to the end. */
async function directGet(b: TestBucket, key: string, size: number): Promise<void> {
  const res = await b.client.send(new GetObjectCommand({ Bucket: b.name, Key: key }));
  let got = 0;
  for await (const chunk of res.Body as AsyncIterable<Uint8Array>) got += chunk.length;
  if (got !== size) throw new Error(`direct get ${key}: ${got} bytes`);
}

async function timed(run: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await run();
  return (performance.now() - t0) / 1000;
}

function vmHwm(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** A 1 GiB body streamed from a repeated 4 MiB pattern with a unique head, and its digest. */
function bigBody(size: number): { digest: string; stream: () => ReadableStream<Uint8Array> } {
  const pattern = randomBytes(4 * MiB);
  const head = randomBytes(64);
  const hash = createHash('sha256').update(head);
  for (let o = 0; o < size - head.length; o += pattern.length) hash.update(pattern.subarray(0, Math.min(pattern.length, size - head.length - o)));
  return {
    digest: `sha256:${hash.digest('hex')}`,
    stream: () => {
      let sent = -1;
      return new ReadableStream({
        pull(c) {
          if (sent < 0) {
            c.enqueue(head);
            sent = head.length;
            return;
          }
          if (sent >= size) return c.close();
          const n = Math.min(pattern.length, size - sent);
          c.enqueue(pattern.subarray(0, n));
          sent += n;
        },
      });
    },
  };
}

async function bigPush(url: string, repo: string, body: ReturnType<typeof bigBody>): Promise<number> {
  return timed(async () => {
    const post = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
    await post.arrayBuffer();
    const loc = absolute(url, post.headers.get('location')!);
    const put = await fetch(`${loc}${loc.includes('?') ? '&' : '?'}digest=${body.digest}`, {
      method: 'PUT',
      body: body.stream(),
      duplex: 'half',
      headers: { 'content-type': 'application/octet-stream' },
    } as RequestInit);
    if (put.status !== 201) throw new Error(`big push: ${put.status} ${await put.text()}`);
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** The S3 operation of a request, by method and query (path-style: /bucket/key). */
function operation(method: string, url: URL): string {
  const q = url.searchParams;
  const onKey = url.pathname.split('/').filter(Boolean).length > 1;
  if (q.has('uploadId')) {
    if (method === 'PUT') return 'UploadPart';
    if (method === 'POST') return 'CompleteMultipartUpload';
    if (method === 'DELETE') return 'AbortMultipartUpload';
    return 'ListParts';
  }
  if (q.has('uploads')) return method === 'POST' ? 'CreateMultipartUpload' : 'ListMultipartUploads';
  if (!onKey) return method === 'GET' ? 'ListObjects' : `${method} bucket`;
  if (method === 'PUT') return url.searchParams.has('x-id') && url.searchParams.get('x-id') === 'CopyObject' ? 'CopyObject' : 'PutObject';
  return { GET: 'GetObject', HEAD: 'HeadObject', DELETE: 'DeleteObject', POST: 'PostObject' }[method] ?? method;
}

/** An HTTP relay to the RGW that counts the S3 operations passing through it. */
async function countingProxy(target: string): Promise<{ endpoint: string; counts: Map<string, number>; close(): Promise<void> }> {
  const counts = new Map<string, number>();
  const to = new URL(target);
  const srv = createHttpServer((req, res) => {
    let op = operation(req.method!, new URL(req.url!, target));
    // Distribution copies with a PUT carrying x-amz-copy-source.
    if (op === 'PutObject' && req.headers['x-amz-copy-source']) op = 'CopyObject';
    if (op === 'UploadPart' && req.headers['x-amz-copy-source']) op = 'UploadPartCopy';
    counts.set(op, (counts.get(op) ?? 0) + 1);
    const up = httpRequest({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  srv.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(srv.address() as { port: number }).port}`,
    counts,
    close: () => new Promise((resolve) => { srv.closeAllConnections(); srv.close(() => resolve()); }),
  };
}

/** S3 requests per push (monolithic, chunked) and per pull, for each registry, through a counting proxy. */
async function countRequests(): Promise<void> {
  const s3 = s3Server();
  if (typeof s3 === 'string') throw new Error(s3);
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-s3-count-'));
  const table: string[] = [`S3 requests per operation, one blob of ${SIZE / MiB} MiB (chunks ${CHUNK / MiB} MiB), RGW at ${s3.endpoint}`, ''];
  try {
    for (const n of ['wharf', 'distribution'] as const) {
      const proxy = await countingProxy(s3.endpoint);
      const viaProxy = { ...s3, endpoint: proxy.endpoint };
      const bucket = await createBucket(s3);
      const b = { ...bucket, env: { ...bucket.env, WHARF_S3_ENDPOINT: proxy.endpoint } };
      const srv = n === 'wharf' ? await startWharf(mkdtempSync(join(dir, 'w-')), b, false) : await startDistribution(mkdtempSync(join(dir, 'd-')), viaProxy, bucket, false);
      try {
        // Past the start's own requests (Wharf's first sweep of expired uploads lists the bucket).
        await sleep(3_000);
        const step = async (label: string, run: () => Promise<void>) => {
          proxy.counts.clear();
          await run();
          const ops = [...proxy.counts].sort((x, y) => y[1] - x[1]);
          table.push(`- ${n}, ${label}: ${ops.reduce((t, [, c]) => t + c, 0)} requests (${ops.map(([o, c]) => `${o} ${c}`).join(', ')})`);
        };
        const mono = randomBytes(SIZE);
        await step('push monolithic', () => pushMonolithic(srv.url, 'count/mono', mono));
        await step('push chunked', () => pushChunked(srv.url, 'count/chunked', randomBytes(SIZE)));
        await step('pull', () => pullAll(srv.url, 'count/mono', [mono]));
      } finally {
        await srv.stop();
        await proxy.close();
        await bucket.remove().catch(() => undefined);
      }
    }
    console.log(table.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const RUNS = arg('runs', 3);

/**
 * Both registries run side by side and every figure alternates between them, run by run (the order swapped each
 * run), so a burst of load from elsewhere on this shared machine hits both rather than one; medians are reported.
 */
async function main(): Promise<void> {
  const s3 = s3Server();
  if (typeof s3 === 'string') throw new Error(s3);
  const dir = mkdtempSync(join(tmpdir(), 'wharf-bench-s3-'));
  const buckets: TestBucket[] = [];
  const names = ['wharf', 'distribution'] as const;
  type Name = (typeof names)[number] | 'rgw';
  const samples: Record<Name, Record<string, number[]>> = { wharf: {}, distribution: {}, rgw: {} };
  const add = (n: Name, k: string, v: number) => (samples[n][k] ??= []).push(v);
  const mb = (BLOBS * SIZE) / MiB;
  const store = storePids();
  /** One figure of one registry: MiB/s, and the CPU ms per MiB of the registry and of the RGW + OSD. */
  const measure = async (n: Name, k: string, pid: number | null, run: () => Promise<void>) => {
    const cpu0 = pid === null ? 0 : cpuSeconds(pid);
    const store0 = store.length ? cpuSeconds(store) : 0;
    add(n, k, mb / (await timed(run)));
    if (pid !== null) add(n, `${k}:cpu`, ((cpuSeconds(pid) - cpu0) * 1000) / mb);
    if (store.length) add(n, `${k}:store`, ((cpuSeconds(store) - store0) * 1000) / mb);
  };
  try {
    const bucketOf = {} as Record<Name, TestBucket>;
    const dirOf = {} as Record<Name, string>;
    for (const n of [...names, 'rgw'] as const) {
      bucketOf[n] = await createBucket(s3);
      buckets.push(bucketOf[n]);
      dirOf[n] = mkdtempSync(join(dir, `${n}-`));
    }
    const start = (n: Name, redirect: boolean) => (n === 'wharf' ? startWharf(dirOf[n], bucketOf[n], redirect) : startDistribution(dirOf[n], s3, bucketOf[n], redirect));
    // The RGW alone (the SDK from this process, no registry) takes its turn in the same rotation: the ceiling.
    const order = (run: number): Name[] => (run % 2 === 0 ? ['distribution', 'rgw', 'wharf'] : ['wharf', 'rgw', 'distribution']);
    const direct = bucketOf.rgw;
    const each = (xs: Buffer[], run: (b: Buffer, i: number) => Promise<void>) => inParallel(xs.map((b, i) => [b, i] as const), CONCURRENCY, ([b, i]) => run(b, i));
    for (let run = 0; run < RUNS; run++) {
      const blobs = Array.from({ length: BLOBS }, () => randomBytes(SIZE));
      const chunkedBlobs = Array.from({ length: BLOBS }, () => randomBytes(SIZE));
      const through = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await start(n, false)] as const))) as Record<(typeof names)[number], Running>;
      for (const n of order(run)) {
        if (n === 'rgw') await measure(n, 'pushMono', null, () => each(blobs, (b, i) => directPut(direct, `r${run}mono${i}`, b)));
        else await measure(n, 'pushMono', through[n].pid, () => each(blobs, (b, i) => pushMonolithic(through[n].url, `bench/r${run}mono${i}`, b)));
      }
      for (const n of order(run)) {
        if (n === 'rgw') await measure(n, 'pushChunked', null, () => each(chunkedBlobs, (b, i) => directMultipart(direct, `r${run}chunk${i}`, b)));
        else await measure(n, 'pushChunked', through[n].pid, () => each(chunkedBlobs, (b, i) => pushChunked(through[n].url, `bench/r${run}chunk${i}`, b)));
      }
      for (const n of order(run)) {
        if (n === 'rgw') await measure(n, 'pullThrough', null, () => each(blobs, (b, i) => directGet(direct, `r${run}mono${i}`, b.length)));
        else await measure(n, 'pullThrough', through[n].pid, () => each(blobs, (b, i) => pullAll(through[n].url, `bench/r${run}mono${i}`, [b])));
      }
      // The same blobs again: Wharf hashes a blob's first whole GET after a push (integrity.hashOnServe:
      // unverified), not the next ones, so this second pass shows what that check costs the first.
      for (const n of order(run)) {
        if (n === 'rgw') continue;
        await measure(n, 'pullThroughAgain', through[n].pid, () => each(blobs, (b, i) => pullAll(through[n].url, `bench/r${run}mono${i}`, [b])));
      }
      for (const n of names) await through[n].stop();
      const redirected = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await start(n, true)] as const))) as Record<(typeof names)[number], Running>;
      for (const n of order(run)) {
        if (n === 'rgw') continue;
        await measure(n, 'pullRedirect', redirected[n].pid, () => each(blobs, (b, i) => pullAll(redirected[n].url, `bench/r${run}mono${i}`, [b])));
      }
      for (const n of names) await redirected[n].stop();
      console.error(`run ${run + 1}/${RUNS} (load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}): ${JSON.stringify(samples)}`);
    }
    // Peak RSS during one big push each, on fresh processes, one after the other (--big 0: none).
    for (const n of BIG > 0 ? names : []) {
      const srv = await start(n, false);
      add(n, 'bigPush', BIG / MiB / (await bigPush(srv.url, 'bench/big', bigBody(BIG))));
      add(n, 'bigPeakRss', vmHwm(srv.pid));
      await srv.stop();
    }
    console.error(JSON.stringify(samples));
    const med = (n: Name, k: string) => (samples[n][k] ? median(samples[n][k]) : NaN);
    const f = (x: number, digits = 0) => (Number.isNaN(x) ? '–' : x.toFixed(digits));
    const rows: string[] = [];
    const row = (label: string, k: string, unit: string, ratio = true) => {
      const [w, d, r] = [med('wharf', k), med('distribution', k), med('rgw', k)];
      const cpu = `${f(med('wharf', `${k}:cpu`), 1)} / ${f(med('distribution', `${k}:cpu`), 1)}`;
      const st = `${f(med('wharf', `${k}:store`), 1)} / ${f(med('distribution', `${k}:store`), 1)} / ${f(med('rgw', `${k}:store`), 1)}`;
      rows.push(`| ${label} | ${f(w)} ${unit} | ${f(d)} ${unit} | ${ratio ? `${(w / d).toFixed(2)}×` : ''} | ${Number.isNaN(r) ? '' : `${f(r)} ${unit}`} | ${ratio ? cpu : ''} | ${ratio && store.length ? st : ''} |`);
    };
    rows.push(`S3 figures, medians of ${RUNS} alternating runs: ${BLOBS} blobs of ${SIZE / MiB} MiB, ${CONCURRENCY} at a time, chunks ${CHUNK / MiB} MiB; one push of ${BIG / MiB} MiB each; RGW at ${s3.endpoint}; load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
    rows.push(
      '',
      '| figure | Wharf | Distribution | Wharf / Distribution | RGW alone (SDK, no registry) | registry CPU ms/MiB (W / D) | RGW+OSD CPU ms/MiB (W / D / alone) |',
      '|---|---|---|---|---|---|---|',
    );
    row('push, monolithic (POST + PUT)', 'pushMono', 'MiB/s');
    row('push, chunked (PATCH 8 MiB)', 'pushChunked', 'MiB/s');
    row('pull through the registry', 'pullThrough', 'MiB/s');
    row('pull through again (verified already)', 'pullThroughAgain', 'MiB/s');
    row('pull, redirect to the RGW', 'pullRedirect', 'MiB/s');
    if (BIG > 0) {
      row(`push of ${BIG / MiB} MiB`, 'bigPush', 'MiB/s');
      row(`peak RSS of that push's process`, 'bigPeakRss', 'MiB', false);
    }
    console.log(rows.join('\n'));
  } finally {
    for (const b of buckets) await b.remove().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv.includes('--count')) await countRequests();
else await main();
