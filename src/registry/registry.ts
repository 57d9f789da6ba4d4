// The registry domain: blobs, uploads, manifests, tags and referrers of repositories, independent of HTTP.
// Bytes live in a BlobStore, everything else in the registry metadata (metadata/); a repository sees only blobs linked to it.
import type { Readable } from 'node:stream';
import { digestOf, parseDigest } from '../oci/digest.js';
import { RegistryError } from '../oci/errors.js';
import { isExternalBlob, ManifestError, parseManifest, type Descriptor } from '../oci/manifest.js';
import { OCI_INDEX } from '../oci/media-types.js';
import { isValidRepositoryName, isValidTag, requireRepositoryName } from '../oci/reference.js';
import type { BlobFile, BlobStore, ByteRange, UploadState } from '../storage/blob-store.js';
import type { RegistryMetadata, StoredManifest, TagGuard } from '../metadata/metadata.js';
import { BlobIntegrity, type HashOnServe, type QuarantineEvent } from './blob-integrity.js';
import { UploadHolders } from './upload-holders.js';

export interface RegistryOptions {
  /** Largest manifest accepted, in bytes (the spec suggests at least 4 MiB). */
  maxManifestBytes: number;
  /** Tag rules (immutable versions, reserved environment tags) checked on every tag write. */
  tagGuard?: TagGuard;
  /** which served blobs are hashed on the way out (default: always) */
  hashOnServe?: HashOnServe;
  /** Upload sessions one holder (a user or robot token) may have open at once; default 100. */
  maxUploadSessionsPerHolder?: number;
}

export interface PutManifestResult {
  digest: string;
  subject?: string;
  tag?: string;
  previous: string | null;
}

/** Observers for state changes (metrics, audit, webhooks) without the domain knowing them. */
export interface RegistryEvents {
  manifestPushed?(e: { repository: string; digest: string; tag?: string; previous: string | null; mediaType: string; actor?: string | null }): void;
  manifestDeleted?(e: { repository: string; digest: string; actor?: string | null }): void;
  tagDeleted?(e: { repository: string; tag: string; actor?: string | null }): void;
  /** a stored blob did not match its digest or recorded size and was moved aside */
  blobQuarantined?(e: QuarantineEvent): Promise<void> | void;
}

export class Registry {
  /** checks blobs as they are served, and quarantines bad ones (also used by the scrub) */
  readonly integrity: BlobIntegrity;
  private readonly holders: UploadHolders;

  constructor(
    readonly blobs: BlobStore,
    readonly meta: RegistryMetadata,
    readonly options: RegistryOptions = { maxManifestBytes: 4 << 20 },
    readonly events: RegistryEvents = {},
  ) {
    this.integrity = new BlobIntegrity(blobs, options.hashOnServe, (e) => events.blobQuarantined?.(e));
    this.holders = new UploadHolders(options.maxUploadSessionsPerHolder ?? 100, async (id) => (await blobs.getUpload(id)) !== null);
  }

  checkName(repository: string): void {
    requireRepositoryName(repository);
  }

  private checkDigest(digest: string): void {
    if (!parseDigest(digest)) throw new RegistryError('DIGEST_INVALID', `invalid digest ${JSON.stringify(digest)}`);
  }

  // --- blobs -----------------------------------------------------------------------------------

  /** Size of a blob the repository may read; BLOB_UNKNOWN otherwise (also when its bytes are gone). */
  async statBlob(repository: string, digest: string): Promise<{ size: number }> {
    this.checkDigest(digest);
    const linked = await this.meta.linkedBlob(repository, digest);
    if (!linked) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} unknown to repository ${repository}`);
    return linked;
  }

  /**
   * Opens the bytes of a blob `recordedSize` bytes long (from statBlob) for sending `range` or all of it. Their size
   * is checked and a whole read is hashed as it goes (blob-integrity.ts); BLOB_UNKNOWN when they are gone.
   */
  openBlob(digest: string, recordedSize: number, range?: ByteRange): Promise<BlobFile> {
    return this.integrity.openForServe(digest, recordedSize, range);
  }

  /** For HEAD: BLOB_UNKNOWN unless the blob's bytes are stored at their recorded size. */
  checkBlobStored(digest: string, recordedSize: number): Promise<void> {
    return this.integrity.checkStored(digest, recordedSize);
  }

  readBlob(digest: string, range?: ByteRange): Readable {
    return this.blobs.read(digest, range);
  }

  async deleteBlob(repository: string, digest: string): Promise<void> {
    this.checkDigest(digest);
    if (!(await this.meta.unlinkBlob(repository, digest))) throw new RegistryError('BLOB_UNKNOWN');
  }

  /** Gives `repository` a blob `from` already has; false when `from` lacks it (the client then uploads). */
  async mountBlob(repository: string, digest: string, from: string): Promise<boolean> {
    // A mount that cannot happen (bad digest or source) falls back to an upload session, as in Distribution.
    if (!parseDigest(digest) || !isValidRepositoryName(from)) return false;
    const linked = await this.meta.linkedBlob(from, digest);
    if (!linked || !(await this.blobs.stat(digest))) return false;
    return this.meta.linkStoredBlob(repository, digest);
  }

  // --- uploads ---------------------------------------------------------------------------------

  /** Opens an upload session held by `holder` (who started it: 'user:alice', 'token:ci' …), within its cap. */
  async startUpload(repository: string, holder = 'anonymous'): Promise<UploadState> {
    await this.holders.admit(holder);
    let session: UploadState;
    try {
      session = await this.blobs.startUpload(repository);
    } catch (e) {
      this.holders.abandon(holder);
      throw e;
    }
    this.holders.hold(holder, session.id);
    return session;
  }

  async upload(repository: string, id: string): Promise<UploadState> {
    const s = await this.blobs.getUpload(id);
    if (!s || s.repository !== repository) throw new RegistryError('BLOB_UPLOAD_UNKNOWN');
    return s;
  }

  async appendUpload(repository: string, id: string, body: Readable, offset?: number): Promise<UploadState> {
    await this.upload(repository, id);
    return this.blobs.appendUpload(id, body, offset);
  }

  /** Ends an upload: appends the final chunk (if any), verifies `digest`, and links the blob. */
  async finishUpload(repository: string, id: string, digest: string, body?: Readable, offset?: number): Promise<{ size: number }> {
    await this.upload(repository, id);
    this.checkDigest(digest);
    if (body) await this.blobs.appendUpload(id, body, offset, true);
    // The file appears inside the transaction that records it, so online GC cannot delete it in between.
    const done = await this.blobs.commitUpload(id, digest, (size, reveal, location) => this.meta.commitBlob(repository, digest, size, reveal, location));
    this.holders.release(id);
    return done;
  }

  async cancelUpload(repository: string, id: string): Promise<void> {
    await this.upload(repository, id);
    await this.blobs.cancelUpload(id);
    this.holders.release(id);
  }

  /** A whole blob in one request (POST ?digest=), counted as a session while it runs. A failure leaves no session behind. */
  async putBlob(repository: string, digest: string, body: Readable, holder = 'anonymous'): Promise<{ size: number }> {
    this.checkDigest(digest);
    const session = await this.startUpload(repository, holder);
    try {
      return await this.finishUpload(repository, session.id, digest, body);
    } catch (e) {
      await this.blobs.cancelUpload(session.id).catch(() => {});
      throw e;
    } finally {
      this.holders.release(session.id);
    }
  }

  // --- manifests -------------------------------------------------------------------------------

  async putManifest(repository: string, reference: string, body: Buffer, contentType: string, actor: string | null = null): Promise<PutManifestResult> {
    this.checkName(repository);
    if (body.length > this.options.maxManifestBytes) {
      throw new RegistryError('MANIFEST_TOO_LARGE', `manifest is ${body.length} bytes; the limit is ${this.options.maxManifestBytes}`);
    }
    let digest: string;
    let tag: string | undefined;
    const asDigest = parseDigest(reference);
    if (asDigest) {
      digest = digestOf(body, asDigest.algorithm);
      if (digest !== reference) throw new RegistryError('DIGEST_INVALID', `manifest body has digest ${digest}, not ${reference}`);
    } else if (isValidTag(reference)) {
      tag = reference;
      digest = digestOf(body);
    } else {
      throw new RegistryError(reference.includes(':') ? 'DIGEST_INVALID' : 'TAG_INVALID', `invalid tag or digest ${JSON.stringify(reference)}`);
    }

    let parsed;
    try {
      parsed = parseManifest(body, contentType);
    } catch (e) {
      if (e instanceof ManifestError) throw new RegistryError(e.code, e.message);
      throw e;
    }

    const blobDigests = parsed.blobs.filter((d) => !isExternalBlob(d)).map((d) => d.digest);
    const linked = await this.meta.linkedBlobsOf(repository, blobDigests);
    const missingBlobs = blobDigests.filter((d) => !linked.has(d));
    if (missingBlobs.length > 0) {
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `blob ${missingBlobs[0]} is unknown to repository ${repository}`, { digests: missingBlobs });
    }
    const childDigests = parsed.manifests.map((d) => d.digest);
    const present = await this.meta.manifestsOf(repository, childDigests);
    const missingChildren = childDigests.filter((d) => !present.has(d));
    if (missingChildren.length > 0) {
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest ${missingChildren[0]} is unknown to repository ${repository}`, { digests: missingChildren });
    }

    const { previous } = await this.meta.putManifest(
      repository,
      {
        digest,
        mediaType: parsed.mediaType,
        artifactType: parsed.artifactType ?? null,
        subjectDigest: parsed.subject?.digest ?? null,
        body,
        blobs: blobDigests,
        children: childDigests,
      },
      tag,
      actor,
      this.options.tagGuard,
    );
    this.events.manifestPushed?.({ repository, digest, tag, previous, mediaType: parsed.mediaType, actor });
    return { digest, subject: parsed.subject?.digest, tag, previous };
  }

  async getManifest(repository: string, reference: string): Promise<StoredManifest> {
    let m: StoredManifest | null;
    if (parseDigest(reference)) m = await this.meta.manifestByDigest(repository, reference);
    else if (isValidTag(reference)) m = await this.meta.manifestByTag(repository, reference);
    else if (reference.includes(':')) throw new RegistryError('DIGEST_INVALID', `invalid digest ${JSON.stringify(reference)}`);
    // A name no tag can have names no manifest: unknown (404), as Distribution and the conformance suite expect.
    // Only a push of such a tag is the client's mistake (TAG_INVALID, in putManifest).
    else m = null;
    if (!m) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} unknown to repository ${repository}`);
    return m;
  }

  /** By digest: deletes the manifest and its tags. By tag: deletes only the tag. */
  async deleteManifest(repository: string, reference: string, actor: string | null = null): Promise<void> {
    if (parseDigest(reference)) {
      if (!(await this.meta.deleteManifest(repository, reference, actor, this.options.tagGuard))) throw new RegistryError('MANIFEST_UNKNOWN');
      this.events.manifestDeleted?.({ repository, digest: reference, actor });
    } else if (isValidTag(reference)) {
      if (!(await this.meta.deleteTag(repository, reference, actor, this.options.tagGuard))) throw new RegistryError('MANIFEST_UNKNOWN', `tag ${reference} unknown`);
      this.events.tagDeleted?.({ repository, tag: reference, actor });
    } else {
      throw new RegistryError(reference.includes(':') ? 'DIGEST_INVALID' : 'TAG_INVALID', `invalid tag or digest ${JSON.stringify(reference)}`);
    }
  }

  // --- listings --------------------------------------------------------------------------------

  async listTags(repository: string, limit?: number, last?: string): Promise<string[]> {
    const tags = await this.meta.listTags(repository, limit, last);
    if (tags === null) throw new RegistryError('NAME_UNKNOWN', `repository ${repository} not known to registry`);
    return tags;
  }

  catalog(limit?: number, last?: string): Promise<string[]> {
    return this.meta.listRepositories(limit, last);
  }

  /** The referrers of `subject` as an OCI image index body. */
  async referrers(repository: string, subject: string, artifactType?: string): Promise<{ mediaType: string; schemaVersion: 2; manifests: Descriptor[] }> {
    this.checkDigest(subject);
    const rows = await this.meta.referrers(repository, subject);
    const manifests: Descriptor[] = [];
    for (const r of rows) {
      if (artifactType !== undefined && r.artifactType !== artifactType) continue;
      const d: Descriptor = { mediaType: r.mediaType, digest: r.digest, size: r.size };
      if (r.artifactType) d.artifactType = r.artifactType;
      const annotations = (JSON.parse(r.body.toString('utf8')) as { annotations?: Record<string, string> }).annotations;
      if (annotations) d.annotations = annotations;
      manifests.push(d);
    }
    return { schemaVersion: 2, mediaType: OCI_INDEX, manifests };
  }
}
