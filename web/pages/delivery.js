// An app's delivery: environment cards in promotion order (current release, what runs on each target, drift),
// the release timeline, and the actions — release a tag, promote, roll back, deploy — each behind a
// confirmation that shows from-digest → to-digest and the gates, then the deployment's live progress. In an
// environment that requires approval the action becomes a request that waits on this page for a second person
// to approve (through the same confirmation) or deny.
import { html, useRef, useState } from '../vendor/preact-htm.js';
import { api, apiAll, repoPath, stream, query } from '../api.js';
import { Action, Dialog, Digest, Empty, ErrorLine, More, RepoHeader, Time, reasonFor, useAccess, useLoad, usePages } from '../ui.js';

/** Environments in promotion order: each after the one it is promoted from. */
export function promotionOrder(envs) {
  const depth = (e, seen = new Set()) => {
    if (!e.requiresPromotionFrom || seen.has(e.name)) return 0;
    seen.add(e.name);
    const from = envs.find((x) => x.name === e.requiresPromotionFrom);
    return from ? 1 + depth(from, seen) : 1;
  };
  return [...envs].sort((a, b) => depth(a) - depth(b) || a.name.localeCompare(b.name));
}

const label = (r) => r.version ?? r.tag ?? `#${r.id}`;

/**
 * What an environment's status says needs a person (its newest deployment paused, or its rollback failed), as the
 * card's badge and line; undefined when nothing does. Drift alone is no attention: a deploy or a heal fixes it.
 */
export function attentionOf(status) {
  const a = status?.attention;
  if (!a) return undefined;
  const badge = a.status === 'paused' ? 'paused' : 'needs operator';
  const what = a.status === 'paused' ? 'paused' : 'needs an operator';
  return { badge, line: `Deployment #${a.deployment} ${what}${a.reason ? `: ${a.reason}` : ''}` };
}

/** The release a plain "roll back" returns to (as the server picks it): the newest earlier one with another digest. */
function rollbackTarget(releases, env) {
  const cur = env.current;
  if (!cur) return undefined;
  const own = releases.filter((r) => r.environment === env.name);
  const rolledBack = new Set(own.filter((r) => r.kind === 'rollback' && r.replaces !== null).map((r) => r.replaces));
  return own.find((r) => r.id !== cur.id && r.digest !== cur.digest && !rolledBack.has(r.id));
}

export function Delivery({ name }) {
  const [data, error, reload] = useLoad(async () => {
    const [envs, releases, approvals] = await Promise.all([
      apiAll(`/api/v1/apps/${repoPath(name)}/environments?limit=500`),
      api(`/api/v1/apps/${repoPath(name)}/releases?limit=200`),
      apiAll(`/api/v1/apps/${repoPath(name)}/approvals?limit=100`),
    ]);
    return { envs: promotionOrder(envs), releases, approvals };
  }, [name]);
  const [action, setAction] = useState();
  // Each opening is a dialog of its own (its key): an action that replaced another in one render would otherwise
  // keep the first one's typed tag, progress and outcome.
  const opened = useRef(0);
  const open = (a) => setAction({ ...a, opened: ++opened.current });
  return html`<main>
    <${RepoHeader} name=${name} view="delivery" />
    <${ErrorLine} error=${error} />
    ${data && data.envs.length === 0
      ? html`<${Empty} title="No environments yet. Create them, then release a tag:">
          <pre><code>wharf env create ${name} staging\nwharf env create ${name} production --requires-promotion-from staging\nwharf release ${name} 1.0.0 --to staging</code></pre>
        <//>`
      : null}
    ${data ? html`<div class="envs">${data.envs.map((env, i) => html`<${EnvCard} name=${name} env=${env} prev=${data.envs[i - 1]} releases=${data.releases} waiting=${data.approvals.filter((a) => a.environment === env.name)} onAction=${open} />`)}</div>` : null}
    ${data && data.approvals.length ? html`<${Approvals} name=${name} loaded=${data} onAction=${open} onDone=${reload} />` : null}
    ${data && data.releases.length ? html`<${Timeline} name=${name} envs=${data.envs} loaded=${data} onAction=${open} />` : null}
    ${action ? html`<${Confirm} key=${action.opened} name=${name} action=${action} onClose=${() => setAction(undefined)} onDone=${reload} />` : null}
  </main>`;
}

function EnvCard({ name, env, prev, releases, waiting, onAction }) {
  const access = useAccess(name, env.name, env.protected);
  // The status route answers a list (one entry per environment asked for).
  const [status, statusError] = useLoad(
    async () => (await api(`/api/v1/apps/${repoPath(name)}/status${query({ environment: env.name })}`))[0],
    [name, env.name, env.current?.id],
  );
  const can = access.can('release');
  const why = reasonFor('release', name, env.name, env.protected);
  const from = env.requiresPromotionFrom ? prev && prev.name === env.requiresPromotionFrom ? prev : undefined : prev;
  const back = rollbackTarget(releases, env);
  const cur = env.current;
  const targets = status?.targets ?? [];
  const attention = attentionOf(status);
  return html`<article class="card env" aria-label=${`Environment ${env.name}`}>
    <header>
      <h2>${env.name}</h2>
      <span class="badges">
        ${env.protected ? html`<span class="badge warn" title="releases need extra care">protected</span>` : null}
        ${env.requiresApproval ? html`<span class="badge warn" title="a release waits for an approval">requires approval</span>` : null}
        ${env.autoDeploy ? html`<span class="badge">auto-deploy</span>` : null}
        ${attention
          ? html`<span class="badge bad">${attention.badge}</span>`
          : status
            ? html`<span class=${`badge ${status.inSync ? 'good' : targets.length ? 'bad' : ''}`}>${targets.length === 0 ? 'no targets' : status.inSync ? 'in sync' : 'drift'}</span>`
            : null}
      </span>
    </header>
    ${cur
      ? html`<div class="current">
          <div class="version">${label(cur)}</div>
          <div><${Digest} d=${cur.digest} /> <span class="muted">${cur.kind} by ${cur.actor ?? '–'}, <${Time} t=${cur.createdAt} /></span></div>
        </div>`
      : html`<p class="muted">No release yet.</p>`}
    ${waiting.length ? html`<p class="small warn-text"><a href="#approvals">⏳ ${waiting.length} request${waiting.length === 1 ? '' : 's'} waiting for approval</a></p>` : null}
    ${env.pending ? html`<p class="small warn-text">Pending (not deployed yet): ${label(env.pending)} <${Digest} d=${env.pending.digest} /></p>` : null}
    ${env.requiresPromotionFrom ? html`<p class="muted small">Promoted from ${env.requiresPromotionFrom} only.</p>` : null}
    ${env.requires.length ? html`<p class="muted small">Requires attestations: ${env.requires.join(', ')}</p>` : null}
    ${attention
      ? html`<p class="attention small" aria-label="Needs attention">⚠ ${attention.line}. What runs may match no release: look at the targets, then deploy or roll back.</p>`
      : null}
    <${ErrorLine} error=${statusError} />
    ${targets.map(
      (t) => html`<div class="target">
        <div><strong>${t.target}</strong> ${t.reachable ? null : html`<span class="bad">unreachable</span>`}</div>
        ${t.containers.map(
          (c) => html`<div class="container small">
            <span class=${c.state === 'running' ? 'dot good' : 'dot bad'} aria-hidden="true"></span>${c.name}
            <${Digest} d=${c.digest} /> <span class="muted">${c.state}${c.health ? `, ${c.health}` : ''}</span>
          </div>`,
        )}
        ${t.drift.map((d) => html`<div class="drift small">⚠ ${d.message}</div>`)}
      </div>`,
    )}
    <div class="actions">
      <${ActionButton} can=${can} why=${why} onClick=${() => onAction({ kind: 'release', env })}>Release tag…<//>
      ${from ? html`<${ActionButton} can=${can && !!from.current} why=${from.current ? why : `${from.name} has no release to promote`} onClick=${() => onAction({ kind: 'promote', env, from })}>Promote ${from.name} → ${env.name}<//>` : null}
      ${cur ? html`<${ActionButton} can=${can && !!back} why=${back ? why : 'no earlier release to roll back to'} onClick=${() => onAction({ kind: 'rollback', env, to: back })}>Roll back<//>` : null}
      ${cur && targets.length ? html`<${ActionButton} can=${can} why=${why} onClick=${() => onAction({ kind: 'deploy', env })}>Deploy<//>` : null}
    </div>
  </article>`;
}

/** Absent when the user may do nothing here at all; disabled with the reason when only this is refused. */
const ActionButton = ({ can, why, onClick, children }) => html`<button type="button" class="secondary" disabled=${!can} title=${can ? '' : why} onClick=${onClick}>${children}</button>`;

/** The release timeline, a page at a time (filtered by the server); read again whenever the page's data is. */
function Timeline({ name, envs, loaded, onAction }) {
  const [env, setEnv] = useState('');
  const pages = usePages(`/api/v1/apps/${repoPath(name)}/releases`, { environment: env, limit: 50 }, [name, env, loaded]);
  const shown = pages.items;
  return html`<section>
    <div class="title-row"><h2>Releases</h2>
      <label class="inline">Environment <select value=${env} onChange=${(e) => setEnv(e.target.value)}><option value="">all</option>${envs.map((e) => html`<option value=${e.name}>${e.name}</option>`)}</select></label>
    </div>
    <${ErrorLine} error=${pages.error} />
    <ol class="timeline">${shown.map((r) => html`<${TimelineItem} name=${name} r=${r} env=${envs.find((e) => e.name === r.environment)} onAction=${onAction} />`)}</ol>
    <${More} pages=${pages} />
  </section>`;
}

function TimelineItem({ name, r, env, onAction }) {
  const access = useAccess(name, r.environment, env?.protected);
  const current = env?.current?.id === r.id;
  return html`<li class=${current ? 'current' : ''}>
    <div class="when"><${Time} t=${r.createdAt} /></div>
    <div class="what">
      <span class=${`pill ${r.kind}`}>${r.kind}</span> <strong>${label(r)}</strong> → ${r.environment}${' '}<a href=${`#/r/${encodeURIComponent(name)}/image/${encodeURIComponent(r.digest)}`}><${Digest} d=${r.digest} /></a>
      <span class="muted"> by ${r.actor ?? '–'}</span>
      ${Array.isArray(r.attestations) && r.attestations.length ? html` <span class="good small">✔ ${r.attestations.join(', ')}</span>` : null}
      ${r.deployment ? html` <span class=${`small ${r.deployment.status === 'succeeded' ? 'good' : r.deployment.status === 'running' ? 'muted' : 'bad'}`} title=${r.deployment.reason ?? ''}>deploy #${r.deployment.id} ${r.deployment.status.replace('_', ' ')}${r.deployment.status === 'needs_operator' || r.deployment.status === 'paused' ? ' ⚠' : ''}</span>` : null}
      ${r.note ? html`<div class="muted small">${r.note}</div>` : null}
    </div>
    ${current
      ? html`<span class="badge good">current</span>`
      : env?.current && access.can('release')
        ? html`<button type="button" class="secondary small" onClick=${() => onAction({ kind: 'rollback', env, to: r })}>Roll back to this</button>`
        : null}
  </li>`;
}

/** What a request asks for, in words. */
const asked = (a) => (a.kind === 'release' ? `release ${a.ref}` : a.kind === 'promote' ? `promote from ${a.from}` : `roll back${a.ref ? ` to ${a.ref}` : ''}`);

/** The confirmation of an approval: the action the request asks for, so its digest change and gates show first. */
function requested(a, { envs, releases }) {
  const env = envs.find((e) => e.name === a.environment);
  const action = { kind: 'approve', asks: a.kind, env, request: a };
  if (a.kind === 'release') return { ...action, ref: a.ref };
  if (a.kind === 'promote') return { ...action, from: envs.find((e) => e.name === a.from) };
  return { ...action, to: a.ref ? releases.find((r) => String(r.id) === a.ref || r.version === a.ref || r.tag === a.ref) : rollbackTarget(releases, env) };
}

/** Pending requests, newest first: approve (a second person) or deny, as the server says this user may. */
function Approvals({ name, loaded, onAction, onDone }) {
  const [error, setError] = useState();
  const deny = async (a) => {
    if (!confirm(`Deny request #${a.id} (${asked(a)} → ${a.environment})? Nothing is released.`)) return;
    try {
      await api(`/api/v1/apps/${repoPath(name)}/approvals/${a.id}/deny`, { method: 'POST', body: {} });
      setError(undefined);
      onDone();
    } catch (e) {
      setError(e);
    }
  };
  return html`<section id="approvals">
    <h2>Waiting for approval</h2>
    <${ErrorLine} error=${error} />
    <ul class="approvals" aria-label="Approval requests">${loaded.approvals.map(
      (a) => html`<li class="card" aria-label=${`Approval request #${a.id}`}>
        <div><strong>#${a.id}</strong> ${asked(a)} → <strong>${a.environment}</strong> <span class="muted small">asked by ${a.requestedBy ?? '–'}, <${Time} t=${a.requestedAt} /></span></div>
        ${a.note ? html`<div class="muted small">${a.note}</div>` : null}
        <div class="actions">
          <${Action} allowed=${a.caller.approve} reason=${a.caller.reason} onClick=${() => onAction(requested(a, loaded))}>Approve…<//>
          <${Action} cls="secondary" allowed=${a.caller.deny} reason=${a.caller.reason} onClick=${() => deny(a)}>Deny<//>
        </div>
        ${a.caller.reason ? html`<p class="muted small">${a.caller.reason}</p>` : null}
      </li>`,
    )}</ul>
  </section>`;
}

/** What an action will do, resolved before the click: the digest it moves to and the gates it must pass. */
async function preview(name, action, ref) {
  const { env } = action;
  // An approval shows what the request asks for.
  const kind = action.asks ?? action.kind;
  let to;
  if (kind === 'release') {
    if (!ref) return undefined;
    const page = await api(`/api/v1/repositories/${repoPath(name)}/tags${query({ prefix: ref, limit: 50 })}`);
    const tag = page.items.find((t) => t.name === ref);
    to = ref.startsWith('sha256:') ? ref : tag?.digest;
    if (!to) throw new Error(`No tag ${ref} in ${name}.`);
  } else if (kind === 'promote') {
    to = action.from?.current?.digest;
    if (!to) throw new Error(`${action.from?.name ?? 'The source environment'} has no release to promote.`);
  } else if (kind === 'rollback') {
    to = action.to?.digest;
    if (!to) throw new Error('The release to roll back to is not among the latest releases.');
  } else to = env.current.digest;
  // Verified for this environment: what its gate accepts (a signer trusted elsewhere does not count here).
  const attestations = await api(`/api/v1/apps/${repoPath(name)}/attestations/${to}${query({ environment: env.name })}`).then((a) => a.attestations, () => []);
  const verified = new Set(attestations.filter((a) => a.verified).map((a) => a.kind));
  const gates = env.requires.map((kind) => ({ name: `attestation: ${kind}`, ok: verified.has(kind), detail: verified.has(kind) ? 'verified' : 'missing or not verified' }));
  if (env.requiresPromotionFrom && kind !== 'rollback' && kind !== 'deploy') {
    const ok = kind === 'promote';
    gates.push({ name: `promotion from ${env.requiresPromotionFrom}`, ok, detail: ok ? 'promoted from there' : `only what ${env.requiresPromotionFrom} runs may come here: promote instead` });
  }
  return { ref, to, gates, attested: [...verified] };
}

function Confirm({ name, action, onClose, onDone }) {
  const { env } = action;
  const [ref, setRef] = useState(action.kind === 'approve' ? action.ref ?? '' : '');
  // The environment's targets, read here rather than taken from the card: the card's may not have come yet, and
  // the deploy choice depends on them.
  const [status, statusError] = useLoad(async () => (await api(`/api/v1/apps/${repoPath(name)}/status${query({ environment: env.name })}`))[0], [name, env.name]);
  const targets = status?.targets ?? [];
  const [deployChoice, setDeploy] = useState();
  const deploy = deployChoice ?? (action.kind === 'approve' && action.request.deploy !== null ? action.request.deploy : targets.length > 0);
  const [tags] = useLoad(() => (action.kind === 'release' ? api(`/api/v1/repositories/${repoPath(name)}/tags${query({ sort: 'pushed', limit: 30 })}`) : Promise.resolve({ items: [] })), [name]);
  const [plan, planError] = useLoad(() => preview(name, action, ref.trim()), [ref]);
  // Nothing is confirmed unchecked: the button waits for the gates and digests of what is typed now, and the targets.
  const ready = plan !== undefined && plan.ref === ref.trim() && status !== undefined;
  const [events, setEvents] = useState([]);
  const [outcome, setOutcome] = useState();
  const [error, setError] = useState();
  const [running, setRunning] = useState(false);
  const title = {
    release: `Release a tag to ${env.name}`,
    promote: `Promote ${action.from?.name} → ${env.name}`,
    rollback: `Roll back ${env.name}${action.to ? ` to ${label(action.to)}` : ''}`,
    deploy: `Deploy ${env.name}`,
    approve: `Approve request #${action.request?.id}: ${action.request ? asked(action.request) : ''} → ${env.name}`,
  }[action.kind];
  const go = async () => {
    setRunning(true);
    setError(undefined);
    const base = `/api/v1/apps/${repoPath(name)}`;
    const [path, body] = {
      release: [`${base}/releases`, { environment: env.name, ref: ref.trim(), deploy }],
      promote: [`${base}/promote`, { from: action.from?.name, to: env.name, deploy }],
      rollback: [`${base}/rollback`, { environment: env.name, to: action.to ? String(action.to.id) : undefined, deploy }],
      deploy: [`${base}/deployments`, { environment: env.name }],
      approve: [`${base}/approvals/${action.request?.id}`, { deploy }],
    }[action.kind];
    try {
      await stream(path, body, (line) => {
        if (line.event) setEvents((old) => [...old, line.event]);
        else if (line.error) setError(new Error(line.error.message));
        else if (line.result) setOutcome(line);
        else if (line.approval) setOutcome({ approval: line.approval });
        else if (line.id && line.digest) setOutcome({ release: line });
      });
    } catch (e) {
      setError(e);
    } finally {
      setRunning(false);
      onDone();
    }
  };
  const done = outcome || error;
  const blocked = ready && plan.gates.some((g) => !g.ok);
  return html`<${Dialog} title=${title} onClose=${onClose}>
    ${action.kind === 'release'
      ? html`<label>Tag or digest <input list="tag-choices" value=${ref} onInput=${(e) => setRef(e.target.value)} placeholder="e.g. 1.0.0" autofocus disabled=${running || done} /></label>
          <datalist id="tag-choices">${(tags?.items ?? []).map((t) => html`<option value=${t.name} />`)}</datalist>`
      : null}
    <div class="change" aria-label="Digest change">
      <span class="label">${env.name}</span> <${Digest} d=${env.current?.digest} /> <span aria-hidden="true">→</span> ${ready ? html`<${Digest} d=${plan.to} />` : html`<span class="muted">…</span>`}
    </div>
    ${ready && plan.to === env.current?.digest && action.kind !== 'deploy' ? html`<p class="muted small">Same digest as now: the release is recorded, nothing changes on the hosts.</p>` : null}
    <${ErrorLine} error=${planError || statusError} />
    ${!ready && !planError && !statusError && (action.kind !== 'release' || ref.trim()) ? html`<p class="muted small" role="status" aria-label="Checking">Checking the gates, digests and targets…</p>` : null}
    ${ready
      ? html`<ul class="gates" aria-label="Gates">
          ${plan.gates.length === 0 ? html`<li class="muted">No gates on ${env.name}.</li>` : null}
          ${plan.gates.map((g) => html`<li class=${g.ok ? 'good' : 'bad'}>${g.ok ? '✔' : '✘'} ${g.name} <span class="muted">— ${g.detail}</span></li>`)}
          ${plan.attested.length ? html`<li class="muted small">Verified attestations: ${plan.attested.join(', ')}</li>` : null}
        </ul>`
      : null}
    ${action.kind !== 'deploy' && targets.length
      ? html`<label class="inline"><input type="checkbox" checked=${deploy} onChange=${(e) => setDeploy(e.target.checked)} disabled=${running || done} /> Deploy to ${targets.length} target${targets.length === 1 ? '' : 's'} now</label>`
      : null}
    ${events.length || running
      ? html`<ol class="progress" aria-live="polite" aria-label="Progress">${events.map((e) => html`<li class=${`ev-${e.kind}`}><span class="muted small">${new Date(e.at).toLocaleTimeString()}</span> ${e.target ? html`<strong>${e.target}</strong> ` : null}${e.message}</li>`)}
          ${running ? html`<li class="muted">working…</li>` : null}</ol>`
      : null}
    ${outcome ? html`<${Outcome} outcome=${outcome} />` : null}
    <${ErrorLine} error=${error} />
    <div class="buttons">
      ${done
        ? html`<button type="button" onClick=${onClose}>Close</button>`
        : html`<button type="button" class="secondary" onClick=${onClose} disabled=${running}>Cancel</button>
            <button type="button" class=${blocked ? 'danger' : ''} onClick=${go} disabled=${running || !ready} aria-busy=${ready ? 'false' : 'true'} title=${blocked ? 'a gate fails: the server will refuse this' : ready ? '' : 'checking the gates, digests and targets first'}>${{ release: 'Release', promote: 'Promote', rollback: 'Roll back', deploy: 'Deploy', approve: 'Approve' }[action.kind]}</button>`}
    </div>
  <//>`;
}

function Outcome({ outcome }) {
  if (outcome.approval) {
    const a = outcome.approval;
    return html`<p class="warn-text" role="status">⏳ Request #${a.id} waits for approval: ${a.environment} requires a second person, granted release:${a.environment}, to approve it on this page.</p>`;
  }
  if (!outcome.result) return html`<p class="good" role="status">✔ Release #${outcome.release.id} recorded: ${outcome.release.environment} is now ${label(outcome.release)}.</p>`;
  const r = outcome.result;
  const ok = r.status === 'succeeded';
  return html`<div class=${`outcome ${ok ? 'good' : 'bad'}`} role="status">
    <strong>${ok ? '✔ Deployment succeeded' : r.status === 'rolled_back' ? '↩ Rolled back automatically' : `✘ Deployment ${r.status}`}</strong>
    ${r.reason ? html`<div>Reason: ${r.reason}</div>` : null}
    ${outcome.revert && 'release' in outcome.revert ? html`<div class="small">The environment names release #${outcome.revert.release.id} again.</div>` : null}
    <div class="small muted">deployment #${outcome.deployment}, ${((r.finishedAt - r.startedAt) / 1000).toFixed(1)} s</div>
  </div>`;
}
