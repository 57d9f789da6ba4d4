// Table types for the metadata database (one schema for SQLite and PostgreSQL). Times are epoch milliseconds.
import type { Generated } from 'kysely';

export interface RepositoriesTable {
  id: Generated<number>;
  name: string;
  created_at: number;
}

/** One row per stored blob digest, shared by every repository. */
export interface BlobsTable {
  digest: string;
  size: number;
  created_at: number;
}

/** Which repositories may read which blobs (pushed, mounted, or referenced by their manifests). */
export interface RepositoryBlobsTable {
  repository_id: number;
  digest: string;
  created_at: number;
}

export interface ManifestsTable {
  repository_id: number;
  digest: string;
  media_type: string;
  artifact_type: string | null;
  subject_digest: string | null;
  size: number;
  body: Uint8Array;
  created_at: number;
}

/** What a manifest references: its config and layers (kind 'blob') or, for an index, its children ('manifest'). */
export interface ManifestReferencesTable {
  repository_id: number;
  manifest_digest: string;
  kind: 'blob' | 'manifest';
  target_digest: string;
}

export interface TagsTable {
  repository_id: number;
  name: string;
  digest: string;
  updated_at: number;
}

/** Append-only: every tag create, move and delete. */
export interface TagHistoryTable {
  id: Generated<number>;
  repository_id: number;
  tag: string;
  old_digest: string | null;
  new_digest: string | null;
  actor: string | null;
  at: number;
}

export interface Database {
  repositories: RepositoriesTable;
  blobs: BlobsTable;
  repository_blobs: RepositoryBlobsTable;
  manifests: ManifestsTable;
  manifest_references: ManifestReferencesTable;
  tags: TagsTable;
  tag_history: TagHistoryTable;
}
