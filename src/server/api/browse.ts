// Browsing for the web UI and scripts: repositories (name prefix, cursor pages, only those the caller may
// pull) and a repository's tags with digest, size, platforms and who pushed them; and what the caller may do
// on a repository, so the UI shows only the actions the server would allow.
import { z } from 'zod';
import type { BrowseMetadata, TagSummary } from '../../metadata/metadata.js';
import { parseManifest, type Descriptor } from '../../oci/manifest.js';
import { RegistryError } from '../../oci/errors.js';
import { requireRepositoryName } from '../../oci/reference.js';
import type { BlobStore } from '../../storage/blob-store.js';
import type { Action } from '../../auth/access.js';
import type { RequestAccess } from '../access.js';
import type { ApiRoute } from '../api.js';
import { DEFAULT_LIMIT, decodeCursor, encodeCursor, pageOf, pageQuery, parseQuery } from '../pagination.js';

const REPO = '(?<repo>[^?#]+?)';

const RepositoryItem = z.object({ name: z.string(), tagCount: z.number(), size: z.number(), lastPush: z.number().nullable() });
const RepositoriesQuery = pageQuery.extend({ prefix: z.string().max(256).optional().describe('repository name prefix') });
const TagItem = z.object({
  name: z.string(),
  digest: z.string(),
  mediaType: z.string(),
  kind: z.enum(['image', 'index', 'other']),
  /** bytes: the manifest, its config and layers (for an index, of every child stored here) */
  size: z.number(),
  platforms: z.array(z.string()),
  pushedAt: z.number(),
  pushedBy: z.string().nullable(),
});
const TagsQuery = pageQuery.extend({
  prefix: z.string().max(128).optional().describe('tag name prefix'),
  sort: z.enum(['name', 'pushed']).optional().describe('name (default) or pushed, newest first'),
});
const AccessQuery = z.object({
  repository: z.string().max(256).optional(),
  environment: z.string().max(128).optional().describe('narrows release to one environment'),
  explicit: z.enum(['true', 'false']).optional().describe('true: release counts only a grant naming release:ENVIRONMENT, as on a protected environment'),
});
const ACTIONS: Action[] = ['pull', 'push', 'delete', 'release', 'admin'];

function repoName(value: string): string {
  return requireRepositoryName(value);
}

function parsed(body: Buffer, mediaType: string) {
  try {
    return parseManifest(body, mediaType);
  } catch {
    return undefined;
  }
}

const platformOf = (p: unknown): string | undefined => {
  const x = p as { os?: string; architecture?: string; variant?: string } | undefined;
  if (!x?.os || !x.architecture || x.os === 'unknown') return undefined;
  return [x.os, x.architecture, x.variant].filter(Boolean).join('/');
};

/** A small JSON blob (an image config), or undefined when it is missing or not small JSON. */
async function readConfig(blobs: BlobStore, d: Descriptor): Promise<{ os?: string; architecture?: string; variant?: string } | undefined> {
  if (d.size > 256 * 1024) return undefined;
  const file = await blobs.open(d.digest);
  if (!file) return undefined;
  try {
    const buf = Buffer.alloc(d.size);
    let got = 0;
    while (got < d.size) {
      const n = await file.read(buf.subarray(got), d.size - got, got);
      if (n === 0) break;
      got += n;
    }
    return JSON.parse(buf.subarray(0, got).toString('utf8'));
  } catch {
    return undefined;
  } finally {
    await file.close();
  }
}

async function describeTags(rows: TagSummary[], repository: string, store: BrowseMetadata, blobs: BlobStore): Promise<z.infer<typeof TagItem>[]> {
  const manifests = rows.map((t) => parsed(t.body, t.mediaType));
  const children = await store.manifestBodies(repository, [...new Set(manifests.flatMap((m) => (m?.kind === 'index' ? m.manifests.map((c) => c.digest) : [])))]);
  return Promise.all(
    rows.map(async (t, i) => {
      const m = manifests[i];
      let size = t.manifestSize;
      const platforms: string[] = [];
      if (m?.kind === 'image') {
        size += m.blobs.reduce((n, b) => n + b.size, 0);
        const config = m.blobs[0] && (await readConfig(blobs, m.blobs[0]));
        const p = platformOf(config);
        if (p) platforms.push(p);
      } else if (m?.kind === 'index') {
        for (const c of m.manifests) {
          const p = platformOf(c.platform);
          if (p) platforms.push(p);
          const child = children.get(c.digest);
          const cm = child && parsed(child.body, child.mediaType);
          size += c.size + (cm ? cm.blobs.reduce((n, b) => n + b.size, 0) : 0);
        }
      }
      return { name: t.name, digest: t.digest, mediaType: t.mediaType, kind: m?.kind ?? 'other', size, platforms, pushedAt: t.updatedAt, pushedBy: t.pushedBy };
    }),
  );
}

export function browseRoutes(store: BrowseMetadata, blobs: BlobStore, access: RequestAccess): ApiRoute[] {
  return [
    {
      method: 'GET',
      pattern: /^\/api\/v1\/repositories$/,
      access: { actions: [] },
      summary: 'Repositories the caller may pull, with tag count, size and last push',
      query: RepositoriesQuery,
      response: pageOf(RepositoryItem),
      async handle(r) {
        const q = parseQuery(r.url, RepositoriesQuery);
        const limit = q.limit ?? DEFAULT_LIMIT;
        let after = decodeCursor('repositories', q.cursor, z.string());
        const items: z.infer<typeof RepositoryItem>[] = [];
        // Repositories the caller may not pull are skipped; read on until the page is full or the list ends.
        for (let round = 0; round < 20 && items.length <= limit; round++) {
          const batch = await store.repositories({ prefix: q.prefix, after, limit: limit + 1 });
          for (const repo of batch) if (access.canPull(r.principal, repo.name)) items.push(repo);
          if (batch.length < limit + 1) {
            after = undefined;
            break;
          }
          after = batch[batch.length - 1]!.name;
        }
        const page = items.slice(0, limit);
        const more = items.length > limit || after !== undefined;
        return { items: page, next: more && page.length > 0 ? encodeCursor('repositories', page[page.length - 1]!.name) : null };
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/repositories/${REPO}/tags$`),
      access: { repositoryParam: 'repo', actions: ['pull'] },
      summary: 'Tags of a repository with digest, size, platforms and who pushed them',
      query: TagsQuery,
      response: pageOf(TagItem),
      async handle(r) {
        const repository = repoName(r.params.repo!);
        const q = parseQuery(r.url, TagsQuery);
        const limit = q.limit ?? DEFAULT_LIMIT;
        const sort = q.sort ?? 'name';
        const rows =
          sort === 'name'
            ? await store.tags(repository, { prefix: q.prefix, order: { by: 'name', after: decodeCursor('tags', q.cursor, z.string()) }, limit: limit + 1 })
            : await store.tags(repository, { prefix: q.prefix, order: { by: 'pushed', after: decodeCursor('tags by push', q.cursor, z.object({ at: z.number(), name: z.string() })) }, limit: limit + 1 });
        if (rows === null) throw new RegistryError('NAME_UNKNOWN', `repository ${repository} not known to registry`);
        const page = rows.slice(0, limit);
        const last = page[page.length - 1];
        const next = rows.length > limit && last ? (sort === 'name' ? encodeCursor('tags', last.name) : encodeCursor('tags by push', { at: last.updatedAt, name: last.name })) : null;
        return { items: await describeTags(page, repository, store, blobs), next };
      },
    },
    {
      method: 'GET',
      pattern: /^\/api\/v1\/access$/,
      access: { actions: [] },
      summary: 'What the caller may do, on a repository or registry-wide (the UI hides what the server would refuse)',
      query: AccessQuery,
      response: z.object({ repository: z.string().nullable(), actions: z.array(z.string()) }),
      async handle(r) {
        const q = parseQuery(r.url, AccessQuery);
        const repository = q.repository === undefined ? undefined : repoName(q.repository);
        const explicit = q.explicit === 'true';
        const allowed = ACTIONS.filter((a) => (access.allowed ? access.allowed(r.principal, repository, a, q.environment, a === 'release' && explicit) : true));
        return { repository: repository ?? null, actions: allowed };
      },
    },
  ];
}
