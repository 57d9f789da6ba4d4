// The registry's in-memory read caches (manifests by tag and by digest, blob links, full tag lists), each entry
// valid while the database's change stamp is unchanged: a write anywhere, by this process or another, makes it
// stale. With them a pull (manifest by tag, then its blobs) sends no statement to the database while nothing is
// written: on PostgreSQL, no round trip (docs/benchmarks.md has the counts).

/** Manifest-by-tag cache bounds: most manifests are 0.5–5 KiB. */
const CACHED_MANIFEST_BYTES = 64 << 10;
const CACHED_MANIFESTS = 2000;
const CACHED_MANIFESTS_TOTAL_BYTES = 4 << 20;
const CACHED_TAG_LISTS = 1000;
const CACHED_BLOB_LINKS = 20_000;

export interface StoredManifest {
  digest: string;
  mediaType: string;
  body: Buffer;
}

/** Manifests (or their absence) by repository and tag, or by repository and digest. */
export class ManifestCache {
  private readonly entries = new Map<string, { stamp: string; manifest: StoredManifest | null }>();
  private bytes = 0;

  /** The cached answer for `key` while `stamp` is the one it was stored under; undefined when unknown. */
  get(key: string, stamp: string): StoredManifest | null | undefined {
    const cached = this.entries.get(key);
    return cached && cached.stamp === stamp ? cached.manifest : undefined;
  }

  set(key: string, stamp: string, manifest: StoredManifest | null): void {
    if ((manifest?.body.length ?? 0) > CACHED_MANIFEST_BYTES) return;
    // Bounded by entries and by bytes; a full cache starts over (a stamp change makes every entry stale anyway).
    if (this.entries.size >= CACHED_MANIFESTS || this.bytes >= CACHED_MANIFESTS_TOTAL_BYTES) {
      this.entries.clear();
      this.bytes = 0;
    }
    this.bytes += (manifest?.body.length ?? 0) - (this.entries.get(key)?.manifest?.body.length ?? 0);
    this.entries.set(key, { stamp, manifest });
  }
}

/** Full tag lists by repository id. */
export class TagListCache {
  /** by repository name, so a hit needs no query at all (on PostgreSQL each one is a round trip) */
  private readonly entries = new Map<string, { stamp: string; names: string[] }>();

  get(repository: string, stamp: string): string[] | undefined {
    const cached = this.entries.get(repository);
    return cached?.stamp === stamp ? cached.names : undefined;
  }

  set(repository: string, stamp: string, names: string[]): void {
    if (this.entries.size >= CACHED_TAG_LISTS) this.entries.clear();
    this.entries.set(repository, { stamp, names });
  }
}

/**
 * Blobs a repository may read, with their size, by `repository@digest`. Only links that exist are kept: a blob just
 * pushed through another instance is never answered as unknown from here (a client checking it before its upload
 * would send it again).
 */
export class BlobLinkCache {
  private readonly entries = new Map<string, { stamp: string; size: number }>();

  get(key: string, stamp: string): { size: number } | undefined {
    const cached = this.entries.get(key);
    return cached?.stamp === stamp ? { size: cached.size } : undefined;
  }

  set(key: string, stamp: string, size: number): void {
    if (this.entries.size >= CACHED_BLOB_LINKS) this.entries.clear();
    this.entries.set(key, { stamp, size });
  }
}
