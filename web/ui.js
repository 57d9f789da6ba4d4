// Small shared pieces of the UI: formatting, copy buttons, paged lists, confirmation dialogs, empty states.
import { html, useEffect, useState, useRef, useCallback } from './vendor/preact-htm.js';
import { api, apiPage, query } from './api.js';

export const shortDigest = (d) => (d ? d.replace(/^sha256:/, '').slice(0, 12) : '–');
export const when = (t) => (t ? new Date(t).toLocaleString() : '–');

export function ago(t) {
  if (!t) return '–';
  const s = Math.round((Date.now() - new Date(t).getTime()) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function bytes(n) {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

export const Time = ({ t }) => html`<time datetime=${t ? new Date(t).toISOString() : ''} title=${when(t)}>${ago(t)}</time>`;

export const Digest = ({ d }) => html`<code class="digest" title=${d}>${shortDigest(d)}</code>`;

export function Copy({ text, label }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // clipboard refused (http, permissions): select the text so the user can copy it
      const r = document.createRange();
      const el = document.querySelector(`[data-copy="${CSS.escape(text)}"]`);
      if (el) {
        r.selectNodeContents(el);
        getSelection().removeAllRanges();
        getSelection().addRange(r);
      }
    }
    setDone(true);
    setTimeout(() => setDone(false), 1500);
  };
  return html`<span class="copy"><code data-copy=${text}>${text}</code><button type="button" class="secondary small" onClick=${copy} aria-label=${`Copy ${label ?? text}`}>${done ? 'Copied' : 'Copy'}</button></span>`;
}

export const Empty = ({ title, children }) => html`<div class="empty"><strong>${title}</strong>${children}</div>`;

export const ErrorLine = ({ error }) => (error ? html`<p class="error" role="alert">${error.message ?? String(error)}</p>` : null);

/** Loads once per key; returns [value, error, reload]. */
export function useLoad(load, keys) {
  const [state, setState] = useState({ value: undefined, error: undefined });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ value: s.value, error: undefined }));
    load().then(
      (value) => live && setState({ value, error: undefined }),
      (error) => live && setState({ value: undefined, error }),
    );
    return () => (live = false);
  }, [...keys, n]);
  return [state.value, state.error, useCallback(() => setN((x) => x + 1), [])];
}

/** A cursor-paginated list: items so far, "Load more" while the server has a next page. */
export function usePages(path, params, keys) {
  const [items, setItems] = useState([]);
  const [next, setNext] = useState(null);
  const [error, setError] = useState();
  const [loading, setLoading] = useState(true);
  const gen = useRef(0);
  const load = async (cursor) => {
    const mine = ++gen.current;
    setLoading(true);
    try {
      const page = await apiPage(path + query({ ...params, cursor }));
      if (mine !== gen.current) return;
      setItems((old) => (cursor ? [...old, ...page.items] : page.items));
      setNext(page.next);
      setError(undefined);
    } catch (e) {
      if (mine === gen.current) setError(e);
    } finally {
      if (mine === gen.current) setLoading(false);
    }
  };
  useEffect(() => {
    load(undefined);
  }, keys);
  return { items, error, loading, more: next ? () => load(next) : null, reload: () => load(undefined) };
}

/** The rows of `pages` once the first page is in (undefined before, or when it failed): for empty states. */
export const loadedItems = (pages) => (pages.error || (pages.loading && pages.items.length === 0) ? undefined : pages.items);

export const More = ({ pages }) =>
  pages.more ? html`<div class="more"><button type="button" class="secondary" onClick=${pages.more} disabled=${pages.loading}>${pages.loading ? 'Loading…' : 'Load more'}</button></div>` : null;

/** A modal dialog (the native <dialog>: focus trapped, Escape closes). */
export function Dialog({ title, onClose, children }) {
  const ref = useRef();
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    const close = (e) => {
      e.preventDefault();
      onClose();
    };
    d.addEventListener('cancel', close);
    return () => d.removeEventListener('cancel', close);
  }, []);
  return html`<dialog ref=${ref} class="dialog" aria-label=${title}>
    <header><h2>${title}</h2><button type="button" class="icon" onClick=${onClose} aria-label="Close dialog">✕</button></header>
    ${children}
  </dialog>`;
}

/** A button the user may not press: shown disabled with the server's reason (or hidden when `hide`). */
export function Action({ allowed, reason, onClick, children, cls = '', hide }) {
  if (!allowed && hide) return null;
  return html`<button type="button" class=${cls} onClick=${onClick} disabled=${!allowed} title=${allowed ? '' : reason}>${children}</button>`;
}

export function Tabs({ tabs, current }) {
  return html`<nav class="tabs" aria-label="Sections">${tabs.map(
    (t) => html`<a href=${t.href} aria-current=${t.id === current ? 'page' : undefined} class=${t.id === current ? 'active' : ''}>${t.label}</a>`,
  )}</nav>`;
}

/**
 * What the signed-in user may do on a repository (and environment), as the server decides it; `explicit` for a
 * protected environment, where release counts only a grant naming `release:ENV`.
 */
export function useAccess(repository, environment, explicit) {
  const [value] = useLoad(() => api(`/api/v1/access${query({ repository, environment, explicit: explicit ? 'true' : undefined })}`), [repository, environment, !!explicit]);
  const actions = new Set(value?.actions ?? []);
  return { known: value !== undefined, can: (a) => actions.has(a) };
}

export const reasonFor = (action, repository, environment, explicit) =>
  explicit
    ? `${repository}/${environment} is protected: only users granted release:${environment} on it may change it (the admin role is not enough).`
    : `You may not ${action}${environment ? ` to ${environment}` : ''} on ${repository}: ask an administrator for a ${action}${environment ? `:${environment}` : ''} grant.`;

/** The repository header and its section tabs. */
export function RepoHeader({ name, view }) {
  const base = `#/r/${encodeURIComponent(name)}`;
  return html`<div class="repo-head">
    <p class="crumbs"><a href="#/">Repositories</a> /</p>
    <h1>${name}</h1>
    <${Tabs}
      current=${view}
      tabs=${[
        { id: 'tags', label: 'Tags', href: base },
        { id: 'delivery', label: 'Delivery', href: `${base}/delivery` },
        { id: 'deployments', label: 'Deployments', href: `${base}/deployments` },
        { id: 'history', label: 'Tag history', href: `${base}/history` },
      ]}
    />
  </div>`;
}
