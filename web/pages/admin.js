// Administration (global admins): users, groups, grants, tokens (the secret shown once), webhooks with their
// delivery log and redeliver, retention policies, garbage collection runs, and the audit log with filters.
import { html, useState } from '../vendor/preact-htm.js';
import { api, query } from '../api.js';
import { Copy, Empty, ErrorLine, More, Tabs, Time, bytes, loadedItems, usePages } from '../ui.js';

const TABS = [
  ['users', 'Users'],
  ['groups', 'Groups'],
  ['grants', 'Grants'],
  ['tokens', 'Tokens'],
  ['webhooks', 'Webhooks'],
  ['retention', 'Retention'],
  ['gc', 'Garbage collection'],
  ['audit', 'Audit log'],
];

export function Admin({ tab, me }) {
  const Page = { users: Users, groups: Groups, grants: Grants, tokens: Tokens, webhooks: Webhooks, retention: Retention, gc: Gc, audit: Audit }[tab] ?? Users;
  return html`<main>
    <h1>Administration</h1>
    <${Tabs} current=${tab} tabs=${TABS.map(([id, label]) => ({ id, label, href: `#/admin/${id}` }))} />
    <${Page} me=${me} />
  </main>`;
}

/** A form that posts its fields and reports the server's refusal in place. */
function Form({ onSubmit, children, submit }) {
  const [error, setError] = useState();
  const [busy, setBusy] = useState(false);
  const go = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await onSubmit(Object.fromEntries(new FormData(e.target)), e.target);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card form-row" onSubmit=${go}>${children}<button type="submit" disabled=${busy}>${submit}</button><${ErrorLine} error=${error} /></form>`;
}

function useRemove(reload) {
  const [error, setError] = useState();
  const remove = async (path, what) => {
    if (!confirm(`Remove ${what}?`)) return;
    try {
      await api(path, { method: 'DELETE' });
      setError(undefined);
      reload();
    } catch (e) {
      setError(e);
    }
  };
  return [remove, error];
}

function Users({ me }) {
  const pages = usePages('/api/v1/users', { limit: 100 }, []);
  const [remove, error] = useRemove(pages.reload);
  const [shown, setShown] = useState();
  return html`
    <${Form} submit="Add user" onSubmit=${async (f, form) => {
      const password = f.password || crypto.getRandomValues(new Uint8Array(18)).reduce((s, b) => s + b.toString(36).padStart(2, '0'), '');
      await api('/api/v1/users', { method: 'POST', body: { name: f.name, role: f.role, password } });
      if (!f.password) setShown({ name: f.name, password });
      form.reset();
      pages.reload();
    }}>
      <label>Name <input name="name" required pattern="[a-z0-9][a-z0-9._-]*" /></label>
      <label>Role <select name="role"><option value="member">member</option><option value="admin">admin</option></select></label>
      <label>Password <input name="password" type="password" autocomplete="new-password" placeholder="generated if empty" minlength="8" /></label>
    <//>
    ${shown ? html`<div class="card notice" role="status">Password for <strong>${shown.name}</strong>, shown once: <${Copy} text=${shown.password} label="password" /></div>` : null}
    <${ErrorLine} error=${pages.error || error} />
    <table class="list"><thead><tr><th>Name</th><th>Role</th><th>Groups</th><th>Created</th><th></th></tr></thead>
      <tbody>${pages.items.map(
        (u) => html`<tr><td data-label="Name">${u.name}</td><td data-label="Role">${u.role}</td><td data-label="Groups">${u.groups.map((g) => html`<span class="chip">@${g}</span>`)}</td>
          <td data-label="Created"><${Time} t=${u.createdAt} /></td>
          <td>${u.name === me.user ? html`<span class="muted small">you</span>` : html`<button type="button" class="secondary small" onClick=${() => remove(`/api/v1/users/${encodeURIComponent(u.name)}`, `user ${u.name}`)}>Remove</button>`}</td></tr>`,
      )}</tbody></table>
    <${More} pages=${pages} />`;
}

function Groups() {
  const pages = usePages('/api/v1/groups', { limit: 100 }, []);
  const [remove, error] = useRemove(pages.reload);
  return html`
    <${Form} submit="Add to group" onSubmit=${async (f, form) => {
      await api(`/api/v1/groups/${encodeURIComponent(f.group.replace(/^@/, ''))}/members`, { method: 'POST', body: { users: f.users.split(/[\s,]+/).filter(Boolean) } });
      form.reset();
      pages.reload();
    }}>
      <label>Group <input name="group" required placeholder="team-a" /></label>
      <label>Users <input name="users" required placeholder="alice, bob" /></label>
    <//>
    <${ErrorLine} error=${pages.error || error} />
    ${pages.items.length === 0 && !pages.loading ? html`<${Empty} title="No groups. A group is created with its first member." />` : null}
    ${pages.items.length ? html`<table class="list"><thead><tr><th>Group</th><th>Members</th><th></th></tr></thead>
      <tbody>${pages.items.map(
        (g) => html`<tr><td data-label="Group">@${g.group}</td>
          <td data-label="Members">${g.members.map((m) => html`<span class="chip">${m} <button type="button" class="icon" aria-label=${`Remove ${m} from @${g.group}`} onClick=${() => remove(`/api/v1/groups/${encodeURIComponent(g.group)}/members/${encodeURIComponent(m)}`, `${m} from @${g.group}`)}>✕</button></span>`)}</td>
          <td><button type="button" class="secondary small" onClick=${() => remove(`/api/v1/groups/${encodeURIComponent(g.group)}`, `group @${g.group} and its grants`)}>Remove group</button></td></tr>`,
      )}</tbody></table>` : null}`;
}

function Grants() {
  const pages = usePages('/api/v1/grants', { limit: 200 }, []);
  const [remove, error] = useRemove(pages.reload);
  return html`
    <${Form} submit="Grant" onSubmit=${async (f, form) => {
      await api('/api/v1/grants', { method: 'POST', body: { subject: f.subject, actions: f.actions, pattern: f.pattern } });
      form.reset();
      pages.reload();
    }}>
      <label>User or @group <input name="subject" required placeholder="@team-a" /></label>
      <label>Actions <input name="actions" required placeholder="pull,push or release:staging" /></label>
      <label>Repositories <input name="pattern" required placeholder="team-a/*" /></label>
    <//>
    <${ErrorLine} error=${pages.error || error} />
    ${pages.items.length === 0 && !pages.loading ? html`<${Empty} title="No grants: members see nothing until granted. Grant pull on a pattern above." />` : null}
    ${pages.items.length ? html`<table class="list"><thead><tr><th>Subject</th><th>Actions</th><th>Repositories</th><th></th></tr></thead>
      <tbody>${pages.items.map(
        (g) => html`<tr><td data-label="Subject">${g.subject}</td><td data-label="Actions">${g.actions.map((a) => html`<span class="chip">${a}</span>`)}</td><td data-label="Repositories"><code>${g.pattern}</code></td>
          <td><button type="button" class="secondary small" onClick=${() => remove(`/api/v1/grants${query({ subject: g.subject, pattern: g.pattern })}`, `the grants of ${g.subject} on ${g.pattern}`)}>Revoke</button></td></tr>`,
      )}</tbody></table>` : null}`;
}

function Tokens() {
  const pages = usePages('/api/v1/tokens', { limit: 100 }, []);
  const list = loadedItems(pages);
  const { error, reload } = pages;
  const [created, setCreated] = useState();
  const [remove, removeError] = useRemove(reload);
  return html`
    <${Form} submit="Create token" onSubmit=${async (f, form) => {
      const body = { name: f.name };
      // One scope per space-separated word: repository:NAME:ACTIONS (the actions themselves are comma-separated).
      if (f.scope.trim()) body.scope = f.scope.trim().split(/\s+/);
      if (f.expires) body.expires = f.expires;
      setCreated(await api('/api/v1/tokens', { method: 'POST', body }));
      form.reset();
      reload();
    }}>
      <label>Name <input name="name" required placeholder="ci-deploy" /></label>
      <label>Scope <input name="scope" placeholder="empty: acts as you; or repository:myapp:pull,push" /></label>
      <label>Expires <input name="expires" placeholder="90d" /></label>
    <//>
    ${created ? html`<div class="card notice" role="status">Token <strong>${created.name}</strong> created. Its secret is shown this once: <${Copy} text=${created.secret} label="token secret" /></div>` : null}
    <${ErrorLine} error=${error || removeError} />
    ${list?.length === 0 ? html`<${Empty} title="No tokens. CI and scripts use tokens rather than passwords." />` : null}
    ${list?.length ? html`<table class="list"><thead><tr><th>Name</th><th>Scope</th><th>State</th><th>Created</th><th>Expires</th><th></th></tr></thead>
      <tbody>${list.map(
        (t) => html`<tr><td data-label="Name">${t.name}</td><td data-label="Scope">${t.scope.length ? t.scope.map((s) => html`<code>${s}</code> `) : html`<span class="muted">acts as ${t.createdBy ?? '–'}</span>`}</td>
          <td data-label="State"><span class=${`badge ${t.state === 'active' ? 'good' : 'bad'}`}>${t.state}</span></td>
          <td data-label="Created"><${Time} t=${t.createdAt} /></td><td data-label="Expires">${t.expiresAt ? new Date(t.expiresAt).toLocaleDateString() : 'never'}</td>
          <td>${t.state === 'active' ? html`<button type="button" class="secondary small" onClick=${() => remove(`/api/v1/tokens/${encodeURIComponent(t.name)}`, `token ${t.name}`)}>Revoke</button>` : null}</td></tr>`,
      )}</tbody></table>` : null}
    <${More} pages=${pages} />`;
}

function Webhooks() {
  const subPages = usePages('/api/v1/webhooks', { limit: 50 }, []);
  const subs = loadedItems(subPages);
  const { error, reload } = subPages;
  const deliveryPages = usePages('/api/v1/webhooks/deliveries', { limit: 50 }, []);
  const deliveries = loadedItems(deliveryPages);
  const { error: dError, reload: reloadDeliveries } = deliveryPages;
  const [created, setCreated] = useState();
  const [remove, removeError] = useRemove(reload);
  const [redeliverError, setRedeliverError] = useState();
  const redeliver = async (id) => {
    try {
      await api(`/api/v1/webhooks/deliveries/${encodeURIComponent(id)}/redeliver`, { method: 'POST' });
      setRedeliverError(undefined);
      reloadDeliveries();
    } catch (e) {
      setRedeliverError(e);
    }
  };
  return html`
    <${Form} submit="Add webhook" onSubmit=${async (f, form) => {
      setCreated(await api('/api/v1/webhooks', { method: 'POST', body: { url: f.url, events: f.events.split(/[\s,]+/).filter(Boolean), ...(f.repository ? { repository: f.repository } : {}) } }));
      form.reset();
      reload();
    }}>
      <label>URL <input name="url" type="url" required placeholder="https://ci.example.com/hook" /></label>
      <label>Events <input name="events" required value="*" placeholder="release.created, deploy.*" /></label>
      <label>Repositories <input name="repository" placeholder="all" /></label>
    <//>
    ${created?.secret ? html`<div class="card notice" role="status">Signing secret of webhook #${created.id}, shown once: <${Copy} text=${created.secret} label="webhook secret" /></div>` : null}
    <${ErrorLine} error=${error || removeError || dError || redeliverError} />
    ${subs?.length === 0 ? html`<${Empty} title="No webhooks. Add one to tell CI or chat about pushes, releases and deploys." />` : null}
    ${subs?.length ? html`<table class="list"><thead><tr><th>#</th><th>URL</th><th>Events</th><th>Repositories</th><th></th></tr></thead>
      <tbody>${subs.map(
        (s) => html`<tr><td data-label="#">${s.id}</td><td data-label="URL"><code>${s.url}</code></td><td data-label="Events">${s.events.map((e) => html`<span class="chip">${e}</span>`)}</td><td data-label="Repositories">${s.repository ?? 'all'}</td>
          <td><button type="button" class="secondary small" onClick=${() => remove(`/api/v1/webhooks/${s.id}`, `webhook #${s.id}`)}>Remove</button></td></tr>`,
      )}</tbody></table>` : null}
    <${More} pages=${subPages} />
    <h2>Deliveries</h2>
    ${deliveries?.length === 0 ? html`<p class="muted">Nothing sent yet.</p>` : null}
    ${deliveries?.length ? html`<table class="list"><thead><tr><th>When</th><th>Webhook</th><th>Event</th><th>Status</th><th>Attempts</th><th></th></tr></thead>
      <tbody>${deliveries.map(
        (d) => html`<tr><td data-label="When"><${Time} t=${d.createdAt} /></td><td data-label="Webhook">#${d.subscriptionId}</td><td data-label="Event">${d.event} <span class="muted small">${d.repository ?? ''}</span></td>
          <td data-label="Status"><span class=${`badge ${d.status === 'succeeded' ? 'good' : d.status === 'failed' ? 'bad' : ''}`}>${d.status}</span> ${d.lastStatusCode ? html`<span class="small muted">HTTP ${d.lastStatusCode}</span>` : null} ${d.lastError ? html`<div class="small bad">${d.lastError}</div>` : null}</td>
          <td data-label="Attempts">${d.attempts}</td>
          <td><button type="button" class="secondary small" onClick=${() => redeliver(d.id)}>Redeliver</button></td></tr>`,
      )}</tbody></table>` : null}
    <${More} pages=${deliveryPages} />`;
}

function Retention() {
  const pages = usePages('/api/v1/retention/policies', { limit: 100 }, []);
  const policies = loadedItems(pages);
  const { error, reload } = pages;
  const [remove, removeError] = useRemove(reload);
  return html`
    <${Form} submit="Add policy" onSubmit=${async (f, form) => {
      const body = { repositories: f.repositories, tags: f.tags || '*' };
      if (f.keepLast) body.keepLast = Number(f.keepLast);
      if (f.keepWithin) body.keepWithin = f.keepWithin;
      if (f.untaggedOlderThan) body.untaggedOlderThan = f.untaggedOlderThan;
      await api('/api/v1/retention/policies', { method: 'POST', body });
      form.reset();
      reload();
    }}>
      <label>Repositories <input name="repositories" required placeholder="team-a/*" /></label>
      <label>Tags <input name="tags" placeholder="*" /></label>
      <label>Keep last <input name="keepLast" type="number" min="0" /></label>
      <label>Keep within <input name="keepWithin" placeholder="30d" /></label>
      <label>Untagged older than <input name="untaggedOlderThan" placeholder="7d" /></label>
    <//>
    <${ErrorLine} error=${error || removeError} />
    ${policies?.length === 0 ? html`<${Empty} title="No retention policies: every tag is kept." />` : null}
    ${policies?.length ? html`<table class="list"><thead><tr><th>Repositories</th><th>Tags</th><th>Rule</th><th>Source</th><th></th></tr></thead>
      <tbody>${policies.map(
        (p) => html`<tr><td data-label="Repositories"><code>${p.repositories}</code></td><td data-label="Tags"><code>${p.tags}</code></td>
          <td data-label="Rule">${[p.keepLast !== undefined ? `keep last ${p.keepLast}` : null, p.keepWithin ? `keep within ${p.keepWithin}` : null, p.untaggedOlderThan ? `untagged older than ${p.untaggedOlderThan}` : null].filter(Boolean).join(', ')}</td>
          <td data-label="Source">${p.source}</td>
          <td>${p.id !== null ? html`<button type="button" class="secondary small" onClick=${() => remove(`/api/v1/retention/policies/${p.id}`, 'this policy')}>Remove</button>` : html`<span class="muted small">config file</span>`}</td></tr>`,
      )}</tbody></table>` : null}
    <${More} pages=${pages} />`;
}

function Gc() {
  const pages = usePages('/api/v1/gc/runs', { limit: 50 }, []);
  const runs = loadedItems(pages);
  const { error, reload } = pages;
  const [report, setReport] = useState();
  const [busy, setBusy] = useState(false);
  const [runError, setRunError] = useState();
  const run = async (dryRun) => {
    setBusy(true);
    try {
      setReport(await api('/api/v1/gc', { method: 'POST', body: { dryRun } }));
      setRunError(undefined);
      reload();
    } catch (e) {
      setRunError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`
    <div class="toolbar"><button type="button" class="secondary" disabled=${busy} onClick=${() => run(true)}>Dry run</button><button type="button" disabled=${busy} onClick=${() => run(false)}>Collect garbage now</button></div>
    ${report ? html`<div class="card notice" role="status">${report.dryRun ? 'Would reclaim' : 'Reclaimed'} ${bytes(report.bytes)}: ${report.tags.length} tags, ${report.manifests.length} manifests, ${report.blobs.length} blobs (${report.durationMs} ms).</div>` : null}
    <${ErrorLine} error=${error || runError} />
    ${runs?.length === 0 ? html`<${Empty} title="No collection has run yet." />` : null}
    ${runs?.length ? html`<table class="list"><thead><tr><th>#</th><th>When</th><th>Trigger</th><th class="num">Tags</th><th class="num">Manifests</th><th class="num">Blobs</th><th class="num">Reclaimed</th><th>Error</th></tr></thead>
      <tbody>${runs.map(
        (r) => html`<tr><td data-label="#">${r.id}</td><td data-label="When"><${Time} t=${r.startedAt} /></td><td data-label="Trigger">${r.trigger}${r.actor ? ` by ${r.actor}` : ''}</td>
          <td data-label="Tags" class="num">${r.tags}</td><td data-label="Manifests" class="num">${r.manifests}</td><td data-label="Blobs" class="num">${r.blobs}</td><td data-label="Reclaimed" class="num">${bytes(r.bytes)}</td><td data-label="Error" class="bad">${r.error ?? ''}</td></tr>`,
      )}</tbody></table>` : null}
    <${More} pages=${pages} />`;
}

function Audit() {
  const [filters, setFilters] = useState({});
  const pages = usePages('/api/v1/audit', { ...filters, limit: 50 }, [JSON.stringify(filters)]);
  const apply = (e) => {
    e.preventDefault();
    const f = Object.fromEntries(new FormData(e.target));
    setFilters({
      actor: f.actor || undefined,
      action: f.action || undefined,
      repository: f.repository || undefined,
      since: f.since ? new Date(f.since).toISOString() : undefined,
      until: f.until ? new Date(f.until).toISOString() : undefined,
    });
  };
  return html`
    <form class="card form-row" onSubmit=${apply} aria-label="Audit filters">
      <label>Actor <input name="actor" /></label>
      <label>Action <input name="action" placeholder="tag. or login.failure" /></label>
      <label>Repository <input name="repository" /></label>
      <label>Since <input name="since" type="datetime-local" /></label>
      <label>Until <input name="until" type="datetime-local" /></label>
      <button type="submit">Filter</button>
    </form>
    <${ErrorLine} error=${pages.error} />
    ${pages.items.length === 0 && !pages.loading ? html`<${Empty} title="No audit rows match." />` : null}
    ${pages.items.length ? html`<table class="list"><thead><tr><th>When</th><th>Who</th><th>Action</th><th>Repository</th><th>Target</th><th>Result</th></tr></thead>
      <tbody>${pages.items.map(
        (r) => html`<tr><td data-label="When"><${Time} t=${r.at} /></td><td data-label="Who">${r.actorKind === 'token' ? `token:${r.actor}` : r.actor} <span class="muted small">${r.address ?? ''}</span></td>
          <td data-label="Action"><code>${r.action}</code></td><td data-label="Repository">${r.repository ?? ''}</td><td data-label="Target">${r.target ?? ''}</td>
          <td data-label="Result"><span class=${`badge ${r.result === 'ok' ? 'good' : 'bad'}`}>${r.result}</span></td></tr>`,
      )}</tbody></table>` : null}
    <${More} pages=${pages} />`;
}
