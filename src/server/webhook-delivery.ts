// The webhook dispatcher's outbound HTTP: one delivery attempt, POSTing the signed body with a deadline covering
// the whole exchange, connecting only where the destination policy allows (SSRF). Handed to the dispatcher by wharf.ts.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { signBody, SIGNATURE_HEADER } from '../webhooks/signature.js';
import { DestinationRefused, type DestinationPolicy } from '../webhooks/destinations.js';
import type { Outgoing, PostDelivery, PostOutcome } from '../webhooks/dispatcher.js';

const USER_AGENT = 'Wharf-Webhooks/0.1';
/** How much of a failed response's body is kept in the log. */
const ERROR_SNIPPET = 200;
/** How much of any response body is read before the connection is let go. */
const MAX_RESPONSE = 64 * 1024;

/**
 * POSTs one delivery. node:http rather than fetch: its `lookup` hook lets the destination policy judge the
 * address the socket really connects to (fetch resolves names where nothing can look). Redirects are
 * answers to log, never followed: the receiver is what the admin configured.
 */
export const postDelivery: PostDelivery = async (out: Outgoing, timeoutMs: number, policy: DestinationPolicy, stop?: AbortSignal): Promise<PostOutcome> => {
  const started = performance.now();
  const signal = stop ? AbortSignal.any([AbortSignal.timeout(timeoutMs), stop]) : AbortSignal.timeout(timeoutMs);
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const url = new URL(out.url);
    const literal = policy.literalRefusal(url);
    if (literal) throw new DestinationRefused(`refused: ${literal}`);
    const { status, text } = await send(url, out, policy, signal);
    const ok = status >= 200 && status < 300;
    const error = ok ? null : `HTTP ${status}${text ? `: ${text.slice(0, ERROR_SNIPPET)}` : ''}`;
    return { ok, statusCode: status, error, durationMs: elapsed() };
  } catch (e) {
    return { ok: false, statusCode: null, error: describe(e, signal, timeoutMs), durationMs: elapsed() };
  }
};

function send(url: URL, out: Outgoing, policy: DestinationPolicy, signal: AbortSignal): Promise<{ status: number; text: string }> {
  const body = Buffer.from(out.body);
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        signal,
        lookup: policy.lookup,
        // One connection per attempt: a pooled socket would skip the lookup, and deliveries are seconds apart.
        agent: false,
        headers: {
          'Content-Type': 'application/json',
          'Content-Length': body.length,
          'User-Agent': USER_AGENT,
          'X-Wharf-Event': out.event,
          'X-Wharf-Delivery': out.deliveryId,
          [SIGNATURE_HEADER]: signBody(out.secret, out.body),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const done = () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8').trim() });
        res.on('data', (c: Buffer) => {
          if (size >= MAX_RESPONSE) return;
          chunks.push(c);
          size += c.length;
          // Enough to say what went wrong; the rest is not read.
          if (size >= MAX_RESPONSE) {
            res.destroy();
            done();
          }
        });
        res.on('end', done);
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function describe(e: unknown, signal: AbortSignal, timeoutMs: number): string {
  if (signal.aborted) {
    const reason = signal.reason as Error | undefined;
    return reason?.name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : 'aborted: dispatcher stopped';
  }
  if (e instanceof DestinationRefused) return e.message;
  const err = e as Error & { code?: string };
  return err.code && !err.message.startsWith(err.code) ? `${err.code}: ${err.message}` : err.message;
}
