// Failed-login throttling by (user name, client address) and by client address, with delays that grow with
// every further failure instead of a lockout. An attempt inside a delay is refused before its password is
// checked — right and wrong alike, so the answer tells a guesser nothing — and is not counted.
// Nothing is counted per user name alone: a guesser anywhere could then lock the real user out. So a correct
// login from an address that has not failed is never refused. An address's own delay is kept short, since
// everyone behind one unconfigured proxy shares it.

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

export class LoginLimiter {
  private readonly counters = new Map<string, Counter>();
  /** when the last delay anywhere ends: until then remembered logins are checked against the delays too */
  private latestUntil = 0;

  constructor(
    private readonly limits: LoginLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether any delay runs now (one comparison: the common answer, no, costs a remembered login nothing). */
  delaying(): boolean {
    return this.latestUntil > this.now();
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
