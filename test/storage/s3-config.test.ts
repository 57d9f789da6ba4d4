// storage.s3 in the config file and WHARF_S3_* in the environment: defaults, precedence, and bad values named.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.js';

async function withFile<T>(yaml: string, fn: (file: string) => T): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'wharf-s3-config-'));
  try {
    const file = join(dir, 'wharf.yaml');
    await writeFile(file, yaml);
    return fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('without storage.s3 blobs stay on the filesystem', () => {
  assert.equal(loadConfig({ env: {} }).storage.s3, undefined);
});

test('storage.s3 from the file, with defaults for what it leaves out', async () => {
  const c = await withFile('storage:\n  s3: { endpoint: "http://127.0.0.1:7480", bucket: wharf, accessKey: a, secretKey: b, forcePathStyle: true }\n', (file) =>
    loadConfig({ env: { WHARF_CONFIG: file } }),
  );
  assert.deepEqual(c.storage.s3, {
    endpoint: 'http://127.0.0.1:7480',
    region: 'us-east-1',
    bucket: 'wharf',
    prefix: '',
    accessKey: 'a',
    secretKey: 'b',
    forcePathStyle: true,
    redirect: false,
    redirectTtl: 300_000,
    partSize: 8 << 20,
    requestTimeout: 30_000,
  });
});

test('WHARF_S3_* set and override the file', async () => {
  const c = await withFile('storage:\n  s3: { bucket: from-file, region: eu-west-1 }\n', (file) =>
    loadConfig({
      env: {
        WHARF_CONFIG: file,
        WHARF_S3_BUCKET: 'from-env',
        WHARF_S3_PREFIX: 'reg/',
        WHARF_S3_REDIRECT: 'on',
        WHARF_S3_FORCE_PATH_STYLE: 'true',
        WHARF_S3_PART_SIZE: String(16 << 20),
      },
    }),
  );
  assert.equal(c.storage.s3?.bucket, 'from-env');
  assert.equal(c.storage.s3?.region, 'eu-west-1');
  assert.equal(c.storage.s3?.prefix, 'reg/');
  assert.equal(c.storage.s3?.redirect, true);
  assert.equal(c.storage.s3?.forcePathStyle, true);
  assert.equal(c.storage.s3?.partSize, 16 << 20);
});

test('bad storage.s3 values are refused with the key named', () => {
  const bad: [Record<string, string>, RegExp][] = [
    [{ WHARF_S3_ENDPOINT: 'http://x:1' }, /storage\.s3\.bucket/],
    [{ WHARF_S3_BUCKET: 'Bad_Bucket' }, /storage\.s3\.bucket: expected an S3 bucket name/],
    [{ WHARF_S3_BUCKET: 'ok-bucket', WHARF_S3_PREFIX: '../x' }, /storage\.s3\.prefix/],
    [{ WHARF_S3_BUCKET: 'ok-bucket', WHARF_S3_PART_SIZE: '1048576' }, /storage\.s3\.partSize/],
    [{ WHARF_S3_BUCKET: 'ok-bucket', WHARF_S3_ACCESS_KEY: 'only-one' }, /accessKey and secretKey/],
    [{ WHARF_S3_BUCKET: 'ok-bucket', WHARF_S3_ENDPOINT: 'not a url' }, /storage\.s3\.endpoint/],
  ];
  for (const [env, message] of bad) assert.throws(() => loadConfig({ env }), message, JSON.stringify(env));
});
