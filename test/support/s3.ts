// The real S3 server (Ceph RGW) the storage-facing tests also run against, and a fresh bucket per test file.
//
// .ci/run starts one RGW (scripts/ceph-rgw.sh) and exports WHARF_TEST_S3_ENDPOINT, _ACCESS_KEY, _SECRET_KEY and
// _REGION. Under CI=true a missing RGW fails the tests that need it; elsewhere they are skipped, with the reason.
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';

export interface S3Server {
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
}

/** The RGW of this test run, or the reason there is none (a string: pass it to `skip`). */
export function s3Server(): S3Server | string {
  const env = process.env;
  if (env.WHARF_TEST_S3_ENDPOINT && env.WHARF_TEST_S3_ACCESS_KEY && env.WHARF_TEST_S3_SECRET_KEY) {
    return { endpoint: env.WHARF_TEST_S3_ENDPOINT, accessKey: env.WHARF_TEST_S3_ACCESS_KEY, secretKey: env.WHARF_TEST_S3_SECRET_KEY, region: env.WHARF_TEST_S3_REGION ?? 'us-east-1' };
  }
  const reason = 'no S3 server: set WHARF_TEST_S3_ENDPOINT, _ACCESS_KEY, _SECRET_KEY (eval "$(scripts/ceph-rgw.sh start DIR)")';
  if (env.CI === 'true') throw new Error(`CI=true but ${reason}`);
  return reason;
}

export function s3Client(server: S3Server): S3Client {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    endpoint: server.endpoint,
    region: server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKey, secretAccessKey: server.secretKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export interface TestBucket {
  name: string;
  client: S3Client;
  /** WHARF_S3_* for a Wharf over this bucket */
  env: Record<string, string>;
  /** every key in the bucket */
  keys(prefix?: string): Promise<{ key: string; size: number }[]>;
  /** unfinished multipart uploads */
  multipartUploads(): Promise<{ key: string; uploadId: string }[]>;
  /** empties and deletes the bucket */
  remove(): Promise<void>;
}

export async function createBucket(server: S3Server, extraEnv: Record<string, string> = {}): Promise<TestBucket> {
  const client = s3Client(server);
  const name = `wharf-test-${randomBytes(6).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: name }));
  const keys = async (prefix?: string) => {
    const out: { key: string; size: number }[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: name, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) out.push({ key: o.Key!, size: Number(o.Size) });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  };
  const multipartUploads = async () => {
    const page = await client.send(new ListMultipartUploadsCommand({ Bucket: name }));
    return (page.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! }));
  };
  return {
    name,
    client,
    env: {
      WHARF_S3_ENDPOINT: server.endpoint,
      WHARF_S3_REGION: server.region,
      WHARF_S3_BUCKET: name,
      WHARF_S3_ACCESS_KEY: server.accessKey,
      WHARF_S3_SECRET_KEY: server.secretKey,
      WHARF_S3_FORCE_PATH_STYLE: 'true',
      ...extraEnv,
    },
    keys,
    multipartUploads,
    remove: async () => {
      for (const u of await multipartUploads()) await client.send(new AbortMultipartUploadCommand({ Bucket: name, Key: u.key, UploadId: u.uploadId })).catch(() => undefined);
      const all = await keys();
      for (let i = 0; i < all.length; i += 1000) {
        await client.send(new DeleteObjectsCommand({ Bucket: name, Delete: { Objects: all.slice(i, i + 1000).map((k) => ({ Key: k.key })) } }));
      }
      await client.send(new DeleteBucketCommand({ Bucket: name })).catch(() => undefined);
      client.destroy();
    },
  };
}

/**
 * The blob stores a storage-facing test runs against: the filesystem always, S3 when a server is there (a test
 * for it is skipped with the reason otherwise, and fails under CI). `env` is what the store needs (WHARF_S3_*).
 */
export interface StoreVariant {
  name: 'fs' | 's3';
  skip: string | false;
  /** WHARF_* for the Wharf under test; for s3, a fresh bucket made by setup() */
  env(): Record<string, string>;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  bucket(): TestBucket;
}

export function storeVariants(extraS3Env: Record<string, string> = {}): StoreVariant[] {
  const server = s3Server();
  let bucket: TestBucket | undefined;
  return [
    { name: 'fs', skip: false, env: () => ({}), setup: async () => undefined, teardown: async () => undefined, bucket: () => { throw new Error('no bucket for fs'); } },
    {
      name: 's3',
      skip: typeof server === 'string' ? server : false,
      env: () => bucket!.env,
      setup: async () => {
        bucket = await createBucket(server as S3Server, extraS3Env);
      },
      teardown: async () => {
        await bucket?.remove();
        bucket = undefined;
      },
      bucket: () => bucket!,
    },
  ];
}
