// Deployments of an app: per environment, per target the digest intended against the digest that actually runs
// now, then recent deployments with status, duration and reason, and what each step put in place.
import { html } from '../vendor/preact-htm.js';
import { api, apiAll, query, repoPath } from '../api.js';
import { Digest, Empty, ErrorLine, More, RepoHeader, Time, loadedItems, useLoad, usePages } from '../ui.js';
import { promotionOrder } from './delivery.js';

export function Deployments({ name }) {
  const [envs, error] = useLoad(async () => promotionOrder(await apiAll(`/api/v1/apps/${repoPath(name)}/environments?limit=500`)), [name]);
  return html`<main>
    <${RepoHeader} name=${name} view="deployments" />
    <${ErrorLine} error=${error} />
    ${envs && envs.length === 0 ? html`<${Empty} title="No environments, so no deployments. See the Delivery tab." />` : null}
    ${(envs ?? []).map((e) => html`<${EnvDeployments} name=${name} env=${e} />`)}
  </main>`;
}

function EnvDeployments({ name, env }) {
  const pages = usePages(`/api/v1/apps/${repoPath(name)}/deployments`, { environment: env.name, limit: 20 }, [name, env.name]);
  const { error } = pages;
  const rows = loadedItems(pages);
  return html`<section>
    <h2>${env.name}</h2>
    <${ErrorLine} error=${error} />
    <${TargetsNow} name=${name} env=${env} />
    ${rows && rows.length === 0 ? html`<p class="muted">Never deployed. Add targets to the app file (<code>wharf apply</code>), then Deploy.</p>` : null}
    ${rows && rows.length
      ? html`<table class="list">
          <thead><tr><th>#</th><th>Status</th><th>Digest</th><th>Started</th><th class="num">Duration</th><th>By</th><th>Targets</th></tr></thead>
          <tbody>${rows.map(
            (d) => html`<tr>
              <td data-label="#">${d.id}</td>
              <td data-label="Status"><span class=${`badge ${d.status === 'succeeded' ? 'good' : d.status === 'running' ? '' : 'bad'}`}>${d.status.replace('_', ' ')}</span>${d.reason ? html`<div class="small muted">${d.reason}</div>` : null}</td>
              <td data-label="Digest"><${Digest} d=${d.digest} /></td>
              <td data-label="Started"><${Time} t=${Number(d.started_at)} /></td>
              <td data-label="Duration" class="num">${d.finished_at ? `${((Number(d.finished_at) - Number(d.started_at)) / 1000).toFixed(1)} s` : d.status === 'running' ? 'running' : '–'}</td>
              <td data-label="By">${d.actor ?? '–'} <span class="muted small">${d.trigger ?? ''}</span></td>
              <td data-label="Targets">${(d.steps ?? []).map(
                (s) => html`<div class="small">${s.action === 'restore' ? '↩ ' : ''}<strong>${s.target}</strong> <${Digest} d=${s.digest} /> <span class=${s.result === 'succeeded' ? 'good' : s.result === 'failed' ? 'bad' : 'muted'}>${s.result}</span>${s.digest && s.digest !== d.digest ? html` <span class="muted">(intended <${Digest} d=${d.digest} />)</span>` : null}</div>`,
              )}</td>
            </tr>`,
          )}</tbody>
        </table>`
      : null}
    <${More} pages=${pages} />
  </section>`;
}

/** Per target: the digest of the environment's current release against what the target's containers run now (read live). */
function TargetsNow({ name, env }) {
  const [status, error] = useLoad(async () => (await api(`/api/v1/apps/${repoPath(name)}/status${query({ environment: env.name })}`))[0], [name, env.name]);
  const targets = status?.targets ?? [];
  if (!error && targets.length === 0) return null;
  // A list, not a table.list: the deployments table stays the page's only table.
  return html`<${ErrorLine} error=${error} />
    ${targets.length
      ? html`<ul class="card targets-now" aria-label=${`Targets of ${env.name}`}>${targets.map((t) => {
          const actual = [...new Set(t.containers.map((c) => c.digest ?? '?'))];
          return html`<li>
            <strong>${t.target}</strong>
            <span><span class="label">intended</span> <${Digest} d=${status.intended?.digest} /></span>
            <span><span class="label">actual</span> ${!t.reachable ? html`<span class="bad">unreachable</span>` : actual.length ? actual.map((d) => html`<${Digest} d=${d} /> `) : html`<span class="muted">nothing runs</span>`}</span>
            ${t.drift.length ? html`<span class="badge bad">drift</span>${t.drift.map((d) => html`<div class="small muted">${d.message}</div>`)}` : html`<span class="badge good">in sync</span>`}
          </li>`;
        })}</ul>`
      : null}`;
}
