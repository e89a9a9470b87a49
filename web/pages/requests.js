// pages/requests.js — the user's requests with live progress bars, and
// one request's page (progress, timings, failure reason, per-input errors,
// result preview, CSV/JSON downloads, cancel).
//
// Runs in: the browser. Called by: app.js (#/requests, #/requests/{id}).
// Owns: one poller per page, stopped by the cleanup function it returns.
//
// Polling (DESIGN §8): GET /api/requests (one page) or GET
// /api/requests/{id} every 2 s, and only while something is QUEUED or
// RUNNING; finished pages make no further calls. Each answer is merged
// into the page in place (ui.morph, rows keyed by id), so keyboard focus
// (e.g. on Cancel) survives the polls; durations tick locally; status
// changes are announced once through the live region.

import { get, del, qs } from '../api.js';
import { el, setContent, pageTitle, table, badge, progressBar, fmtTime, fmtMs, errorText, poll, flash, field,
  morph, ticking, announce, statusWatch, skeletonRows } from '../ui.js';

const POLL_MS = 2000;
const PAGE = 50;
const PREVIEW_ROWS = 100;
const LIVE = new Set(['QUEUED', 'RUNNING']);

function duration(r) {
  return ticking(r.started_at, r.finished_at);
}

/** Status badge and, when it says more, the reason ("FAILED model_error"),
 * never the status twice ("CANCELLED CANCELLED"). */
export function statusCell(r) {
  const reason = r.failure_reason && r.failure_reason !== r.status ? r.failure_reason : null;
  return [badge(r.status), reason ? el('small', ' ' + reason.toLowerCase().replace(/_+/g, ' ')) : null];
}

function downloads(r) {
  const base = `/api/requests/${r.id}/result`;
  return el('span.downloads',
    // with per-input errors the CSV says why in a last "error" column
    el('a.button.small', { href: base + '?format=csv' + (r.error_count ? '&error_column=true' : ''), download: `request-${r.id}.csv` }, 'CSV'),
    el('a.button.small.secondary', { href: base + '?format=json', download: `request-${r.id}.json` }, 'JSON'));
}

export async function listPage(view) {
  const fStatus = field({ name: 'status', label: 'Status', type: 'select',
    options: [['', 'All'], ['QUEUED', 'Queued'], ['RUNNING', 'Running'], ['COMPLETED', 'Completed'], ['FAILED', 'Failed'], ['CANCELLED', 'Cancelled']] });
  const out = el('div#requests-list', skeletonRows(7));
  const more = el('button.secondary#older', { type: 'button', hidden: true }, 'Older requests');
  view.append(pageTitle('My requests', el('a.button', { href: '#/models' }, 'New request')),
    el('div.filters', fStatus), out, more);
  let items = [];
  let next = null;
  let extra = []; // older pages loaded with "Older requests" (not polled)
  const changes = statusWatch();

  const draw = () => {
    if (out.querySelector('.skeleton')) out.replaceChildren();
    morph(out, table([
      { head: 'Id', cell: (r) => el('a', { href: '#/requests/' + r.id }, '#' + r.id) },
      { head: 'Model', cell: (r) => r.model_id },
      { head: 'Status', cell: statusCell },
      { head: 'Progress', cell: (r) => progressBar(r.progress, `Progress of request ${r.id}`) },
      { head: 'Submitted', cell: (r) => fmtTime(r.created_at) },
      { head: 'Duration', cell: duration },
      { head: 'Result', cell: (r) => (r.status === 'COMPLETED' ? downloads(r) : '–') },
    ], items.concat(extra), { cls: 'requests', rowAttrs: (r) => ({ dataset: { id: String(r.id), status: r.status } }),
      empty: 'No requests yet. Pick a model to submit one.' }));
    more.hidden = !next;
  };

  const load = async () => {
    try {
      const r = await get('/api/requests' + qs({ limit: PAGE, status: fStatus.input.value }));
      items = r.items || [];
      if (!extra.length) next = r.next_cursor;
      draw();
      const said = changes(items, (x) => `Request #${x.id}`);
      if (said.length) announce(said.join(' '));
      return items.some((x) => LIVE.has(x.status));
    } catch (e) {
      out.replaceChildren(el('p.error', { role: 'alert' }, 'Could not load your requests: ' + errorText(e)));
      return true; // keep trying: a 401 that ends the session navigates away (cleanup stops this)
    }
  };

  let stop = poll(load, POLL_MS);
  fStatus.input.addEventListener('change', () => {
    stop();
    extra = [];
    stop = poll(load, POLL_MS);
  });
  more.addEventListener('click', async () => {
    try {
      const r = await get('/api/requests' + qs({ limit: PAGE, status: fStatus.input.value, cursor: next }));
      extra = extra.concat(r.items || []);
      next = r.next_cursor;
      draw();
    } catch (e) {
      flash(errorText(e), 'error');
    }
  });
  return () => stop();
}

// Key, input and the upload's other columns (a multi-column CSV keeps them:
// key,input,<extra>,<outputs>, docs/api.md "Results"), before the outputs.
function riderColumns(res) {
  const cols = [];
  if (res.key_column) cols.push({ head: `Key (${res.key_column})`, cell: (x) => x.key || '–' });
  cols.push({ head: res.input_column ? `Input (${res.input_column})` : 'Input', cell: (x) => el('code', x.input) });
  for (const name of res.extra_columns || []) {
    cols.push({ head: name, cell: (x) => (x.extra && x.extra[name]) || '–' });
  }
  return cols;
}

/* A result value for the preview: numbers without binary float noise
 * (78.11399999999999 shows as 78.114; 10 significant digits, the
 * downloads keep every digit), objects as JSON, nothing as a dash. */
function previewCell(v) {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(10)));
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

async function perInputErrors(id, box) {
  try {
    const res = await get(`/api/requests/${id}/result?format=json`);
    const rows = res.results || [];
    const bad = rows.map((x, i) => Object.assign({ n: i + 1 }, x)).filter((x) => x.error);
    const cols = res.columns || [];
    setContent(box,
      bad.length ? el('section#input-errors', el('h2', `Inputs with errors (${bad.length})`),
        table([
          { head: 'Line', cell: (x) => String(x.n) },
          { head: 'Input', cell: (x) => el('code', x.input) },
          { head: 'Error', cell: (x) => x.error },
        ], bad.slice(0, 200), { cls: 'errors' }),
        bad.length > 200 ? el('p.hint', `…and ${bad.length - 200} more; see the JSON download.`) : null) : null,
      el('section#result-preview', el('h2', 'Result preview'),
        table(riderColumns(res).concat(cols.map((c) => ({
          head: c, cell: (x) => previewCell(x.record && x.record[c]),
        }))), rows.slice(0, PREVIEW_ROWS), { cls: 'results' }),
        rows.length > PREVIEW_ROWS ? el('p.hint', `First ${PREVIEW_ROWS} of ${rows.length} rows; download for all.`) : null));
  } catch (e) {
    box.replaceChildren(el('p.error', 'Could not load the result: ' + errorText(e)));
  }
}

export async function detailPage(view, ctx) {
  const id = ctx.params.id;
  if (!/^\d{1,18}$/.test(id)) {
    view.append(pageTitle('Request'), el('p.error', 'There is no such request.'));
    return null;
  }
  const head = pageTitle(`Request #${id}`);
  const body = el('div#request-detail');
  const extra = el('div');
  view.append(head, body, extra);
  let resultShown = false;

  const cancel = async () => {
    if (!confirm(`Cancel request #${id}?`)) return;
    try {
      await del(`/api/requests/${id}`);
      flash(`Request #${id} cancelled.`, 'success');
      stop();
      stop = poll(load, POLL_MS);
    } catch (e) {
      flash(errorText(e), 'error');
    }
  };

  const changes = statusWatch();
  const draw = (r) => {
    const live = LIVE.has(r.status);
    const said = changes([r], () => `Request #${id}`);
    if (said.length) announce(said.join(' '));
    morph(body,
      el('dl.facts',
        el('dt', 'Model'), el('dd', el('a', { href: '#/models/' + encodeURIComponent(r.model_id) }, r.model_id)),
        el('dt', 'Model version'), el('dd#request-model-version', r.model_version || '–'),
        el('dt', 'Status'), el('dd#request-status', { dataset: { status: r.status } }, badge(r.status)),
        r.failure_reason && r.failure_reason !== r.status ? [el('dt', 'Reason'), el('dd', r.failure_reason + (r.failure_detail ? ' — ' + r.failure_detail : ''))] : null,
        el('dt', 'Progress'), el('dd', progressBar(r.progress, 'Progress of this request')),
        el('dt', 'Inputs with errors'), el('dd#request-errors', String(r.error_count ?? 0)),
        el('dt', 'Header line'), el('dd', r.has_header ? (r.header ? el('code', r.header) : 'yes') : 'no'),
        r.input_column ? [el('dt', 'Columns'), el('dd#request-columns', `input: ${r.input_column}` +
          (r.key_column ? `, key: ${r.key_column}` : '') +
          ((r.extra_columns || []).length ? `, also kept: ${r.extra_columns.join(', ')}` : ''))] : null,
        el('dt', 'Cache opt-in'), el('dd', r.cache_opt_in ? 'yes' : 'no'),
        el('dt', 'Submitted'), el('dd', fmtTime(r.created_at)),
        el('dt', 'Started'), el('dd', fmtTime(r.started_at)),
        el('dt', 'Finished'), el('dd', fmtTime(r.finished_at)),
        el('dt', 'Duration'), el('dd', duration(r)),
        el('dt', 'Attempts'), el('dd', String(r.attempts ?? 0)),
        el('dt', 'Model calls'), el('dd#request-calls', String(r.model_calls ?? 0) +
          (r.extra_calls ? ` (${r.extra_calls} to isolate failing inputs)` : '')),
        el('dt', 'Isolating failing inputs'), el('dd#request-isolation', fmtMs(r.isolation_ms ?? 0)),
        (r.screened_count || r.known_bad_count) ? [
          el('dt', 'Not sent to the model'),
          el('dd#request-screened', [
            r.screened_count ? `${r.screened_count} rejected by the SMILES check` : null,
            r.screened_count && r.known_bad_count ? '; ' : null,
            r.known_bad_count ? `${r.known_bad_count} known to fail on this model version` : null])] : null),
      el('div.actions',
        r.status === 'COMPLETED' ? [el('span', 'Download the result: '), downloads(r)] : null,
        live ? el('button.danger#cancel-request', { type: 'button', onclick: cancel }, 'Cancel request') : null,
        el('a.button.secondary', { href: '#/requests' }, 'All my requests')),
      live ? el('p.hint', 'This page updates by itself while the request runs.') : null);
    if (r.status === 'COMPLETED' && !resultShown) {
      resultShown = true;
      perInputErrors(id, extra);
    }
  };

  const load = async () => {
    try {
      const r = await get(`/api/requests/${id}`);
      draw(r);
      return LIVE.has(r.status);
    } catch (e) {
      body.replaceChildren(el('p.error', { role: 'alert' },
        e.status === 404 ? 'There is no such request (or it is not yours).' : errorText(e)));
      return e.status !== 404; // 401: the session module decides
    }
  };
  let stop = poll(load, POLL_MS);
  return () => stop();
}
