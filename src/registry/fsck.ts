// Consistency check of a data directory: re-hashes every blob and checks every reference between blobs,
// links, manifests and tags. With repair, removes orphans and dangling rows.
import { digestOf, parseDigest } from '../oci/digest.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { Metadata } from '../metadata/metadata.js';

export interface FsckProblem {
  kind: 'corrupt-blob' | 'missing-blob' | 'size-mismatch' | 'orphan-blob' | 'dangling-link' | 'dangling-tag' | 'dangling-reference' | 'manifest-digest';
  detail: string;
  repaired: boolean;
}

export interface FsckReport {
  blobsChecked: number;
  manifestsChecked: number;
  problems: FsckProblem[];
}

export interface FsckOptions {
  repair: boolean;
  /** Blob files younger than this are left alone: a push may be between its rename and its database row. */
  orphanGraceMs: number;
}

export async function fsck(blobs: BlobStore, meta: Pick<Metadata, 'registry' | 'fsck'>, opts: FsckOptions): Promise<FsckReport> {
  const problems: FsckProblem[] = [];
  const rows = new Map((await meta.fsck.allBlobRows()).map((r) => [r.digest, r.size]));
  let blobsChecked = 0;
  const onDisk = new Set<string>();
  const now = Date.now();

  for await (const file of blobs.list()) {
    blobsChecked++;
    onDisk.add(file.digest);
    if (!(await blobs.verify(file.digest))) {
      problems.push({ kind: 'corrupt-blob', detail: `${file.digest}: content does not match its digest`, repaired: opts.repair });
      if (opts.repair) {
        // Moved aside (quarantine/), not deleted: the bytes are evidence of what went wrong. A push of the same
        // digest stores it again.
        if (blobs.quarantine) await blobs.quarantine(file.digest);
        else await blobs.delete(file.digest);
        await meta.fsck.deleteBlobRow(file.digest);
      }
      continue;
    }
    const size = rows.get(file.digest);
    if (size === undefined) {
      if (now - file.mtimeMs < opts.orphanGraceMs) continue;
      problems.push({ kind: 'orphan-blob', detail: `${file.digest}: stored but recorded nowhere`, repaired: opts.repair });
      if (opts.repair) await blobs.delete(file.digest);
    } else if (size !== file.size) {
      problems.push({ kind: 'size-mismatch', detail: `${file.digest}: ${file.size} bytes on disk, ${size} recorded`, repaired: false });
    }
  }
  // A store that names objects by upload (S3): objects no row names, past the grace a commit may need.
  if (blobs.strays) {
    for await (const stray of blobs.strays(now - opts.orphanGraceMs)) {
      problems.push({ kind: 'orphan-blob', detail: `${stray.location}: stored (${stray.size} bytes) but recorded nowhere`, repaired: opts.repair });
      if (opts.repair) await blobs.deleteStray!(stray.location);
    }
  }
  for (const digest of rows.keys()) {
    if (onDisk.has(digest)) continue;
    problems.push({ kind: 'missing-blob', detail: `${digest}: recorded but its data is missing`, repaired: opts.repair });
    if (opts.repair) await meta.fsck.deleteBlobRow(digest);
  }
  for (const l of await meta.fsck.danglingLinks()) {
    problems.push({ kind: 'dangling-link', detail: `${l.repository}: link to unknown blob ${l.digest}`, repaired: opts.repair });
    if (opts.repair) await meta.registry.unlinkBlob(l.repository, l.digest);
  }
  for (const t of await meta.fsck.danglingTags()) {
    problems.push({ kind: 'dangling-tag', detail: `${t.repository}:${t.tag} points at missing manifest ${t.digest}`, repaired: opts.repair });
    if (opts.repair) await meta.registry.deleteTag(t.repository, t.tag, 'fsck');
  }
  for (const r of await meta.fsck.danglingReferences()) {
    problems.push({ kind: 'dangling-reference', detail: `${r.repository}@${r.manifest} references missing ${r.kind} ${r.target}`, repaired: false });
  }
  const manifests = await meta.fsck.allManifests();
  for (const m of manifests) {
    const alg = parseDigest(m.digest)?.algorithm ?? 'sha256';
    if (digestOf(m.body, alg) !== m.digest) {
      problems.push({ kind: 'manifest-digest', detail: `${m.repository}@${m.digest}: stored body does not match its digest`, repaired: false });
    }
  }
  return { blobsChecked, manifestsChecked: manifests.length, problems };
}
