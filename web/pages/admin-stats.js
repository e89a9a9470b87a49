// pages/admin-stats.js — admin: request statistics over a date range
// (optionally one model): outcomes by day and by model, failure reasons,
// input-size buckets with queue-wait and run-time percentiles, cache hit
// rate, open requests, and a CSV export. Charts, with a table under each
// holding the same figures (readable without the charts).
//
// Runs in: the browser. Called by: app.js (#/admin/stats?from=&to=&model_id=).
// Owns: its Chart instances (destroyed by the cleanup it returns).
//
// Calls GET /api/stats (JSON; format=csv for the download link) and GET
// /api/models (the model filter). Chart.js is Debian's libjs-chart.js,
// served by nginx at /vendor/chart.js/ (no build step) and loaded on first
// use with import(); without it the page says so and shows the tables.

import { get, qs } from '../api.js';
import { el, field, pageTitle, table, errorText, setContent, fmtMs, fmtNum } from '../ui.js';

const CHART_JS = '/vendor/chart.js/chart.esm.js';
const OUTCOMES = [
  ['completed', 'Completed', '#2e7d32'],
  ['failed', 'Failed', '#c62828'],
  ['cancelled', 'Cancelled', '#6b6b6b'],
];
let chartLib = null;

/** Chart.js with every chart type registered, or null when it cannot load. */
async function loadCharts() {
  if (chartLib) return chartLib;
  try {
    const m = await import(CHART_JS);
    m.Chart.register(...m.registerables);
    chartLib = m.Chart;
  } catch (e) {
    chartLib = null;
  }
  return chartLib;
}

function pct(rate) {
  return rate === null || rate === undefined ? '–' : fmtNum(rate * 100) + ' %';
}

/** A stacked bar chart of the three outcomes over labels, in box. */
function outcomeChart(Chart, box, labels, rows, opts = {}) {
  const canvas = el('canvas', { role: 'img', 'aria-label': opts.label });
  setContent(box, canvas);
  return new Chart(canvas, {
    type: 'bar',
    data: {
      labels,
      datasets: OUTCOMES.map(([k, name, color]) => ({ label: name, data: rows.map((r) => r[k]), backgroundColor: color })),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      indexAxis: opts.horizontal ? 'y' : 'x',
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
    },
  });
}

function barChart(Chart, box, labels, values, label, color) {
  const canvas = el('canvas', { role: 'img', 'aria-label': label });
  setContent(box, canvas);
  return new Chart(canvas, {
    type: 'bar',
    data: { labels, datasets: [{ label, data: values, backgroundColor: color }] },
    options: { animation: false, maintainAspectRatio: false, scales: { y: { beginAtZero: true } } },
  });
}

const countCols = [
  { head: 'Completed', cell: (r) => String(r.completed) },
  { head: 'Failed', cell: (r) => String(r.failed) },
  { head: 'Cancelled', cell: (r) => String(r.cancelled) },
  { head: 'Inputs', cell: (r) => String(r.inputs) },
  { head: 'Cache hits', cell: (r) => pct(r.cache_hit_rate) },
];

function section(id, title, ...body) {
  return el('section.card.stats-section#' + id, el('h2', title), ...body);
}

function summary(st) {
  const t = st.totals;
  const tile = (id, label, value) => el('div.stat-tile#' + id, el('span.stat-value', value), el('span.stat-label', label));
  return el('div.stat-tiles#stats-summary',
    tile('stat-completed', 'completed', String(t.completed)),
    tile('stat-failed', 'failed', String(t.failed)),
    tile('stat-cancelled', 'cancelled', String(t.cancelled)),
    tile('stat-cache', 'cache hit rate', pct(t.cache_hit_rate)),
    tile('stat-wait', 'queue wait p50 / p95', `${fmtMs(st.queue_wait_ms.p50)} / ${fmtMs(st.queue_wait_ms.p95)}`),
    tile('stat-run', 'run time p50 / p95', `${fmtMs(st.run_ms.p50)} / ${fmtMs(st.run_ms.p95)}`),
    tile('stat-open', 'queued / running now', `${st.open.queued} / ${st.open.running}`));
}

/** Every day from..to (YYYY-MM-DD, UTC) with its counts, zeros for the
 * days the API leaves out (no finished request), so the chart's time axis
 * has no gaps. */
function allDays(st) {
  const seen = new Map(st.by_day.map((d) => [d.day, d]));
  const out = [];
  for (let t = Date.parse(st.from + 'T00:00:00Z'); t <= Date.parse(st.to + 'T00:00:00Z'); t += 86400000) {
    const day = new Date(t).toISOString().slice(0, 10);
    out.push(seen.get(day) || { day, completed: 0, failed: 0, cancelled: 0 });
  }
  return out;
}

/** Draw the answer: sections with a chart box and a table each. */
function draw(out, st, Chart, charts) {
  const box = (id) => el('div.chart-box#' + id);
  const dayBox = box('chart-by-day');
  const modelBox = box('chart-by-model');
  const reasonBox = box('chart-reasons');
  const sizeBox = box('chart-by-size');
  setContent(out,
    el('p#stats-range', `Requests finished from ${st.from} to ${st.to} (UTC)` + (st.model_id ? `, model ${st.model_id}` : ', all models') + '.'),
    summary(st),
    Chart ? null : el('p.notice#charts-missing', 'Charts are not available (Chart.js, Debian package libjs-chart.js, is not installed on the server); the tables show the same figures.'),
    section('stats-by-day', 'By day', dayBox,
      table([{ head: 'Day', cell: (r) => r.day }, ...countCols], st.by_day, { cls: 'stats-by-day', empty: 'No finished requests in this range.' })),
    section('stats-by-model', 'By model', modelBox,
      table([{ head: 'Model', cell: (r) => el('a', { href: '#/admin/stats' + qs({ from: st.from, to: st.to, model_id: r.model_id }) }, r.model_id) }, ...countCols],
        st.by_model, { cls: 'stats-by-model', empty: 'No finished requests in this range.' })),
    section('stats-reasons', 'Failure reasons', reasonBox,
      table([{ head: 'Reason', cell: (r) => r.reason }, { head: 'Requests', cell: (r) => String(r.requests) }],
        st.failure_reasons, { cls: 'stats-reasons', empty: 'No failed or cancelled requests.' })),
    section('stats-by-size', 'By input size (molecules per request)', sizeBox,
      table([{ head: 'Inputs', cell: (r) => r.bucket }, ...countCols.slice(0, 3),
        { head: 'Queue wait p50 / p95', cell: (r) => `${fmtMs(r.queue_wait_ms.p50)} / ${fmtMs(r.queue_wait_ms.p95)}` },
        { head: 'Run p50 / p95 / p99', cell: (r) => `${fmtMs(r.run_ms.p50)} / ${fmtMs(r.run_ms.p95)} / ${fmtMs(r.run_ms.p99)}` }],
      st.by_size, { cls: 'stats-by-size' })),
    el('p.hint', 'Percentiles are read from histograms with buckets 19 % wide: each is at most 19 % above the true value.'));
  if (!Chart) return;
  const days = allDays(st);
  charts.push(outcomeChart(Chart, dayBox, days.map((r) => r.day), days, { label: 'Requests by day' }));
  charts.push(outcomeChart(Chart, modelBox, st.by_model.map((r) => r.model_id), st.by_model, { label: 'Requests by model', horizontal: true }));
  charts.push(barChart(Chart, reasonBox, st.failure_reasons.map((r) => r.reason), st.failure_reasons.map((r) => r.requests), 'Requests', '#c62828'));
  charts.push(outcomeChart(Chart, sizeBox, st.by_size.map((r) => r.bucket), st.by_size, { label: 'Requests by input size' }));
}

export async function statsPage(view, ctx) {
  const q = ctx.query;
  const f = {
    from: field({ name: 'from', label: 'From', type: 'date', value: q.get('from') || '' }),
    to: field({ name: 'to', label: 'To', type: 'date', value: q.get('to') || '' }),
    model_id: field({ name: 'model_id', label: 'Model', type: 'select', value: q.get('model_id') || '', options: [['', 'All models']] }),
  };
  const params = { from: q.get('from') || '', to: q.get('to') || '', model_id: q.get('model_id') || '' };
  const csv = el('a.button.secondary#stats-csv', { href: '/api/stats' + qs(Object.assign({}, params, { format: 'csv' })), download: '' }, 'Download CSV');
  const form = el('form.filters#stats-filters', { novalidate: true },
    el('p.form-error', { role: 'alert' }),
    f.from, f.to, f.model_id,
    el('div.field', el('button#stats-show', { type: 'submit' }, 'Show')),
    el('div.field', csv));
  const out = el('div#stats-out', el('p', 'Loading…'));
  view.append(pageTitle('Stats'),
    el('p.lead', 'Finished requests by day, model, outcome and size; how long they waited and ran; how often the cache answered.'),
    form, out);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = {};
    for (const k of Object.keys(f)) if (f[k].input.value) v[k] = f[k].input.value;
    ctx.navigate('/admin/stats' + qs(v));
  });
  get('/api/models').then((r) => {
    for (const m of r.items || []) f.model_id.input.append(el('option', { value: m.id, selected: m.id === params.model_id }, m.id));
  }).catch(() => {});

  const charts = [];
  try {
    const [st, Chart] = await Promise.all([get('/api/stats' + qs(params)), loadCharts()]);
    if (!f.from.input.value) f.from.input.value = st.from;
    if (!f.to.input.value) f.to.input.value = st.to;
    draw(out, st, Chart, charts);
    out.dataset.ready = '1';
  } catch (e) {
    for (const [k, msg] of Object.entries(e.fields || {})) {
      if (f[k]) f[k].querySelector('.field-error').textContent = msg;
    }
    setContent(out, el('p.error', { role: 'alert' }, 'Could not load the stats: ' + errorText(e)));
  }
  return () => charts.forEach((c) => c.destroy());
}
