// pages/admin-instances.js — admin: active model instances with live
// gauges and charts, finished instances, and one instance's history
// (seeds: "active instances page", "model instance history page",
// "instance actions: stop / destroy, download logs, view history").
//
// Runs in: the browser. Called by: app.js (#/admin/instances,
// #/admin/instances/finished, #/admin/instances/{id}).
// Owns: the pollers of the page (stopped by the returned cleanup) and, on
// the active page, one card per instance kept across polls (keyed by id)
// so focus and open <details> survive the 2 s refresh, plus an
// IntersectionObserver telling which cards are on screen.
//
// Calls: GET /api/instances?state=active|finished&model=&status=
// &started_from=&started_to=&limit=&cursor= every 2 s (active only),
// GET /api/instances/{id}/samples?since=<t_ms> every 4 s per card on
// screen (incremental), GET /api/instances/{id}/events while a card's
// events are open, GET /api/instances/{id}, POST
// /api/instances/{id}/stop, and a plain link to /api/instances/{id}/logs.
// Instance fields are read defensively (null pod fields are normal).

import { get, post, qs } from '../api.js';
import { el, field, pageTitle, table, badge, fmtTime, fmtDuration, errorText, poll, flash, setContent, statusText, morph } from '../ui.js';
import { loadBands, gaugeBlock, setGauges, gaugesOf, bandLegend, sparkline, sparkLegend, bandOf, timeChart, timeChartLegend } from '../gauges.js';

const POLL_MS = 2000;
const SAMPLES_MS = 4000;
const MAX_SAMPLES = 200;
const STATES = ['REQUESTED', 'STARTING', 'READY', 'BUSY', 'IDLE', 'TERMINATING'];
const REASONS = ['COMPLETED', 'FAILED', 'OOMKILLED', 'STOPPED', 'IDLE', 'LOST'];

function items(r) {
  return (r && (r.items || r.instances)) || (Array.isArray(r) ? r : []);
}

function samplesOf(r) {
  return (r && (r.items || r.samples)) || (Array.isArray(r) ? r : []);
}

function resOf(inst) {
  return inst.resources || inst;
}

function requestIds(inst) {
  const ids = [];
  if (inst.current_request_id) ids.push(inst.current_request_id);
  for (const x of inst.request_ids || []) if (!ids.includes(x)) ids.push(x);
  return ids;
}

/** The pod's status in words, from the API's snapshot.pod_state (the
 * kubernetes backend; null on the local one): "Running, ready". */
function podStatus(inst) {
  return podStateText((inst.snapshot || {}).pod_state);
}

function podStateText(ps) {
  if (!ps || !ps.phase) return null;
  const reason = ps.reason && !['ready', ps.phase.toLowerCase()].includes(ps.reason.toLowerCase()) ? ps.reason : null;
  return [ps.phase, reason, ps.ready ? 'ready' : 'not ready',
    ps.restarts ? `${ps.restarts} restart${ps.restarts === 1 ? '' : 's'}` : null,
    ps.deleting ? 'being deleted' : null].filter(Boolean).join(', ');
}

/** An event's detail cell: a POD_STATE event (one per pod change) as its
 * state in words plus the pod's status at that moment on demand; others as
 * their JSON. */
function eventDetail(e) {
  const d = typeof e.detail === 'string' ? e.detail : JSON.stringify(e.detail || {});
  if (e.kind !== 'POD_STATE' || !e.detail || typeof e.detail !== 'object') return el('code', d);
  return el('div.pod-state', podStateText(e.detail) || '–',
    e.detail.pod_status ? el('details', el('summary', 'Pod status at this point'),
      el('pre.pod', JSON.stringify(e.detail.pod_status, null, 2))) : null);
}

/** Why an instance ended, in words, without saying the reason twice
 * ('IDLE' + 'IDLE; stopped' → 'idle — stopped'). */
function endedText(inst) {
  const why = inst.termination_reason;
  const esc = why.replace(/[^A-Za-z0-9_]/g, '');
  const detail = String(inst.termination_detail || '').replace(new RegExp(`^${esc}\\b[;:,]?\\s*`, 'i'), '');
  return statusText(why) + (detail && detail.toUpperCase() !== why.toUpperCase() ? ' — ' + detail : '');
}

/** A Pending pod's scheduler status and the node autoscaler's verdict ("scheduling" in the API). */
function schedulingText(inst) {
  const sc = inst.scheduling;
  if (!sc) return null;
  const parts = [sc.reason || sc.phase];
  if (sc.scheduler_message) parts.push(`scheduler: ${sc.scheduler_message}`);
  if (sc.autoscaler_verdict) parts.push(`autoscaler: ${sc.autoscaler_verdict}${sc.autoscaler_message ? ' — ' + sc.autoscaler_message : ''}`);
  return parts.filter(Boolean).join('; ');
}

async function stopInstance(inst, after) {
  const serving = inst.current_request_id ? ` It serves request #${inst.current_request_id}, which is failed or requeued.` : ' It serves no request now.';
  if (!confirm(`Stop instance ${inst.id} of ${inst.model_id}?${serving}`)) return;
  try {
    await post(`/api/instances/${inst.id}/stop`, {});
    flash(`Stop of instance ${inst.id} requested.`, 'success');
    if (after) after();
  } catch (e) {
    flash(errorText(e), 'error');
  }
}

/** The card's or page's buttons; current() answers the instance as last
 * polled (the Stop button outlives polls, and its confirm must speak of
 * the request served now, not when the button was made). */
function actions(current, after) {
  const inst = current();
  const active = inst.state !== 'TERMINATED';
  return el('div.actions',
    active ? el('button.danger.small.stop-instance', { type: 'button', 'aria-label': `Stop instance ${inst.id}`, onclick: () => stopInstance(current(), after) }, 'Stop') : null,
    el('a.button.small.secondary', { href: `/api/instances/${inst.id}/logs`, download: `instance-${inst.id}.log`, 'aria-label': `Download logs of instance ${inst.id}` }, 'Logs'),
    el('a.button.small.secondary', { href: `#/admin/instances/${inst.id}`, 'aria-label': `History of instance ${inst.id}` }, 'History'));
}

/** Filters in the route's query; statuses: instance states (active page)
 * or termination reasons (finished page) — the API takes either. */
function filterForm(ctx, base, statuses) {
  const q = ctx.query;
  const f = {
    model: field({ name: 'model', label: 'Model', type: 'select', value: q.get('model') || '', options: [['', 'All models']] }),
    status: field({ name: 'status', label: statuses === REASONS ? 'Ended because' : 'Status', type: 'select', value: q.get('status') || '', options: [['', 'All']].concat(statuses.map((x) => [x, x])) }),
    started_from: field({ name: 'started_from', label: 'Started from', type: 'date', value: q.get('started_from') || '' }),
    started_to: field({ name: 'started_to', label: 'Started to', type: 'date', value: q.get('started_to') || '' }),
  };
  get('/api/models').then((r) => {
    for (const m of r.items || []) f.model.input.append(el('option', { value: m.id, selected: m.id === q.get('model') }, m.id));
  }).catch(() => {});
  const form = el('form.filters', { novalidate: true }, Object.values(f),
    el('div.field', el('button', { type: 'submit' }, 'Filter')),
    el('div.field', el('button.secondary', { type: 'button', onclick: () => ctx.navigate(base) }, 'Clear')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = {};
    for (const [k, w] of Object.entries(f)) if (w) v[k] = w.input.value;
    ctx.navigate(base + qs(v));
  });
  const params = {};
  for (const k of ['model', 'status', 'started_from', 'started_to']) if (q.get(k)) params[k] = q.get(k);
  return { form, params };
}

function tabs(current) {
  return el('nav.tabs', { 'aria-label': 'Instances' }, el('ul.nav-main',
    el('li', el('a', { href: '#/admin/instances', 'aria-current': current === 'active' ? 'page' : null }, 'Active')),
    el('li', el('a', { href: '#/admin/instances/finished', 'aria-current': current === 'finished' ? 'page' : null }, 'Finished'))));
}

/** One live card; .update(inst) refreshes it in place. */
function instanceCard(inst, refresh) {
  const head = el('h3');
  const facts = el('dl.facts');
  const gauges = gaugeBlock();
  const chart = el('div.chart');
  const evBody = el('div');
  const events = el('details.events', el('summary', 'Events (raw)'), evBody);
  // Loaded when opened, and again at each refresh while open.
  const loadEvents = async () => {
    if (!events.open) return;
    try {
      const r = await get(`/api/instances/${inst.id}/events`);
      setContent(evBody, el('pre.events', items(r).map((e) =>
        `${fmtTime(e.at)} ${e.source || 'hub'} ${e.kind} ${JSON.stringify(e.detail || {})}`).join('\n') || '(none)'));
    } catch (e) {
      setContent(evBody, el('p.error', errorText(e)));
    }
  };
  events.addEventListener('toggle', loadEvents);
  const card = el('article.card.instance-card', { dataset: { id: String(inst.id) }, 'aria-labelledby': `inst-${inst.id}-h` },
    head, facts, gauges, chart, events, actions(() => inst, refresh));
  card.loadEvents = loadEvents;
  head.id = `inst-${inst.id}-h`;
  let samples = [];
  let lastSamples = 0;
  card.update = (x) => {
    inst = x;
    card.dataset.state = x.state;
    setContent(head, `${x.model_id} · instance ${x.id} `, badge(x.state));
    const ids = requestIds(x);
    const pod = podStatus(x);
    setContent(facts,
      el('dt', 'Started'), el('dd', `${fmtTime(x.started_at)} (${fmtDuration((Date.now() - Date.parse(x.started_at)) / 1000)} ago)`),
      el('dt', 'Node'), el('dd', x.node || '–'),
      x.name ? [el('dt', 'Name'), el('dd', x.name)] : null,
      pod ? [el('dt', 'Pod status'), el('dd', String(pod))] : null,
      schedulingText(x) ? [el('dt', 'Scheduling'), el('dd.scheduling', schedulingText(x))] : null,
      el('dt', 'Request'), el('dd', ids.length ? ids.map((id, i) => [i ? ', ' : '', '#' + id]) : '–'),
      x.stop_requested ? [el('dt', 'Stop'), el('dd', 'requested')] : null);
    setGauges(gauges, x);
  };
  card.visible = true; // until the IntersectionObserver says otherwise
  card.loadSamples = async () => {
    // Charts off screen wait: with many instances this keeps the calls
    // per tick to what the admin can see.
    if (!card.visible || Date.now() - lastSamples < SAMPLES_MS) return;
    lastSamples = Date.now();
    try {
      const since = samples.length ? samples[samples.length - 1].t_ms : undefined;
      const r = await get(`/api/instances/${inst.id}/samples` + qs({ since }));
      const add = samplesOf(r).filter((s) => !since || s.t_ms > since);
      samples = samples.concat(add).slice(-MAX_SAMPLES);
    } catch (e) {
      /* samples are decoration: the gauges still show */
    }
    const r = resOf(inst);
    setContent(chart, sparkline(samples, r, `CPU and memory of instance ${inst.id}`), sparkLegend(samples));
  };
  card.update(inst);
  return card;
}

export async function activePage(view, ctx) {
  await loadBands();
  const { form, params } = filterForm(ctx, '/admin/instances', STATES);
  const out = el('div.grid#active-instances', { 'aria-live': 'off' });
  const summary = el('p.hint#instances-summary', { 'aria-live': 'polite' });
  view.append(pageTitle('Active instances'), tabs('active'), form, bandLegend(), summary, out);
  const cards = new Map();
  const seen = 'IntersectionObserver' in window ? new IntersectionObserver((entries) => {
    for (const e of entries) e.target.visible = e.isIntersecting;
  }) : null;
  const load = async () => {
    let list;
    try {
      list = items(await get('/api/instances' + qs(Object.assign({ state: 'active' }, params))));
    } catch (e) {
      setContent(out, el('p.error', { role: 'alert' }, errorText(e)));
      cards.clear();
      return e.status !== 403; // 401: the session module decides
    }
    const ids = new Set(list.map((i) => i.id));
    for (const [cid, c] of cards) {
      if (!ids.has(cid)) {
        if (seen) seen.unobserve(c);
        c.remove();
        cards.delete(cid);
      }
    }
    if (list.length) out.querySelector('.empty')?.remove();
    list.forEach((inst, idx) => {
      let c = cards.get(inst.id);
      if (!c) {
        c = instanceCard(inst, load);
        cards.set(inst.id, c);
        if (seen) seen.observe(c);
      } else {
        c.update(inst);
      }
      // Move only when out of place: a moved element loses keyboard focus.
      if (out.children[idx] !== c) out.insertBefore(c, out.children[idx] || null);
    });
    if (!list.length && !out.querySelector('.empty')) out.replaceChildren(el('p.empty', 'No active instances. They start when requests arrive.'));
    summary.textContent = `${list.length} active instance(s); updated ${fmtTime(new Date().toISOString())}.`;
    await Promise.all([...cards.values()].map((c) => Promise.all([c.loadSamples(), c.loadEvents()])));
    return true;
  };
  const stop = poll(load, POLL_MS);
  return () => {
    stop();
    if (seen) seen.disconnect();
  };
}

function peakCell(inst, res) {
  const g = gaugesOf(inst).find((x) => (x.resource === res || (res === 'memory' && x.resource === 'mem')) && x.stat === 'max');
  if (!g || g.value === null || g.value === undefined) return '–';
  const p = g.percent ?? (g.of ? (g.value * 100) / g.of : null);
  const band = g.colour ? { colour: g.colour, name: g.band } : bandOf(res, p);
  return el('span', band ? el('span.band-' + band.colour, el('span.band-chip', { 'aria-hidden': 'true' })) : null,
    `${Math.round(g.value)} / ${g.of ?? '–'}` + (p !== null && p !== undefined ? ` (${Math.round(p)} %)` : ''));
}

export async function finishedPage(view, ctx) {
  await loadBands();
  const { form, params } = filterForm(ctx, '/admin/instances/finished', REASONS);
  const out = el('div#finished-instances');
  const more = el('button.secondary', { type: 'button', hidden: true }, 'Older instances');
  view.append(pageTitle('Finished instances'), tabs('finished'), form, out, more);
  let all = [];
  let next = null;
  const draw = () => {
    setContent(out, table([
      { head: 'Instance', cell: (i) => el('a', { href: `#/admin/instances/${i.id}` }, String(i.id)) },
      { head: 'Model', cell: (i) => i.model_id },
      { head: 'Node', cell: (i) => i.node || '–' },
      { head: 'Started', cell: (i) => fmtTime(i.started_at) },
      { head: 'Ended', cell: (i) => fmtTime(i.terminated_at) },
      { head: 'Reason', cell: (i) => (i.termination_reason ? badge(i.termination_reason) : '–') },
      { head: 'Requests', cell: (i) => requestIds(i).map((x) => '#' + x).join(', ') || '–' },
      { head: 'CPU max / limit (m)', cell: (i) => peakCell(i, 'cpu') },
      { head: 'Memory max / limit (MiB)', cell: (i) => peakCell(i, 'memory') },
      { head: 'Logs', cell: (i) => el('a', { href: `/api/instances/${i.id}/logs`, download: `instance-${i.id}.log` }, 'download') },
    ], all, { cls: 'finished', empty: 'No finished instances match.' }));
    more.hidden = !next;
  };
  const load = async (cursor) => {
    try {
      const r = await get('/api/instances' + qs(Object.assign({ state: 'finished', limit: 50, cursor }, params)));
      all = cursor ? all.concat(items(r)) : items(r);
      next = r.next_cursor || null;
      draw();
    } catch (e) {
      setContent(out, el('p.error', { role: 'alert' }, errorText(e)));
    }
  };
  more.addEventListener('click', () => load(next));
  await load();
}

export async function detailPage(view, ctx) {
  await loadBands();
  const id = ctx.params.id;
  if (!/^\d{1,18}$/.test(id)) {
    view.append(pageTitle('Instance'), el('p.error', 'There is no such instance.'));
    return null;
  }
  const top = el('div#instance-detail');
  const gauges = gaugeBlock();
  const chart = el('div.chart');
  const events = el('section#instance-events', el('h2', 'History'));
  const logs = el('section#instance-logs', el('h2', 'Logs'));
  view.append(pageTitle(`Instance ${id}`), top, el('h2', 'Resources'), bandLegend(), gauges, chart, events, logs);
  let inst = null;
  let samples = [];
  let samplesFinal = false;

  const loadEvents = async () => {
    try {
      const r = await get(`/api/instances/${id}/events`);
      const evs = items(r).length ? items(r) : (r.events || []);
      const snap = r.snapshot || (r.instance && r.instance.snapshot) || (inst && inst.snapshot);
      // In place: an opened snapshot stays open, focus stays where it is.
      morph(events, el('h2', 'History'), table([
        { head: 'At', cell: (e) => fmtTime(e.at) },
        { head: 'Source', cell: (e) => e.source || 'hub' },
        { head: 'Event', cell: (e) => e.kind || e.type || '–' },
        { head: 'Detail', cell: eventDetail },
      ], evs, { cls: 'events', empty: 'No events recorded.' }),
      snap && Object.keys(snap).length ? el('details', el('summary', 'Instance / pod snapshot (raw)'), el('pre.pod', JSON.stringify(snap, null, 2))) : null);
    } catch (e) {
      setContent(events, el('h2', 'History'), el('p.error', errorText(e)));
    }
  };
  const showLogs = async (btn) => {
    btn.disabled = true;
    try {
      const text = await get(`/api/instances/${id}/logs`, { headers: { Accept: 'text/plain' } });
      const t = typeof text === 'string' ? text : JSON.stringify(text);
      setContent(logs, el('h2', 'Logs'), el('pre.events', t.length > 200000 ? '…' + t.slice(-200000) : (t || '(empty)')),
        el('a.button.secondary', { href: `/api/instances/${id}/logs`, download: `instance-${id}.log` }, 'Download'));
    } catch (e) {
      flash(errorText(e), 'error');
      btn.disabled = false;
    }
  };
  const logBtn = el('button.secondary', { type: 'button' }, 'Show logs');
  logBtn.addEventListener('click', () => showLogs(logBtn));
  logs.append(el('div.actions', logBtn, el('a.button.secondary', { href: `/api/instances/${id}/logs`, download: `instance-${id}.log` }, 'Download')));

  let eventsAt = 0;
  const load = async () => {
    try {
      inst = await get(`/api/instances/${id}`);
    } catch (e) {
      setContent(top, el('p.error', { role: 'alert' }, e.status === 404 ? 'There is no such instance.' : errorText(e)));
      return e.status !== 404 && e.status !== 403; // 401: the session module decides
    }
    const active = inst.state !== 'TERMINATED';
    const r = resOf(inst);
    // In place (morph): the Stop button keeps keyboard focus across polls.
    morph(top,
      el('dl.facts',
        el('dt', 'Model'), el('dd', el('a', { href: '#/admin/models/' + encodeURIComponent(inst.model_id) }, inst.model_id)),
        el('dt', 'State'), el('dd#instance-state', badge(inst.state)),
        inst.termination_reason ? [el('dt', 'Ended because'), el('dd#instance-ended', endedText(inst))] : null,
        el('dt', 'Backend'), el('dd', inst.backend || '–'),
        el('dt', 'Node'), el('dd', inst.node || '–'),
        inst.name ? [el('dt', 'Name'), el('dd', inst.name)] : null,
        podStatus(inst) ? [el('dt', 'Pod status'), el('dd', String(podStatus(inst)))] : null,
        schedulingText(inst) ? [el('dt', 'Scheduling'), el('dd.scheduling', schedulingText(inst))] : null,
        el('dt', 'Requests served'), el('dd', requestIds(inst).map((x) => '#' + x).join(', ') || '–'),
        el('dt', 'Resources'), el('dd', `CPU ${r.cpu_request_m ?? '–'}–${r.cpu_limit_m ?? '–'} m, memory ${r.memory_request_mib ?? '–'}–${r.memory_limit_mib ?? '–'} MiB`),
        el('dt', 'Started'), el('dd', fmtTime(inst.started_at)),
        el('dt', 'Ready'), el('dd', fmtTime(inst.ready_at)),
        el('dt', 'Ended'), el('dd', fmtTime(inst.terminated_at))),
      actions(() => inst, load));
    setGauges(gauges, inst);
    // Live samples while it runs; once it ended, those the monitor kept
    // (asked for once): the chart stays for finished instances.
    if (active || !samplesFinal) {
      try {
        const since = samples.length ? samples[samples.length - 1].t_ms : undefined;
        const s = await get(`/api/instances/${id}/samples` + qs({ since }));
        samples = samples.concat(samplesOf(s).filter((x) => !since || x.t_ms > since)).slice(-MAX_SAMPLES);
        samplesFinal = !active;
      } catch (e) {
        /* no samples (e.g. another replica's instance): gauges still show */
      }
      setContent(chart, timeChart(samples, r, `CPU and memory of instance ${id} over time`), timeChartLegend(samples));
    }
    if (Date.now() - eventsAt > 10000 || !active) {
      eventsAt = Date.now();
      await loadEvents();
    }
    return active;
  };
  const stop = poll(load, POLL_MS);
  return () => stop();
}
