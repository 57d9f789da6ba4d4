// What every server holds before the figures are taken: a large blob to pull, a 5-layer image, a repository with many tags.
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { BlobBody, BlobSource } from './blobs.js';
import { Client } from './client.js';
import type { Headers } from './credentials.js';
import { pool } from './load.js';
import { getManifest, getTags, headManifest, makeImage, pushMonolithic, putManifest, type Image } from './oci.js';
import { RawConnection } from './rawhttp.js';

export const PULL_REPO = 'bench/pull';
export const STORM_REPO = 'bench/storm';
export const STORM_TAG = 'latest';
export const TAGS_REPO = 'bench/tags';

export interface Fixtures {
  pullBlob: BlobBody;
  storm: Image;
  tagsImage: Image;
  tags: string[];
}

/** Which fixtures the selected figures read. */
export interface Needs {
  pull: boolean;
  storm: boolean;
  tags: boolean;
}

export function makeFixtures(source: BlobSource, pullSize: number, stormLayers: number[], tagCount: number): Fixtures {
  return {
    pullBlob: source.blob(pullSize, 'fixture/pull'),
    storm: makeImage(stormLayers.map((size, i) => source.blob(size, `fixture/storm/${i}`))),
    tagsImage: makeImage([source.blob(1024, 'fixture/tags/layer')]),
    tags: Array.from({ length: tagCount }, (_, i) => `1.${Math.floor(i / 100)}.${i % 100}`),
  };
}

async function pushImage(client: Client, repo: string, image: Image, tags: string[]): Promise<void> {
  await pool(3, [image.config, ...image.layers], (blob) => pushMonolithic(client, repo, blob));
  await pool(8, tags, (tag) => putManifest(client, repo, tag, image.manifest));
}

/** Pushes the fixtures to a registry (with `auth`, when it has authentication on), then checks that it serves them back as pushed. */
export async function seedRegistry(url: string, fixtures: Fixtures, needs: Needs, auth: Headers = {}): Promise<void> {
  const client = new Client(url, 8, auth);
  const connection = new RawConnection(new URL(url));
  try {
    if (needs.pull) await pushMonolithic(client, PULL_REPO, fixtures.pullBlob);
    if (needs.storm) await pushImage(client, STORM_REPO, fixtures.storm, [STORM_TAG]);
    if (needs.tags) await pushImage(client, TAGS_REPO, fixtures.tagsImage, fixtures.tags);

    if (needs.storm) {
      const got = await getManifest(connection, STORM_REPO, STORM_TAG, auth);
      if (!got.body?.equals(fixtures.storm.manifest)) throw new Error(`${url}: manifest body differs from the one pushed`);
      const digest = (await headManifest(connection, STORM_REPO, STORM_TAG, auth)).headers.get('docker-content-digest');
      if (digest !== fixtures.storm.digest) throw new Error(`${url}: HEAD manifest gave digest ${digest}`);
    }
    if (needs.tags) {
      const tags = new Set(await getTags(connection, TAGS_REPO, auth));
      if (tags.size !== fixtures.tags.length || !fixtures.tags.every((tag) => tags.has(tag))) {
        throw new Error(`${url}: tags/list has ${tags.size} tags, expected the ${fixtures.tags.length} pushed`);
      }
    }
  } finally {
    client.close();
    connection.close();
  }
}

function writeBlobFile(path: string, blob: BlobBody): void {
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'w');
  try {
    for (const slice of blob.slices()) {
      for (let done = 0; done < slice.length; ) done += writeSync(fd, slice, done);
    }
  } finally {
    closeSync(fd);
  }
}

/** Lays the fixtures out as files under `root` at the paths of the registry API, for nginx to serve. */
export function writeStaticRoot(root: string, fixtures: Fixtures, needs: Needs): void {
  const v2 = join(root, 'v2');
  if (needs.pull) writeBlobFile(join(v2, PULL_REPO, 'blobs', fixtures.pullBlob.digest), fixtures.pullBlob);
  if (needs.storm) {
    for (const layer of fixtures.storm.layers) writeBlobFile(join(v2, STORM_REPO, 'blobs', layer.digest), layer);
    mkdirSync(join(v2, STORM_REPO, 'manifests'), { recursive: true });
    writeFileSync(join(v2, STORM_REPO, 'manifests', STORM_TAG), fixtures.storm.manifest);
  }
  if (needs.tags) {
    mkdirSync(join(v2, TAGS_REPO, 'tags'), { recursive: true });
    const tags = [...fixtures.tags].sort();
    writeFileSync(join(v2, TAGS_REPO, 'tags', 'list'), JSON.stringify({ name: TAGS_REPO, tags }));
  }
}
