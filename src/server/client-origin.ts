// Where a request really came from, and over what scheme, when a TLS-terminating proxy stands in front:
// X-Forwarded-For and X-Forwarded-Proto are believed only when the connection comes from one of the
// `trustedProxies`; from anyone else they are whatever the client chose to write, and are ignored.
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { parseAddressOrCidr, unmapped } from '../config.js';

/**
 * One hop of X-Forwarded-For as an address: proxies write `203.0.113.7`, `2001:db8::1`, and some add a port
 * (`203.0.113.7:51234`, `[2001:db8::1]:51234`). Undefined for anything else (`unknown`, obfuscated names).
 */
function hopAddress(hop: string): string | undefined {
  let h = hop.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(h);
  if (bracketed) h = bracketed[1]!;
  else if (/^[\d.]+:\d+$/.test(h)) h = h.slice(0, h.lastIndexOf(':'));
  h = unmapped(h);
  return isIP(h) === 0 ? undefined : h;
}

export class ClientOrigin {
  private readonly trusted = new BlockList();
  private readonly any: boolean;

  /** `trustedProxies`: addresses and CIDR ranges, validated by the config schema. */
  constructor(trustedProxies: readonly string[] = []) {
    for (const entry of trustedProxies) {
      const parsed = parseAddressOrCidr(entry);
      if (!parsed) throw new Error(`invalid trusted proxy ${JSON.stringify(entry)} (expected an IP address or CIDR range)`);
      this.trusted.addSubnet(parsed.address, parsed.prefix, parsed.family);
    }
    this.any = trustedProxies.length > 0;
  }

  /**
   * The client's address. From a trusted proxy: the rightmost X-Forwarded-For hop that is not itself a
   * trusted proxy (each proxy appends the address it saw; everything to the left of the first untrusted hop
   * is the client's own say and worthless), or the leftmost hop when all are trusted. Otherwise the peer.
   */
  address(req: IncomingMessage): string {
    const peer = unmapped(req.socket.remoteAddress ?? 'unknown');
    if (!this.any || !this.isTrusted(peer)) return peer;
    const header = req.headers['x-forwarded-for'];
    if (header === undefined) return peer;
    const hops = (Array.isArray(header) ? header.join(',') : header).split(',');
    let client = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hopAddress(hops[i]!);
      // A hop that is no address cannot be judged: the last address known is the best answer.
      if (hop === undefined) return client;
      client = hop;
      if (!this.isTrusted(hop)) return hop;
    }
    return client;
  }

  /** The scheme the client used: X-Forwarded-Proto from a trusted proxy, else that of this connection. */
  scheme(req: IncomingMessage): 'http' | 'https' {
    const own = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
    if (!this.any || !this.isTrusted(unmapped(req.socket.remoteAddress ?? ''))) return own;
    const header = req.headers['x-forwarded-proto'];
    // A chain of proxies may list one scheme per hop; the first is the client's.
    const first = (Array.isArray(header) ? header[0] : header)?.split(',')[0]?.trim().toLowerCase();
    return first === 'https' || first === 'http' ? first : own;
  }

  private isTrusted(address: string): boolean {
    const version = isIP(address);
    return version !== 0 && this.trusted.check(address, version === 4 ? 'ipv4' : 'ipv6');
  }
}
