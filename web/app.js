// Wharf's web UI: the shell (sign-in, header, routing by URL hash) around the pages in pages/. Preact with htm,
// served from the npm package by the hub itself: no CDN, no build step. The browser holds a session cookie
// (HttpOnly) from POST /api/v1/session, so a new tab is signed in too; every change sends the CSRF token.
import { html, render, useEffect, useState } from './vendor/preact-htm.js';
import { api, onSignedOut } from './api.js';
import { ErrorLine } from './ui.js';
import { Repositories } from './pages/repositories.js';
import { Repository } from './pages/repository.js';
import { Image } from './pages/image.js';
import { Delivery } from './pages/delivery.js';
import { Deployments } from './pages/deployments.js';
import { Admin } from './pages/admin.js';

function useHash() {
  const [hash, setHash] = useState(location.hash.replace(/^#/, '') || '/');
  useEffect(() => {
    const f = () => setHash(location.hash.replace(/^#/, '') || '/');
    addEventListener('hashchange', f);
    return () => removeEventListener('hashchange', f);
  }, []);
  return hash;
}

function SignIn({ onSignedIn }) {
  const [error, setError] = useState();
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    setBusy(true);
    try {
      const me = await api('/api/v1/session', { method: 'POST', body: { username: f.get('username'), password: f.get('password') } });
      onSignedIn(me);
    } catch (err) {
      setError(err.status === 401 ? new Error('Wrong user name or password.') : err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="signin">
    <form class="card" onSubmit=${submit}>
      <h1><span class="logo" aria-hidden="true">⚓</span> Wharf</h1>
      <label>User name <input name="username" autocomplete="username" required autofocus /></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required /></label>
      <button type="submit" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
      <${ErrorLine} error=${error} />
      <p class="muted small">Scripts and CI use tokens: <code>wharf login</code>, or <code>Authorization: Bearer</code>.</p>
    </form>
  </main>`;
}

function Header({ me, onSignOut, hash }) {
  const here = (p) => (p === '/' ? hash === '/' || hash.startsWith('/r/') : hash.startsWith(p)) ? 'page' : undefined;
  return html`<header class="top">
    <a href="#/" class="brand"><span aria-hidden="true">⚓</span> Wharf</a>
    <nav aria-label="Main">
      <a href="#/" aria-current=${here('/')}>Repositories</a>
      ${me.admin ? html`<a href="#/admin/users" aria-current=${here('/admin')}>Admin</a>` : null}
    </nav>
    <span class="me">
      ${me.user ? html`<span class="who" title=${me.admin ? 'administrator' : 'member'}>${me.user}${me.admin ? html` <span class="badge">admin</span>` : null}</span>` : null}
      ${me.kind === 'user' ? html`<button type="button" class="ghost" onClick=${onSignOut}>Sign out</button>` : null}
    </span>
  </header>`;
}

function Page({ hash, me }) {
  const parts = hash.split('/').filter(Boolean);
  if (parts[0] === 'r' && parts[1]) {
    const name = decodeURIComponent(parts[1]);
    const view = parts[2] ?? 'tags';
    if (view === 'image' && parts[3]) return html`<${Image} name=${name} digest=${decodeURIComponent(parts[3])} me=${me} />`;
    if (view === 'delivery') return html`<${Delivery} name=${name} me=${me} />`;
    if (view === 'deployments') return html`<${Deployments} name=${name} me=${me} />`;
    return html`<${Repository} name=${name} view=${view} me=${me} />`;
  }
  if (parts[0] === 'admin') {
    if (!me.admin) return html`<main><p class="error">Administration needs the admin role. Ask an administrator.</p></main>`;
    return html`<${Admin} tab=${parts[1] ?? 'users'} me=${me} />`;
  }
  return html`<${Repositories} me=${me} />`;
}

function App() {
  const [me, setMe] = useState(undefined);
  const [error, setError] = useState();
  const hash = useHash();
  useEffect(() => {
    onSignedOut(() => setMe(null));
    api('/api/v1/session').then(setMe, (e) => (e.status === 401 ? setMe(null) : setError(e)));
  }, []);
  const signOut = async () => {
    try {
      await api('/api/v1/session', { method: 'DELETE' });
    } finally {
      setMe(null);
    }
  };
  if (error) return html`<main><${ErrorLine} error=${error} /></main>`;
  if (me === undefined) return html`<p class="loading">Loading…</p>`;
  if (me === null) return html`<${SignIn} onSignedIn=${setMe} />`;
  return html`<${Header} me=${me} hash=${hash} onSignOut=${signOut} /><${Page} hash=${hash} me=${me} />`;
}

render(html`<${App} />`, document.getElementById('root'));
