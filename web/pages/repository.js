// A repository: its tags (digest, size, platforms, pushed by and when; filter, sort, pages) with copyable
// docker pull lines by tag and by digest, and the tag history timeline with "restore this tag".
import { html, useState, useEffect } from '../vendor/preact-htm.js';
import { api, repoPath, query } from '../api.js';
import { Copy, Digest, Empty, ErrorLine, More, loadedItems, RepoHeader, Time, bytes, reasonFor, useAccess, useLoad, usePages, Dialog } from '../ui.js';

export function Repository({ name, view }) {
  return html`<main>
    <${RepoHeader} name=${name} view=${view} />
    ${view === 'history' ? html`<${History} name=${name} />` : html`<${Tags} name=${name} />`}
  </main>`;
}

function Tags({ name }) {
  const [filter, setFilter] = useState('');
  const [prefix, setPrefix] = useState('');
  const [sort, setSort] = useState('pushed');
  const [picked, setPicked] = useState();
  useEffect(() => {
    const t = setTimeout(() => setPrefix(filter.trim()), 200);
    return () => clearTimeout(t);
  }, [filter]);
  const pages = usePages(`/api/v1/repositories/${repoPath(name)}/tags`, { prefix, sort, limit: 50 }, [name, prefix, sort]);
  const host = location.host;
  const chosen = picked ?? pages.items[0];
  return html`
    ${chosen
      ? html`<section class="card pull" aria-label="Pull commands">
          <div><span class="label">By tag</span><${Copy} text=${`docker pull ${host}/${name}:${chosen.name}`} label="pull by tag" /></div>
          <div><span class="label">By digest</span><${Copy} text=${`docker pull ${host}/${name}@${chosen.digest}`} label="pull by digest" /></div>
        </section>`
      : null}
    <div class="toolbar">
      <input type="search" placeholder="Filter tags…" aria-label="Filter tags by prefix" value=${filter} onInput=${(e) => setFilter(e.target.value)} />
      <label class="inline">Sort <select value=${sort} onChange=${(e) => setSort(e.target.value)}>
        <option value="pushed">Newest push</option><option value="name">Name</option>
      </select></label>
    </div>
    <${ErrorLine} error=${pages.error} />
    ${!pages.loading && pages.items.length === 0
      ? html`<${Empty} title=${prefix ? `No tag starts with “${prefix}”.` : 'No tags.'}>${prefix ? null : html`<pre><code>docker push ${host}/${name}:1.0.0</code></pre>`}<//>`
      : html`<table class="list">
          <thead><tr><th>Tag</th><th>Digest</th><th class="num">Size</th><th>Platforms</th><th>Pushed</th></tr></thead>
          <tbody>
            ${pages.items.map(
              (t) => html`<tr class=${chosen?.name === t.name ? 'picked' : ''}>
                <td data-label="Tag"><button type="button" class="link" onClick=${() => setPicked(t)} aria-label=${`Show pull commands for ${t.name}`}>${t.name}</button></td>
                <td data-label="Digest"><a href=${`#/r/${encodeURIComponent(name)}/image/${encodeURIComponent(t.digest)}`}><${Digest} d=${t.digest} /></a></td>
                <td data-label="Size" class="num">${bytes(t.size)}</td>
                <td data-label="Platforms">${t.platforms.length ? t.platforms.map((p) => html`<span class="chip">${p}</span>`) : html`<span class="muted">${t.kind}</span>`}</td>
                <td data-label="Pushed"><${Time} t=${t.pushedAt} />${t.pushedBy ? html` <span class="muted">by ${t.pushedBy}</span>` : null}</td>
              </tr>`,
            )}
          </tbody>
        </table>`}
    <${More} pages=${pages} />`;
}

function History({ name }) {
  const access = useAccess(name);
  const pages = usePages(`/api/v1/repositories/${repoPath(name)}/tags/history`, { limit: 100 }, [name]);
  const { error, reload } = pages;
  const rows = loadedItems(pages);
  const [tag, setTag] = useState('');
  const [restoring, setRestoring] = useState();
  const current = new Map();
  for (const h of rows ?? []) if (!current.has(h.tag)) current.set(h.tag, h.newDigest);
  const shown = (rows ?? []).filter((h) => !tag || h.tag.startsWith(tag));
  return html`
    <div class="toolbar"><input type="search" placeholder="Filter by tag…" aria-label="Filter history by tag" value=${tag} onInput=${(e) => setTag(e.target.value)} /></div>
    <${ErrorLine} error=${error} />
    ${rows && shown.length === 0 ? html`<${Empty} title="No tag changes recorded yet." />` : null}
    <ol class="timeline">
      ${shown.map(
        (h) => html`<li>
          <div class="when"><${Time} t=${h.at} /></div>
          <div class="what">
            <strong>${h.tag}</strong>
            ${h.newDigest === null ? ' deleted' : h.oldDigest === null ? ' created at ' : ' moved '}
            ${h.oldDigest && h.newDigest ? html`<${Digest} d=${h.oldDigest} /> → ` : null}
            ${h.newDigest ? html`<a href=${`#/r/${encodeURIComponent(name)}/image/${encodeURIComponent(h.newDigest)}`}><${Digest} d=${h.newDigest} /></a>` : null}
            <span class="muted"> by ${h.actor ?? 'anonymous'}</span>
          </div>
          ${h.newDigest && h.newDigest !== current.get(h.tag)
            ? html`<button type="button" class="secondary small" disabled=${!access.can('push')} title=${access.can('push') ? `Point ${h.tag} at this digest again` : reasonFor('push', name)}
                onClick=${() => setRestoring(h)}>Restore</button>`
            : null}
        </li>`,
      )}
    </ol>
    <${More} pages=${pages} />
    ${restoring ? html`<${Restore} name=${name} change=${restoring} current=${current.get(restoring.tag)} onClose=${() => setRestoring(undefined)} onDone=${() => (setRestoring(undefined), reload())} />` : null}`;
}

function Restore({ name, change, current, onClose, onDone }) {
  const [error, setError] = useState();
  const [busy, setBusy] = useState(false);
  const go = async () => {
    setBusy(true);
    try {
      await api(`/api/v1/repositories/${repoPath(name)}/tags/${encodeURIComponent(change.tag)}/restore`, { method: 'POST', body: { to: change.newDigest } });
      onDone();
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return html`<${Dialog} title=${`Restore ${name}:${change.tag}`} onClose=${onClose}>
    <p>The tag moves back to the digest it had on ${new Date(change.at).toLocaleString()}:</p>
    <p class="change"><${Digest} d=${current} /> → <${Digest} d=${change.newDigest} /></p>
    <${ErrorLine} error=${error} />
    <div class="buttons"><button type="button" class="secondary" onClick=${onClose}>Cancel</button><button type="button" onClick=${go} disabled=${busy}>Restore tag</button></div>
  <//>`;
}
