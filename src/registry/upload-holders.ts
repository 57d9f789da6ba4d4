// Who holds which open upload sessions, so that one user cannot open them without end: each is a directory
// and a file until it is finished, cancelled or expired (uploads.ttl). Kept in memory: sessions resumed from
// disk after a restart are counted against nobody, and expire as before.
import { RegistryError } from '../oci/errors.js';

export class UploadHolders {
  private readonly held = new Map<string, Set<string>>();
  private readonly holderOf = new Map<string, string>();
  /** sessions admitted but not yet started, so concurrent starts cannot pass the cap together */
  private readonly starting = new Map<string, number>();

  constructor(
    private readonly max: number,
    /** whether a session still exists (the sweep may have expired it behind this count's back) */
    private readonly stillOpen: (id: string) => Promise<boolean>,
  ) {}

  /**
   * Admits one more session for `holder`, or throws TOOMANYREQUESTS; the caller then calls `hold` with the
   * session's id, or `abandon` if it could not start one.
   */
  async admit(holder: string): Promise<void> {
    if (this.count(holder) >= this.max) {
      for (const id of [...(this.held.get(holder) ?? [])]) if (!(await this.stillOpen(id))) this.release(id);
      if (this.count(holder) >= this.max) {
        throw new RegistryError(
          'TOOMANYREQUESTS',
          `${this.max} upload sessions are open for this user (uploads.maxSessionsPerUser): finish or cancel one (DELETE its Location), or wait for it to expire`,
        );
      }
    }
    this.starting.set(holder, (this.starting.get(holder) ?? 0) + 1);
  }

  hold(holder: string, id: string): void {
    this.abandon(holder);
    let ids = this.held.get(holder);
    if (!ids) this.held.set(holder, (ids = new Set()));
    ids.add(id);
    this.holderOf.set(id, holder);
  }

  abandon(holder: string): void {
    const n = (this.starting.get(holder) ?? 1) - 1;
    if (n > 0) this.starting.set(holder, n);
    else this.starting.delete(holder);
  }

  /** The session ended (finished, cancelled, failed): it no longer counts. */
  release(id: string): void {
    const holder = this.holderOf.get(id);
    if (holder === undefined) return;
    this.holderOf.delete(id);
    const ids = this.held.get(holder)!;
    ids.delete(id);
    if (ids.size === 0) this.held.delete(holder);
  }

  private count(holder: string): number {
    return (this.held.get(holder)?.size ?? 0) + (this.starting.get(holder) ?? 0);
  }
}
