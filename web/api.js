// How the UI talks to the hub: /api/v1 and /v2 with the session cookie, the CSRF token on every change, the
// consistent error body turned into a message, cursor pages, and NDJSON progress streams.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const listeners = new Set();
/** Called with no argument when the server says the session is gone (401): the app shows sign-in. */
export function onSignedOut(f) {
  listeners.add(f);
}

export function csrfToken() {
  return /(?:^|;\s*)wharf_csrf=([^;]+)/.exec(document.cookie)?.[1] ?? '';
}

async function send(path, { method = 'GET', body, accept = 'application/json' } = {}) {
  const headers = { Accept: accept };
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  if (!res.ok) {
    let code = 'UNKNOWN';
    let message = `${res.status} ${res.statusText}`;
    try {
      const e = (await res.json()).errors?.[0];
      if (e) ({ code, message } = e);
    } catch {
      // not JSON
    }
    if (res.status === 401 && path !== '/api/v1/session') for (const f of listeners) f();
    throw new ApiError(res.status, code, message);
  }
  return res;
}

export async function api(path, init) {
  const res = await send(path, init);
  if (res.status === 204) return undefined;
  const text = await res.text();
  return text ? JSON.parse(text) : undefined;
}

/**
 * One page of a list: `{items, next}`, whether the server answers that shape or a JSON array with the next
 * page in its `Link: <…?cursor=…>; rel="next"` header (the lists that were arrays before they were paged).
 */
export async function apiPage(path) {
  const res = await send(path);
  const body = await res.json();
  if (!Array.isArray(body)) return body;
  const link = /<([^>]*)>\s*;\s*rel="?next"?/.exec(res.headers.get('link') ?? '')?.[1];
  return { items: body, next: link ? new URL(link, location.href).searchParams.get('cursor') : null };
}

/**
 * Every row of a list the server pages by its `Link` header, read page after page (the environments of an
 * app: promotion order needs them all, and an app has a handful).
 */
export async function apiAll(path) {
  const rows = [];
  for (let next = path, pages = 0; next && pages < 100; pages++) {
    const res = await send(next);
    rows.push(...(await res.json()));
    next = /<([^>]*)>\s*;\s*rel="?next"?/.exec(res.headers.get('link') ?? '')?.[1];
  }
  return rows;
}

/** A raw response (manifests and blobs from /v2). */
export function fetchRaw(path, accept) {
  return send(path, { accept });
}

/** POSTs and calls `onLine` with each JSON line of an NDJSON answer (or once with a plain JSON answer). */
export async function stream(path, body, onLine) {
  const res = await send(path, { method: 'POST', body, accept: 'application/x-ndjson, application/json' });
  if (!(res.headers.get('content-type') ?? '').startsWith('application/x-ndjson')) {
    const text = await res.text();
    if (text) onLine(JSON.parse(text));
    return;
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) onLine(JSON.parse(line));
    }
  }
  if (buffered.trim()) onLine(JSON.parse(buffered));
}

/** `team/app` → `team/app` with each segment encoded (slashes stay: they are part of the route). */
export const repoPath = (name) => name.split('/').map(encodeURIComponent).join('/');

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
