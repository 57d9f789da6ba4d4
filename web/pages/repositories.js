// The repositories page: search by name prefix, tag count, size, last push, cursor pages.
import { html, useState, useEffect } from '../vendor/preact-htm.js';
import { Empty, ErrorLine, More, Time, bytes, usePages } from '../ui.js';

/**
 * The commands of a first push, one a line. Joined here, not written into the template: htm drops whitespace that
 * holds a newline at the edge of a text part, so the line break right after `${host}` vanished and the first two
 * commands ran together.
 */
const firstPush = (host) => [`docker login ${host}`, `docker tag myapp:latest ${host}/myapp:1.0.0`, `docker push ${host}/myapp:1.0.0`].join('\n');

export function Repositories() {
  const [search, setSearch] = useState('');
  const [prefix, setPrefix] = useState('');
  useEffect(() => {
    const t = setTimeout(() => setPrefix(search.trim()), 200);
    return () => clearTimeout(t);
  }, [search]);
  const pages = usePages('/api/v1/repositories', { prefix, limit: 50 }, [prefix]);
  const host = location.host;
  return html`<main>
    <div class="title-row">
      <h1>Repositories</h1>
      <input type="search" placeholder="Search by name…" aria-label="Search repositories by name" value=${search} onInput=${(e) => setSearch(e.target.value)} />
    </div>
    <${ErrorLine} error=${pages.error} />
    ${!pages.loading && pages.items.length === 0
      ? prefix
        ? html`<${Empty} title=${`No repository starts with “${prefix}”.`} />`
        : html`<${Empty} title="Nothing pushed yet. Push your first image:">
            <pre><code>${firstPush(host)}</code></pre>
          <//>`
      : html`<table class="list">
          <thead><tr><th>Repository</th><th class="num">Tags</th><th class="num">Size</th><th>Last push</th></tr></thead>
          <tbody>
            ${pages.items.map(
              (r) => html`<tr>
                <td data-label="Repository"><a href=${`#/r/${encodeURIComponent(r.name)}`}>${r.name}</a></td>
                <td data-label="Tags" class="num">${r.tagCount}</td>
                <td data-label="Size" class="num">${bytes(r.size)}</td>
                <td data-label="Last push">${r.lastPush ? html`<${Time} t=${r.lastPush} />` : '–'}</td>
              </tr>`,
            )}
          </tbody>
        </table>`}
    <${More} pages=${pages} />
  </main>`;
}
