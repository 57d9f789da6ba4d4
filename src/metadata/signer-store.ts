// Queries for trusted attestation signers (public keys a global admin registered): the SignerStore of attest/.
import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

/** A trusted signer as stored: its public key, the scope it counts for, and who added (or revoked) it. */
export interface StoredSigner {
  name: string;
  publicKey: string;
  apps: string[];
  kinds: string[];
  environments: string[];
  keyid: string;
  algorithm: 'ed25519' | 'ecdsa-p256';
  source: 'api' | 'config';
  createdBy: string | null;
  createdAt: number;
  revokedAt: number | null;
  revokedBy: string | null;
}

/** The port the signers are kept behind. */
export interface SignerMetadata {
  signers(): Promise<StoredSigner[]>;
  /** inserts, or replaces a row of the same name and source 'config' */
  putSigner(s: StoredSigner): Promise<void>;
  revokeSigner(name: string, at: number, by: string | null): Promise<boolean>;
  /** config rows the file names no more */
  removeConfigSignersExcept(names: string[]): Promise<void>;
}

export class SignerStore implements SignerMetadata {
  constructor(private readonly db: Kysely<Database>) {}

  async signers(): Promise<StoredSigner[]> {
    const rows = await this.db.selectFrom('attestation_signers').selectAll().orderBy('name').execute();
    return rows.map((r) => ({
      name: r.name,
      keyid: r.keyid,
      algorithm: r.algorithm,
      publicKey: r.public_key,
      apps: JSON.parse(r.apps) as string[],
      kinds: JSON.parse(r.kinds) as string[],
      environments: JSON.parse(r.environments) as string[],
      source: r.source,
      createdBy: r.created_by,
      createdAt: Number(r.created_at),
      revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
      revokedBy: r.revoked_by,
    }));
  }

  async putSigner(s: StoredSigner): Promise<void> {
    const row = {
      keyid: s.keyid,
      algorithm: s.algorithm,
      public_key: s.publicKey,
      apps: JSON.stringify(s.apps),
      kinds: JSON.stringify(s.kinds),
      environments: JSON.stringify(s.environments),
      source: s.source,
      created_by: s.createdBy,
      created_at: s.createdAt,
      revoked_at: s.revokedAt,
      revoked_by: s.revokedBy,
    };
    // Only a config row is ever replaced (the file is re-read at each start); the API refuses names in use.
    await this.db
      .insertInto('attestation_signers')
      .values({ name: s.name, ...row })
      .onConflict((oc) => oc.column('name').doUpdateSet(row).where('attestation_signers.source', '=', 'config'))
      .execute();
  }

  async revokeSigner(name: string, at: number, by: string | null): Promise<boolean> {
    const r = await this.db.updateTable('attestation_signers').set({ revoked_at: at, revoked_by: by }).where('name', '=', name).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async removeConfigSignersExcept(names: string[]): Promise<void> {
    let q = this.db.deleteFrom('attestation_signers').where('source', '=', 'config');
    if (names.length > 0) q = q.where('name', 'not in', names);
    await q.execute();
  }
}
