// Failed-login throttling by (user name, client address) and by client address, with delays that grow with
// every further failure instead of a lockout. An attempt inside a delay is refused before its password is
// checked — right and wrong alike, so the answer tells a guesser nothing — and is not counted.
// Nothing is counted per user name alone: a guesser anywhere could then lock the real user out. So a correct
// login from an address that has not failed is never refused. An address's own delay is kept short, since
// everyone behind one unconfigured proxy shares it.
// With a shared store (the metadata database), the counters are the database's: a delay started by failures on
// one instance holds on every instance over it. A login is checked against the database itself; the remembered
// credentials of recall() against this instance's copy, which reads the delays running anywhere at most every
// SHARED_PULL_MS (the bound docs/configuration.md states).
import type { LoginFailureMetadata, LoginFailureRow } from '../metadata/metadata.js';

export interface LoginLimits {
  /** failures of one user name from one address before delays start */
  perUser: number;
  /** failures from one address, whatever the names, before delays start */
  perAddress: number;
  /** the first delay; each further failure doubles it */
  delayMs: number;
  /** the longest delay of one user name from one address */
  maxDelayMs: number;
  /** the longest delay of an address as a whole */
  maxAddressDelayMs: number;
  /** failures are forgotten after this long without a new one */
  windowMs: number;
}

interface Counter {
  failures: number;
  last: number;
  /** no attempt before this time */
  until: number;
}

const MAX_TRACKED = 100_000;
/** How often an instance reads the delays started elsewhere (while remembered passwords are being used). */
export const SHARED_PULL_MS = 1_000;
/** How often forgotten counters are removed from the shared store. */
const SHARED_PRUNE_MS = 600_000;

export class LoginLimiter {
  private readonly counters = new Map<string, Counter>();
  /** when the last delay anywhere ends: until then remembered logins are checked against the delays too */
  private latestUntil = 0;

  private pulledAt = Number.NEGATIVE_INFINITY;
  private pulling = false;
  private prunedAt = 0;

  constructor(
    private readonly limits: LoginLimits,
    private readonly now: () => number = Date.now,
    /** the counters every instance shares; without it, this process's only */
    private readonly shared?: LoginFailureMetadata,
  ) {}

  /**
   * Whether any delay runs now (one comparison: the common answer, no, costs a remembered login nothing). With a
   * shared store, the delays started elsewhere are read in the background at most every SHARED_PULL_MS.
   */
  delaying(): boolean {
    if (this.shared) this.pull();
    return this.latestUntil > this.now();
  }

  /** Seconds until this user name may try again from this address (as the shared store says, if any), or undefined. */
  async check(user: string, address: string): Promise<number | undefined> {
    if (this.shared) {
      const keys = this.keys(user, address).map((k) => k.key);
      const rows = new Map((await this.shared.get(keys)).map((r) => [r.key, r]));
      for (const key of keys) {
        const row = rows.get(key);
        if (row) this.adopt(row);
        else this.counters.delete(key);
      }
    }
    return this.blocked(user, address);
  }

  /** Counts a failure (in the shared store, if any); the delay it starts in seconds, as failed(). */
  async fail(user: string, address: string): Promise<number | undefined> {
    if (!this.shared) return this.failed(user, address);
    const t = this.now();
    let until = 0;
    for (const { key, limit, max } of this.keys(user, address)) {
      const row = await this.shared.count(key, t, this.limits.windowMs);
      if (row.failures >= limit) {
        const mine = t + Math.min(max, this.limits.delayMs * 2 ** Math.min(30, row.failures - limit));
        if (mine > row.until) {
          await this.shared.delay(key, mine);
          row.until = mine;
        }
        until = Math.max(until, row.until);
      }
      this.adopt(row);
    }
    if (t - this.prunedAt > SHARED_PRUNE_MS) {
      this.prunedAt = t;
      void this.shared.prune(t, this.limits.windowMs).catch(() => undefined);
    }
    return until > t ? Math.max(1, Math.ceil((until - t) / 1000)) : undefined;
  }

  /** A correct login: as succeeded(), in the shared store too. */
  async succeed(user: string, address: string): Promise<void> {
    const key = this.userKey(user, address);
    // check() copied the shared counter here just before: without one there is nothing to clear (no write per login).
    const counted = this.counters.has(key);
    this.succeeded(user, address);
    if (counted) await this.shared?.clear(key);
  }

  /** Takes the shared store's counter as this instance's copy. */
  private adopt(row: LoginFailureRow): void {
    if (this.counters.size > MAX_TRACKED) this.prune(this.now());
    this.counters.set(row.key, { failures: row.failures, last: row.last, until: row.until });
    this.latestUntil = Math.max(this.latestUntil, row.until);
  }

  private pull(): void {
    const t = this.now();
    if (this.pulling || t - this.pulledAt < SHARED_PULL_MS) return;
    this.pulling = true;
    this.pulledAt = t;
    this.shared!.delayed(t)
      .then((rows) => {
        for (const row of rows) this.adopt(row);
      })
      .catch(() => undefined)
      .finally(() => (this.pulling = false));
  }

  /** Seconds until this user name may try again from this address, or undefined when it may try now. */
  blocked(user: string, address: string): number | undefined {
    const t = this.now();
    let until = 0;
    for (const { key } of this.keys(user, address)) {
      const c = this.live(key, t);
      if (c && c.until > t) until = Math.max(until, c.until);
    }
    return until > 0 ? Math.max(1, Math.ceil((until - t) / 1000)) : undefined;
  }

  /** Counts a failure; returns the delay (in seconds) it starts, or undefined when the next attempt may follow at once. */
  failed(user: string, address: string): number | undefined {
    const t = this.now();
    if (this.counters.size > MAX_TRACKED) this.prune(t);
    let until = 0;
    for (const { key, limit, max } of this.keys(user, address)) {
      let c = this.live(key, t);
      if (!c) {
        c = { failures: 0, last: t, until: 0 };
        this.counters.set(key, c);
      }
      c.failures++;
      c.last = t;
      if (c.failures >= limit) {
        // 2^30 caps the exponent long before a double overflows; max caps the delay itself.
        c.until = t + Math.min(max, this.limits.delayMs * 2 ** Math.min(30, c.failures - limit));
        until = Math.max(until, c.until);
      }
    }
    this.latestUntil = Math.max(this.latestUntil, until);
    return until > 0 ? Math.max(1, Math.ceil((until - t) / 1000)) : undefined;
  }

  /** A correct login clears its (user, address) failures; not the address's: one right password must not reset a spray. */
  succeeded(user: string, address: string): void {
    this.counters.delete(this.userKey(user, address));
  }

  private userKey(user: string, address: string): string {
    return `u:${address} ${user.toLowerCase()}`;
  }

  private keys(user: string, address: string): { key: string; limit: number; max: number }[] {
    return [
      { key: this.userKey(user, address), limit: this.limits.perUser, max: this.limits.maxDelayMs },
      { key: `a:${address}`, limit: this.limits.perAddress, max: this.limits.maxAddressDelayMs },
    ];
  }

  /** The counter of `key`, unless its failures are old enough to forget. */
  private live(key: string, t: number): Counter | undefined {
    const c = this.counters.get(key);
    if (c && t - c.last >= this.limits.windowMs && c.until <= t) {
      this.counters.delete(key);
      return undefined;
    }
    return c;
  }

  private prune(t: number): void {
    for (const key of [...this.counters.keys()]) this.live(key, t);
  }
}
