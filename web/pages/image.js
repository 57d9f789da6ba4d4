// An image by digest: the manifest or index with its platforms, layers with sizes, the config (entrypoint,
// cmd, env names, labels, exposed ports, created), attestations with their verification, and every
// environment and release it is in. Read through /v2 and /api/v1 with the session, like any client.
import { html } from '../vendor/preact-htm.js';
import { api, apiAll, fetchRaw, repoPath } from '../api.js';
import { Copy, Digest, Empty, ErrorLine, RepoHeader, Time, bytes, useLoad } from '../ui.js';

const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

async function loadImage(name, digest) {
  const manifest = await (await fetchRaw(`/v2/${repoPath(name)}/manifests/${digest}`, MANIFEST_TYPES)).json();
  const isIndex = Array.isArray(manifest.manifests);
  let config;
  if (!isIndex && manifest.config?.digest && manifest.config.size < 1 << 20) {
    try {
      config = await (await fetchRaw(`/v2/${repoPath(name)}/blobs/${manifest.config.digest}`, 'application/json, */*')).json();
    } catch {
      config = undefined;
    }
  }
  const [attestations, releases, environments] = await Promise.all([
    api(`/api/v1/apps/${repoPath(name)}/attestations/${digest}`).then((a) => a.attestations, () => []),
    apiAll(`/api/v1/apps/${repoPath(name)}/releases?limit=500&digest=${encodeURIComponent(digest)}`).catch(() => []),
    apiAll(`/api/v1/apps/${repoPath(name)}/environments?limit=500`).catch(() => []),
  ]);
  return { manifest, isIndex, config, attestations, releases: releases.filter((r) => r.digest === digest), environments: environments.filter((e) => e.current?.digest === digest) };
}

const platform = (p) => (p ? [p.os, p.architecture, p.variant].filter(Boolean).join('/') : '–');

export function Image({ name, digest }) {
  const [img, error] = useLoad(() => loadImage(name, digest), [name, digest]);
  const host = location.host;
  return html`<main>
    <${RepoHeader} name=${name} view="image" />
    <h2 class="digest-title"><${Digest} d=${digest} /> <span class="muted small">${img?.manifest.mediaType ?? ''}</span></h2>
    <section class="card pull"><div><span class="label">Pull</span><${Copy} text=${`docker pull ${host}/${name}@${digest}`} label="pull by digest" /></div></section>
    <${ErrorLine} error=${error} />
    ${img ? html`<${ImageBody} name=${name} digest=${digest} img=${img} />` : error ? null : html`<p class="loading">Loading…</p>`}
  </main>`;
}

function ImageBody({ name, digest, img }) {
  const { manifest, isIndex, config } = img;
  const c = config?.config ?? {};
  const layers = isIndex ? [] : manifest.layers ?? [];
  const total = layers.reduce((n, l) => n + l.size, 0) + (manifest.config?.size ?? 0);
  return html`
    <div class="grid2">
      <section class="card">
        <h3>${isIndex ? 'Platforms (index)' : 'Image'}</h3>
        ${isIndex
          ? html`<ul class="plain">${manifest.manifests.map(
              (m) => html`<li><span class="chip">${platform(m.platform)}</span> <a href=${`#/r/${encodeURIComponent(name)}/image/${encodeURIComponent(m.digest)}`}><${Digest} d=${m.digest} /></a> <span class="muted">${bytes(m.size)}</span></li>`,
            )}</ul>`
          : html`<dl class="facts">
              <dt>Platform</dt><dd><span class="chip">${config ? platform(config) : '–'}</span></dd>
              <dt>Size</dt><dd>${bytes(total)} in ${layers.length} layer${layers.length === 1 ? '' : 's'}</dd>
              <dt>Created</dt><dd>${config?.created ? html`<${Time} t=${config.created} />` : '–'}</dd>
              <dt>Entrypoint</dt><dd><code>${c.Entrypoint ? JSON.stringify(c.Entrypoint) : '–'}</code></dd>
              <dt>Cmd</dt><dd><code>${c.Cmd ? JSON.stringify(c.Cmd) : '–'}</code></dd>
              <dt>Ports</dt><dd>${c.ExposedPorts ? Object.keys(c.ExposedPorts).map((p) => html`<span class="chip">${p}</span>`) : '–'}</dd>
              <dt>Env</dt><dd>${(c.Env ?? []).length ? (c.Env ?? []).map((e) => html`<span class="chip" title="values are not shown">${e.split('=')[0]}</span>`) : '–'}</dd>
              <dt>Workdir</dt><dd><code>${c.WorkingDir || '–'}</code></dd>
            </dl>`}
      </section>
      <section class="card">
        <h3>Attestations</h3>
        ${img.attestations.length === 0
          ? html`<p class="muted">None. Attest with <code>wharf pipeline run</code> or <code>POST /api/v1/apps/${name}/attestations</code>.</p>`
          : html`<ul class="plain">${img.attestations.map(
              (a) => html`<li class="attestation">
                <span class=${a.verified ? 'good' : 'bad'}>${a.verified ? '✔ verified' : '✘ not verified'}</span>${' '}<strong>${a.kind ?? 'unknown'}</strong>
                ${a.signer ? html` <span class="muted">signed by ${a.signer.name}</span>` : null}
                ${a.reason ? html` <span class="bad">${a.reason}</span>` : null}
                ${a.commit ? html` <span class="muted">commit ${a.commit.slice(0, 10)}</span>` : null}
                <div><${Digest} d=${a.digest} /></div>
              </li>`,
            )}</ul>`}
        <h3>Environments</h3>
        ${img.environments.length ? img.environments.map((e) => html`<span class="chip env-chip">${e.name}</span>`) : html`<p class="muted">Not current in any environment.</p>`}
        <h3>Releases</h3>
        ${img.releases.length
          ? html`<ul class="plain">${img.releases.map((r) => html`<li>#${r.id} <strong>${r.environment}</strong> ${r.version ?? r.tag ?? ''} <span class="muted">${r.kind} by ${r.actor ?? '–'}, <${Time} t=${r.createdAt} /></span></li>`)}</ul>`
          : html`<p class="muted">Never released. <a href=${`#/r/${encodeURIComponent(name)}/delivery`}>Release it</a>.</p>`}
      </section>
    </div>
    ${isIndex
      ? null
      : html`<section>
          <h3>Layers</h3>
          ${layers.length === 0
            ? html`<${Empty} title="No layers (an artifact)." />`
            : html`<table class="list">
                <thead><tr><th>#</th><th>Digest</th><th>Media type</th><th class="num">Size</th></tr></thead>
                <tbody>${layers.map(
                  (l, i) => html`<tr><td data-label="#">${i + 1}</td><td data-label="Digest"><${Digest} d=${l.digest} /></td><td data-label="Type" class="muted small">${l.mediaType}</td><td data-label="Size" class="num">${bytes(l.size)}</td></tr>`,
                )}</tbody>
              </table>`}
          ${c.Labels && Object.keys(c.Labels).length
            ? html`<h3>Labels</h3><dl class="facts">${Object.entries(c.Labels).map(([k, v]) => html`<dt>${k}</dt><dd><code>${v}</code></dd>`)}</dl>`
            : null}
        </section>`}`;
}
