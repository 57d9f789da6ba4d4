// One delivery attempt over HTTP: POST the signed body, with a deadline covering the whole exchange.
import { signBody, SIGNATURE_HEADER } from './signature.js';

export interface Outgoing {
  url: string;
  secret: string;
  deliveryId: string;
  event: string;
  body: string;
}

export interface PostOutcome {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

const USER_AGENT = 'Wharf-Webhooks/0.1';
/** How much of a failed response's body is kept in the log. */
const ERROR_SNIPPET = 200;
/** How much of any response body is read before the connection is let go. */
const MAX_RESPONSE = 64 * 1024;

export async function postDelivery(out: Outgoing, timeoutMs: number, stop?: AbortSignal): Promise<PostOutcome> {
  const started = performance.now();
  const signal = stop ? AbortSignal.any([AbortSignal.timeout(timeoutMs), stop]) : AbortSignal.timeout(timeoutMs);
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const res = await fetch(out.url, {
      method: 'POST',
      // A redirect is an answer to log, not to follow: the receiver is what the admin configured.
      redirect: 'manual',
      signal,
      headers: {
        'Content-Type': 'application/json',
        'User-Agent': USER_AGENT,
        'X-Wharf-Event': out.event,
        'X-Wharf-Delivery': out.deliveryId,
        [SIGNATURE_HEADER]: signBody(out.secret, out.body),
      },
      body: out.body,
    });
    const text = await readSome(res);
    const ok = res.status >= 200 && res.status < 300;
    const error = ok ? null : `HTTP ${res.status}${text ? `: ${text.slice(0, ERROR_SNIPPET)}` : ''}`;
    return { ok, statusCode: res.status, error, durationMs: elapsed() };
  } catch (e) {
    return { ok: false, statusCode: null, error: describe(e, signal, timeoutMs), durationMs: elapsed() };
  }
}

async function readSome(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < MAX_RESPONSE) {
    const { done, value } = await reader.read();
    if (done) return Buffer.concat(chunks).toString('utf8').trim();
    chunks.push(value);
    size += value.length;
  }
  await reader.cancel();
  return Buffer.concat(chunks).toString('utf8').trim();
}

function describe(e: unknown, signal: AbortSignal, timeoutMs: number): string {
  if (signal.aborted) {
    const reason = signal.reason as Error | undefined;
    return reason?.name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : 'aborted: dispatcher stopped';
  }
  const err = e as Error & { cause?: { code?: string; message?: string } };
  const cause = err.cause;
  return cause?.code ? `${cause.code}: ${cause.message ?? err.message}` : err.message;
}
