// Wharf's web UI: repositories, tags with their history, environments and releases. Plain ES modules, no
// build step; it reads the same /v2 and /api/v1 endpoints as every other client, with the same credentials.

const view = document.getElementById('view');
const who = document.getElementById('who');

const auth = {
  get header() {
    return sessionStorage.getItem('wharf.auth');
  },
  set(username, password) {
    sessionStorage.setItem('wharf.auth', 'Basic ' + btoa(`${username}:${password}`));
    sessionStorage.setItem('wharf.user', username);
  },
  clear() {
    sessionStorage.removeItem('wharf.auth');
    sessionStorage.removeItem('wharf.user');
  },
};

class Unauthorized extends Error {}

async function api(path, init = {}) {
  const headers = { Accept: 'application/json', ...(init.headers || {}) };
  if (auth.header) headers.Authorization = auth.header;
  const res = await fetch(path, { ...init, headers });
  if (res.status === 401) throw new Unauthorized('sign in required');
  const text = await res.text();
  const body = text ? JSON.parse(text) : undefined;
  if (!res.ok) throw new Error(body?.errors?.[0]?.message || `${res.status} ${res.statusText}`);
  return body;
}

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const short = (d) => (d ? esc(d.slice(0, 19)) : '–');
const when = (t) => (t ? new Date(t).toLocaleString() : '–');
const repoPath = (name) => name.split('/').map(encodeURIComponent).join('/');

function renderWho() {
  const user = sessionStorage.getItem('wharf.user');
  who.innerHTML = user ? `${esc(user)} <button class="secondary" id="logout">Sign out</button>` : '';
  document.getElementById('logout')?.addEventListener('click', () => {
    auth.clear();
    route();
  });
}

function showLogin(message) {
  view.replaceChildren(document.getElementById('login').content.cloneNode(true));
  if (message) document.getElementById('login-error').textContent = message;
  document.getElementById('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    auth.set(f.get('username'), f.get('password'));
    try {
      await api('/v2/');
      route();
    } catch (err) {
      auth.clear();
      document.getElementById('login-error').textContent = err instanceof Unauthorized ? 'Wrong username or password' : err.message;
    }
  });
}

async function repositories() {
  const { repositories } = await api('/v2/_catalog');
  view.innerHTML = `<h1>Repositories</h1>` + (repositories.length === 0
    ? `<p class="muted">Nothing pushed yet. <code>docker push ${esc(location.host)}/myapp:1.0.0</code></p>`
    : `<table><thead><tr><th>Repository</th></tr></thead><tbody>${repositories
        .map((r) => `<tr><td><a href="#/repo/${esc(r)}">${esc(r)}</a></td></tr>`)
        .join('')}</tbody></table>`);
}

async function repository(name) {
  const [tags, history, envs, releases] = await Promise.all([
    api(`/v2/${repoPath(name)}/tags/list`),
    api(`/api/v1/repositories/${repoPath(name)}/tags/history`).catch(() => []),
    api(`/api/v1/apps/${repoPath(name)}/environments`).catch(() => []),
    api(`/api/v1/apps/${repoPath(name)}/releases?limit=50`).catch(() => []),
  ]);
  const envCards = envs
    .map((e) => `<div class="card env"><h3>${esc(e.name)}</h3>
      ${e.current ? `<div>${esc(e.current.version ?? e.current.tag ?? '')} <span class="digest">${short(e.current.digest)}</span></div>
        <div class="muted">${esc(e.current.kind)} by ${esc(e.current.actor ?? 'anonymous')}, ${when(e.current.createdAt)}</div>` : '<div class="muted">no release yet</div>'}
      ${e.pending ? `<div class="muted">pending (not deployed yet): ${esc(e.pending.version ?? e.pending.tag ?? '')} <span class="digest">${short(e.pending.digest)}</span></div>` : ''}
      <div class="muted">${e.requiresPromotionFrom ? `promotion from ${esc(e.requiresPromotionFrom)}` : ''}${e.protected ? ' · protected' : ''}${e.requiresApproval ? ' · requires approval' : ''}</div>
      <div><code>docker pull ${esc(location.host)}/${esc(name)}:${esc(e.name)}</code></div></div>`)
    .join('');
  // `attestations`: the kinds of verified attestation the released digest has (e.g. ["tests"]).
  const attested = (r) =>
    !Array.isArray(r.attestations) ? '' : r.attestations.length ? `<span class="ok">✔ ${r.attestations.map(esc).join(', ')}</span>` : '<span class="muted">not attested</span>';
  // `deployment`: the release's newest deployment (null: never deployed); a failed one says why on hover.
  const deployed = (r) =>
    !r.deployment ? '' : `<span class="${r.deployment.status === 'succeeded' ? 'ok' : r.deployment.status === 'running' ? 'muted' : 'error'}" title="${esc(r.deployment.reason ?? '')}">#${r.deployment.id} ${esc(r.deployment.status.replace('_', ' '))}${r.deployment.status === 'needs_operator' || r.deployment.status === 'paused' ? ' ⚠' : ''}</span>`;
  view.innerHTML = `<h1>${esc(name)}</h1>
    <h2>Environments</h2>${envs.length ? `<div class="envs">${envCards}</div>` : '<p class="muted">No environments. <code>wharf env create APP ENV</code></p>'}
    <h2>Releases</h2>${releases.length ? `<table><thead><tr><th>#</th><th>Environment</th><th>Kind</th><th>Version</th><th>Digest</th><th>Who</th><th>When</th><th>Note</th><th>Attested</th><th>Deployed</th></tr></thead><tbody>${releases
      .map((r) => `<tr><td>${r.id}</td><td>${esc(r.environment)}</td><td><span class="pill ${esc(r.kind)}">${esc(r.kind)}</span></td><td>${esc(r.version ?? r.tag ?? '')}</td>
        <td class="digest">${short(r.digest)}</td><td>${esc(r.actor ?? '–')}</td><td>${when(r.createdAt)}</td><td>${esc(r.note ?? '')}</td><td>${attested(r)}</td><td>${deployed(r)}</td></tr>`)
      .join('')}</tbody></table>` : '<p class="muted">No releases yet.</p>'}
    <h2>Tags</h2><table><thead><tr><th>Tag</th></tr></thead><tbody>${(tags.tags || []).map((t) => `<tr><td>${esc(t)}</td></tr>`).join('')}</tbody></table>
    <h2>Tag history</h2>${history.length ? `<table><thead><tr><th>Tag</th><th>From</th><th>To</th><th>Who</th><th>When</th></tr></thead><tbody>${history
      .slice(0, 100)
      .map((h) => `<tr><td>${esc(h.tag)}</td><td class="digest">${short(h.oldDigest)}</td><td class="digest">${short(h.newDigest)}</td><td>${esc(h.actor ?? '–')}</td><td>${when(h.at)}</td></tr>`)
      .join('')}</tbody></table>` : '<p class="muted">No tag changes recorded.</p>'}`;
}

async function route() {
  renderWho();
  const hash = location.hash.replace(/^#/, '') || '/';
  try {
    if (hash.startsWith('/repo/')) await repository(decodeURIComponent(hash.slice('/repo/'.length)));
    else await repositories();
  } catch (err) {
    if (err instanceof Unauthorized) showLogin(auth.header ? 'Your credentials were refused' : '');
    else view.innerHTML = `<p class="error">${esc(err.message)}</p>`;
  }
  renderWho();
}

window.addEventListener('hashchange', route);
route();
