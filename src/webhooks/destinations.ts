// Where webhooks may be sent: public unicast addresses only, unless the server's configuration allows a
// named host or an address range (webhooks.allowTargets). Checked on the address actually connected to, so
// a name that resolves (or later re-resolves: DNS rebinding) to the metadata service or loopback is refused.
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';
import ipaddr from 'ipaddr.js';

/** Why a delivery was not sent: a refused target (a 4xx at creation, a failed attempt at delivery). */
export class DestinationRefused extends Error {
  readonly code = 'TARGET_REFUSED';
}

/** How names are resolved: `dns.lookup` in the server, something else in tests of rebinding. */
export type Resolve = (hostname: string, options: LookupAllOptions, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

/** A hostname, an IP address or a CIDR range; what webhooks.allowTargets accepts. */
export function isDestinationPattern(entry: string): boolean {
  const v = entry.trim();
  if (v.includes('/')) return ipaddr.isValidCIDR(v);
  return ipaddr.isValid(v) || /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i.test(v);
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/**
 * An IPv6 form that carries an IPv4 address (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d): the IPv4 address
 * it reaches. NAT64 and SIIT forms (64:ff9b::/96, ::ffff:0:a.b.c.d), 6to4 and Teredo are refused outright as
 * ranges of their own: they reach IPv4 hosts through a translator whose reach Wharf cannot judge.
 */
function embeddedIPv4(a: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  if (a.isIPv4MappedAddress()) return a.toIPv4Address();
  const bytes = a.toByteArray();
  if (bytes.slice(0, 12).every((b) => b === 0) && a.range() === 'unicast') return new ipaddr.IPv4(bytes.slice(12));
  return undefined;
}

function addressesOfThisHost(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .map((i) => i.address.replace(/%.*$/, ''));
}

export class DestinationPolicy {
  private readonly hosts = new Set<string>();
  private readonly ranges: Range[] = [];
  private readonly own: Set<string>;

  /**
   * `allow`: hostnames (any address they resolve to is allowed), addresses and CIDR ranges.
   * `ownAddresses`: this machine's addresses, refused like loopback (the hub must not call itself).
   */
  constructor(
    allow: readonly string[] = [],
    private readonly resolve: Resolve = dnsLookup as unknown as Resolve,
    ownAddresses: readonly string[] = addressesOfThisHost(),
  ) {
    for (const raw of allow) {
      const entry = raw.trim().toLowerCase();
      if (!isDestinationPattern(entry)) throw new Error(`invalid webhook target ${JSON.stringify(raw)} (expected a hostname, an IP address or a CIDR range)`);
      if (entry.includes('/')) this.ranges.push(ipaddr.parseCIDR(entry));
      else if (ipaddr.isValid(entry)) {
        const a = ipaddr.parse(entry);
        this.ranges.push([a, a.kind() === 'ipv4' ? 32 : 128]);
      } else this.hosts.add(entry.replace(/\.$/, ''));
    }
    this.own = new Set(ownAddresses.filter((a) => ipaddr.isValid(a)).map((a) => ipaddr.process(a).toNormalizedString()));
  }

  /** Why `address` may not be connected to, or undefined when it may. */
  refusal(address: string): string | undefined {
    if (!ipaddr.isValid(address)) return `${address} is not an IP address`;
    const parsed = ipaddr.parse(address);
    if (this.allowed(parsed)) return undefined;
    const v4 = parsed instanceof ipaddr.IPv6 ? embeddedIPv4(parsed) : undefined;
    if (v4 && this.allowed(v4)) return undefined;
    const effective = v4 ?? parsed;
    const range = effective.range();
    const hint = 'allow it with the webhooks.allowTargets setting';
    if (range !== 'unicast') return `${address} is a ${describeRange(range, v4 !== undefined)} address; ${hint}`;
    if (this.own.has(effective.toNormalizedString()) || this.own.has(parsed.toNormalizedString())) return `${address} is an address of this Wharf server; ${hint}`;
    return undefined;
  }

  /** Why the URL's host may not be sent to before any lookup (an address literal), or undefined. */
  literalRefusal(url: URL): string | undefined {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    return isIP(host) ? this.refusal(host) : undefined;
  }

  private hostAllowed(hostname: string): boolean {
    return this.hosts.has(hostname.toLowerCase().replace(/\.$/, ''));
  }

  private allowed(a: ipaddr.IPv4 | ipaddr.IPv6): boolean {
    return this.ranges.some(([base, bits]) => base.kind() === a.kind() && a.match(base as never, bits));
  }

  /**
   * The `lookup` of every outgoing connection: resolves the name, keeps only the addresses that may be
   * reached (or all of them, for an allowed name), and fails with DestinationRefused when none is left. The
   * socket connects to exactly what this returns, so the check and the connection cannot disagree.
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const named = this.hostAllowed(hostname);
      const reasons: string[] = [];
      const usable = named
        ? addresses
        : addresses.filter((a) => {
            const why = this.refusal(a.address);
            if (why) reasons.push(why);
            return why === undefined;
          });
      if (usable.length === 0) {
        const refused = new DestinationRefused(`refused: ${hostname} resolves to ${reasons[0] ?? 'no address'}`);
        return callback(refused, '', 0);
      }
      if (options.all) (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, usable);
      else callback(null, usable[0]!.address, usable[0]!.family);
    });
  };
}

function describeRange(range: string, embedded: boolean): string {
  const names: Record<string, string> = {
    unspecified: 'unspecified',
    broadcast: 'broadcast',
    multicast: 'multicast',
    linkLocal: 'link-local (cloud metadata)',
    loopback: 'loopback',
    carrierGradeNat: 'carrier-grade NAT',
    private: 'private',
    uniqueLocal: 'private (unique local)',
    reserved: 'reserved',
    rfc6145: 'IPv4-translated',
    rfc6052: 'NAT64',
    '6to4': '6to4',
    teredo: 'Teredo',
  };
  const name = names[range] ?? range;
  return embedded ? `${name} (as an IPv4-mapped IPv6)` : name;
}
