// pages/admin-requests.js — admin: every user's work requests (seed: "work
// requests admin page"): status, dates and result status only — the API
// never sends inputs or results here — with filters user id, anonymous
// session id, model, status, date from/to (dates, no time); a QUEUED or
// RUNNING request of anyone can be cancelled from its row.
//
// Runs in: the browser. Called by: app.js (#/admin/requests?user_id=...).
// Owns: one poller (2 s, only while a listed request is QUEUED/RUNNING),
// stopped by the returned cleanup. Each answer is merged in place
// (ui.morph, rows keyed by id): focus on a link survives the polls.
//
// Filters live in the route's query string, so a filtered view can be
// bookmarked or linked (e.g. from a user or an instance).

import { get, post, qs } from '../api.js';
import { el, field, pageTitle, table, fmtTime, fmtMs, errorText, poll, flash, setContent, showFieldErrors,
  morph, announce, statusWatch, skeletonRows } from '../ui.js';
import { statusCell } from './requests.js';

const POLL_MS = 2000;
const PAGE = 100;
const FILTERS = ['user_id', 'anon_session_id', 'model_id', 'status', 'date_from', 'date_to'];

export async function listPage(view, ctx) {
  const q = ctx.query;
  const f = {
    user_id: field({ name: 'user_id', label: 'User id', type: 'number', value: q.get('user_id') || '', attrs: { min: '1' } }),
    anon_session_id: field({ name: 'anon_session_id', label: 'Anonymous session id', type: 'number', value: q.get('anon_session_id') || '', attrs: { min: '1' } }),
    model_id: field({ name: 'model_id', label: 'Model', type: 'select', value: q.get('model_id') || '', options: [['', 'All models']] }),
    status: field({ name: 'status', label: 'Status', type: 'select', value: q.get('status') || '',
      options: [['', 'All'], ['QUEUED', 'Queued'], ['RUNNING', 'Running'], ['COMPLETED', 'Completed'], ['FAILED', 'Failed'], ['CANCELLED', 'Cancelled']] }),
    date_from: field({ name: 'date_from', label: 'Date from', type: 'date', value: q.get('date_from') || '' }),
    date_to: field({ name: 'date_to', label: 'Date to', type: 'date', value: q.get('date_to') || '' }),
  };
  const form = el('form.filters#admin-requests-filters', { novalidate: true },
    el('p.form-error', { role: 'alert' }),
    FILTERS.map((k) => f[k]),
    el('div.field', el('button', { type: 'submit' }, 'Filter')),
    el('div.field', el('button.secondary', { type: 'button', onclick: () => ctx.navigate('/admin/requests') }, 'Clear')));
  const out = el('div#admin-requests', skeletonRows(7));
  const more = el('button.secondary', { type: 'button', hidden: true }, 'Older requests');
  view.append(pageTitle('Work requests (all users)'),
    el('p.lead', 'Status, dates and result status of every request. Inputs and results are private to their owners and are not shown.'),
    form, out, more);

  get('/api/models').then((r) => {
    const sel = f.model_id.input;
    for (const m of r.items || []) sel.append(el('option', { value: m.id, selected: m.id === q.get('model_id') }, m.id));
  }).catch(() => {});

  // user id → username, for the Owner column (one page of users is enough
  // to name most owners; the id is shown either way).
  const names = new Map();
  get('/api/admin/users?limit=500').then((r) => {
    for (const u of r.items || []) names.set(u.id, u.username);
    if (items.length) draw();
  }).catch(() => {});

  const params = {};
  for (const k of FILTERS) params[k] = q.get(k) || '';
  let items = [];
  let extra = [];
  let next = null;

  // admins may cancel anyone's request (POST /api/admin/requests/{id}/cancel)
  const cancelButton = (r) => {
    const b = el('button.small.secondary', { type: 'button', 'aria-label': `Cancel request ${r.id}` }, 'Cancel');
    b.addEventListener('click', async () => {
      if (!window.confirm(`Cancel request #${r.id}?`)) return;
      b.disabled = true;
      try {
        await post(`/api/admin/requests/${r.id}/cancel`, {});
        r.status = 'CANCELLED';
        r.failure_reason = 'CANCELLED';
        flash(`Request #${r.id} cancelled.`, 'success');
        draw();
      } catch (e) {
        flash(errorText(e), 'error');
        b.disabled = false;
      }
    });
    return b;
  };

  const changes = statusWatch();
  const draw = () => {
    if (out.querySelector('.skeleton')) out.replaceChildren();
    morph(out, table([
      { head: 'Id', cell: (r) => '#' + r.id },
      { head: 'Model', cell: (r) => r.model_id },
      { head: 'Owner', cell: (r) => (r.user_id ? el('a', { href: '#/admin/requests?user_id=' + r.user_id },
        names.has(r.user_id) ? `${names.get(r.user_id)} (user ${r.user_id})` : 'user ' + r.user_id)
        : r.anon_session_id ? el('a', { href: '#/admin/requests?anon_session_id=' + r.anon_session_id }, 'anon session ' + r.anon_session_id) : '–') },
      { head: 'Status', cell: statusCell },
      { head: 'Submitted', cell: (r) => fmtTime(r.created_at) },
      { head: 'Finished', cell: (r) => fmtTime(r.finished_at) },
      { head: 'Result status', cell: (r) => r.result_status || '–' },
      { head: 'Inputs (errors)', cell: (r) => `${r.input_count ?? 0} (${r.error_count ?? 0})` },
      { head: 'Calls (extra)', cell: (r) => `${r.model_calls ?? 0} (${r.extra_calls ?? 0})` },
      { head: 'Isolation', cell: (r) => fmtMs(r.isolation_ms ?? 0) },
      { head: 'Not sent', cell: (r) => String((r.screened_count ?? 0) + (r.known_bad_count ?? 0)) },
      { head: 'Actions', cell: (r) => (r.status === 'QUEUED' || r.status === 'RUNNING' ? cancelButton(r) : '') },
    ], items.concat(extra), { cls: 'admin-requests', rowAttrs: (r) => ({ dataset: { id: String(r.id), status: r.status } }),
      empty: 'No request matches these filters.' }));
    more.hidden = !next;
  };

  const load = async () => {
    try {
      const r = await get('/api/admin/requests' + qs(Object.assign({ limit: PAGE }, params)));
      items = r.items || [];
      if (!extra.length) next = r.next_cursor;
      draw();
      const said = changes(items, (x) => `Request #${x.id}`);
      if (said.length) announce(said.join(' '));
      showFieldErrors(form, {});
      return items.some((x) => x.status === 'QUEUED' || x.status === 'RUNNING');
    } catch (e) {
      if (e.status === 422) showFieldErrors(form, e.fields, 'Check the filters.');
      else setContent(out, el('p.error', { role: 'alert' }, errorText(e)));
      return e.status !== 422 && e.status !== 403; // bad filters: wait for new ones
    }
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = {};
    for (const k of FILTERS) v[k] = f[k].input.value.trim();
    const errs = {};
    if (v.date_from && v.date_to && v.date_from > v.date_to) errs.date_to = 'must not be before date from';
    if (!showFieldErrors(form, errs)) return;
    ctx.navigate('/admin/requests' + qs(v));
  });
  more.addEventListener('click', async () => {
    try {
      const r = await get('/api/admin/requests' + qs(Object.assign({ limit: PAGE, cursor: next }, params)));
      extra = extra.concat(r.items || []);
      next = r.next_cursor;
      draw();
    } catch (e) {
      flash(errorText(e), 'error');
    }
  });
  const stop = poll(load, POLL_MS);
  return () => stop();
}
