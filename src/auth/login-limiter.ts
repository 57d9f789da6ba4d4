// Failed-login rate limiting, per user name and per client address, in fixed windows. Once a key is over
// its limit, every attempt is refused until the window ends — right or wrong password alike, so a locked
// account tells an attacker nothing. Names that do not exist are counted the same way.

export interface LoginLimits {
  perUser: number;
  perAddress: number;
  windowMs: number;
}

interface Counter {
  failures: number;
  resetAt: number;
}

const MAX_TRACKED = 100_000;

export class LoginLimiter {
  private readonly counters = new Map<string, Counter>();

  constructor(
    private readonly limits: LoginLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Seconds until attempts are accepted again, or undefined when the user and address may try now. */
  blocked(user: string, address: string): number | undefined {
    const t = this.now();
    let until = 0;
    for (const [key, limit] of this.keys(user, address)) {
      const c = this.counters.get(key);
      if (c && c.resetAt > t && c.failures >= limit) until = Math.max(until, c.resetAt);
    }
    return until > 0 ? Math.max(1, Math.ceil((until - t) / 1000)) : undefined;
  }

  /** Counts a failure; returns true when this failure locked the user or the address. */
  failed(user: string, address: string): boolean {
    const t = this.now();
    if (this.counters.size > MAX_TRACKED) this.prune(t);
    let locked = false;
    for (const [key, limit] of this.keys(user, address)) {
      let c = this.counters.get(key);
      if (!c || c.resetAt <= t) {
        c = { failures: 0, resetAt: t + this.limits.windowMs };
        this.counters.set(key, c);
      }
      c.failures++;
      if (c.failures === limit) locked = true;
    }
    return locked;
  }

  /** A successful login clears the user's failures (not the address's: one right password must not reset a spray). */
  succeeded(user: string): void {
    this.counters.delete(`u:${user.toLowerCase()}`);
  }

  private keys(user: string, address: string): [string, number][] {
    return [
      [`u:${user.toLowerCase()}`, this.limits.perUser],
      [`a:${address}`, this.limits.perAddress],
    ];
  }

  private prune(t: number): void {
    for (const [key, c] of this.counters) if (c.resetAt <= t) this.counters.delete(key);
  }
}
