// pages/admin-health.js — admin: nodes (capacity, allocatable, usage,
// instance count; GET /api/nodes every 2 s) and hub health (GET /api/health
// plus the hub counters of GET /metrics: supervisor child restarts, queue
// depth per model, requests and instances by state, scrape statistics;
// every 5 s).
//
// Runs in: the browser. Called by: app.js (#/admin/nodes, #/admin/health).
// Owns: one poller per page (stopped by the returned cleanup).
//
// Polls update the page in place (ui.morph): an opened "all fields" or a
// focused link survives them. The sections are not live regions: a pass
// that changes a timestamp would be read out every few seconds.
//
// Answers are rendered generically where they can grow (health keys,
// metric families by their labels), so a field added to the API shows up
// without a page change.

import { get } from '../api.js';
import { el, pageTitle, table, badge, fmtTime, fmtNum, errorText, poll, morph } from '../ui.js';
import { probe } from '../health.js';
import { bandOf } from '../gauges.js';

const POLL_MS = 2000;
const HEALTH_POLL_MS = 5000; // /metrics is heavier than the other live views

function items(r) {
  return (r && (r.items || r.nodes)) || (Array.isArray(r) ? r : []);
}

/** A value as text: objects as compact JSON. */
function show(v) {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function kv(obj, skip = []) {
  return el('dl.facts', Object.entries(obj || {}).filter(([k]) => !skip.includes(k))
    .map(([k, v]) => [el('dt', k.replace(/_/g, ' ')), el('dd', show(v))]));
}

function pick(o, ...keys) {
  for (const k of keys) {
    const v = k.split('.').reduce((a, p) => (a && a[p] !== undefined ? a[p] : undefined), o);
    if (v !== undefined && v !== null) return v;
  }
  return null;
}

function usageCell(used, total, unit, res) {
  if (used === null && total === null) return '–';
  const p = used !== null && total ? (used * 100) / total : null;
  const band = bandOf(res, p);
  return el('span', band ? el('span.band-' + band.colour, el('span.band-chip', { 'aria-hidden': 'true' })) : null,
    `${fmtNum(used)} / ${fmtNum(total)} ${unit}` + (p !== null ? ` (${Math.round(p)} %)` : ''));
}

/** The node autoscaler's last pass and decisions (GET /api/autoscaler): why each thing happened. */
async function loadAutoscaler(out) {
  let a;
  try {
    a = await get('/api/autoscaler');
  } catch (e) {
    morph(out, el('p.error', { role: 'alert' }, e.status === 404 ? 'No autoscaler API on this hub.' : errorText(e)));
    return e.status !== 404 && e.status !== 403;
  }
  if (!a.enabled) {
    morph(out, el('p', a.config_error ? `Autoscaler configuration error: ${a.config_error}` : 'Node autoscaling is off (no autoscale.groups).'));
    return true;
  }
  const snap = a.snapshot || {};
  const parts = [
    el('p', `Last pass: ${a.updated_at ? fmtTime(a.updated_at) : 'none yet'}${a.replica ? ` on ${a.replica}` : ''}.`),
    el('h3', 'Node groups'),
    table([
      { head: 'Group', cell: (g) => g.name },
      { head: 'Mode', cell: (g) => g.mode },
      { head: 'Size (min–max)', cell: (g) => `${show(g.size)} (${g.min}–${g.max})` },
      { head: 'Nodes', cell: (g) => show(g.nodes) },
      { head: 'Provisioning', cell: (g) => show(g.provisioning) },
      { head: 'Node shape', cell: (g) => `${g.cpu_m} m, ${g.memory_mib} MiB` },
    ], snap.groups || [], { cls: 'as-groups', empty: 'No pass yet.' }),
    el('h3', 'Pending model pods'),
    table([
      { head: 'Pod', cell: (p) => p.pod },
      { head: 'Model', cell: (p) => p.model_id },
      { head: 'Requests', cell: (p) => `${p.cpu_request_m} m, ${p.memory_request_mib} MiB` },
      { head: 'Verdict', cell: (p) => badge(p.verdict) },
      { head: 'Why', cell: (p) => p.message },
      { head: 'Scheduler', cell: (p) => p.scheduler_message || '–' },
    ], snap.pending_pods || [], { cls: 'as-pending', empty: 'No model pod is waiting for a node.' }),
    el('h3', 'Nodes: the autoscaler\'s view'),
    table([
      { head: 'Node', cell: (n) => n.name },
      { head: 'Group', cell: (n) => n.group || 'unmanaged' },
      { head: 'State', cell: (n) => `${n.ready ? 'Ready' : 'NotReady'}${n.cordoned ? ', cordoned' : ''}` },
      { head: 'Requested', cell: (n) => `${n.requested_cpu_m}/${n.allocatable_cpu_m} m, ${n.requested_memory_mib}/${n.allocatable_memory_mib} MiB` },
      { head: 'Model pods (busy)', cell: (n) => `${n.model_pods} (${n.busy_pods})` },
      { head: 'Idle', cell: (n) => `${fmtNum(n.idle_seconds, 0)} s` },
      { head: 'Action', cell: (n) => (n.action === 'keep' ? `keep: ${n.reason}` : n.action) },
    ], snap.nodes || [], { cls: 'as-nodes', empty: 'No nodes.' }),
  ];
  if ((a.models_without_group || []).length) {
    parts.push(el('p.error', `Models whose requests fit no node group (they can never start): ${a.models_without_group.join(', ')}`));
  }
  parts.push(el('h3', 'Decisions'), table([
    { head: 'When', cell: (d) => fmtTime(d.at) },
    { head: 'Action', cell: (d) => d.action },
    { head: 'Group', cell: (d) => d.node_group || '–' },
    { head: 'Node / pod', cell: (d) => d.node || d.pod || '–' },
    { head: 'Count', cell: (d) => (d.count == null ? '' : String(d.count)) },
    { head: 'Reason', cell: (d) => d.reason },
  ], (a.decisions || []).slice(0, 30), { cls: 'as-decisions', empty: 'No decision yet.' }));
  morph(out, ...parts);
  return true;
}

export async function nodesPage(view) {
  const out = el('div#nodes');
  const as = el('section#autoscaler');
  view.append(pageTitle('Nodes'), el('p.lead', 'Machines that run model instances (the local backend has one: this machine).'), out,
    el('h2', 'Node autoscaler'), as);
  const stopAs = poll(() => loadAutoscaler(as), POLL_MS * 2);
  const load = async () => {
    try {
      const list = items(await get('/api/nodes'));
      morph(out, table([
        { head: 'Node', cell: (n) => n.name || n.node || n.id || '–' },
        { head: 'Capacity', cell: (n) => `${show(pick(n, 'cpu.capacity'))} m, ${show(pick(n, 'memory.capacity'))} MiB` },
        { head: 'Last sample', cell: (n) => (n.last_sample_at_ms ? fmtTime(new Date(n.last_sample_at_ms).toISOString()) : '–') },
        { head: 'CPU used / allocatable', cell: (n) => usageCell(pick(n, 'cpu.usage', 'usage.cpu_m'), pick(n, 'cpu.allocatable', 'cpu.capacity', 'allocatable.cpu_m'), 'm', 'cpu') },
        { head: 'Memory used / allocatable', cell: (n) => usageCell(pick(n, 'memory.usage', 'usage.memory_mib'), pick(n, 'memory.allocatable', 'memory.capacity', 'allocatable.memory_mib'), 'MiB', 'memory') },
        { head: 'Instances', cell: (n) => show(pick(n, 'instance_count', 'instances')) },
        { head: 'Details', cell: (n) => el('details', el('summary', 'all fields'), kv(n)) },
      ], list, { cls: 'nodes', empty: 'No nodes reported.' }));
      return true;
    } catch (e) {
      morph(out, el('p.error', { role: 'alert' }, e.status === 404 ? 'The nodes API is not available on this hub yet.' : errorText(e)));
      return e.status !== 404 && e.status !== 403; // 401: the session module decides
    }
  };
  const stop = poll(load, POLL_MS);
  return () => { stop(); stopAs(); };
}

/** Prometheus text → {family: [{labels: {..}, value}]} (comments skipped). */
export function parseMetrics(text) {
  const out = {};
  for (const line of String(text || '').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let l;
    while ((l = re.exec(m[3] || ''))) labels[l[1]] = l[2].replace(/\\(.)/g, (x, c) => (c === 'n' ? '\n' : c));
    (out[m[1]] = out[m[1]] || []).push({ labels, value: Number(m[4]) });
  }
  return out;
}

const FAMILIES = [
  ['modelhub_child_restarts_total', 'Supervisor children: restarts'],
  ['modelhub_queue_depth', 'Queue depth per model'],
  ['modelhub_requests', 'Requests by status'],
  ['modelhub_instances', 'Instances by state'],
  ['modelhub_instance_terminations', 'Instance terminations'],
  ['modelhub_metrics_segment_up', 'Metrics segment attached'],
  ['modelhub_scrape_cycles_total', 'Scrape cycles'],
  ['modelhub_scrape_last_duration_seconds', 'Last scrape duration (s)'],
  ['modelhub_scrape_errors_total', 'Scrape errors'],
];

function familyTable(rows) {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.labels)))];
  return table(keys.map((k) => ({ head: k, cell: (r) => r.labels[k] ?? '' }))
    .concat([{ head: 'value', cell: (r) => fmtNum(r.value, 3) }]), rows);
}

export async function healthPage(view) {
  const api = el('section#hub-health', el('h2', 'API'));
  const hub = el('section#hub-metrics');
  const scaler = el('section#hub-autoscaler');
  view.append(pageTitle('Hub health'), api, hub, scaler);
  let autoscaler = true;
  const load = async () => {
    const h = await probe(); // plain fetch: also updates the footer
    if (!h) {
      morph(api, el('h2', 'API'), el('p.error', { role: 'alert' }, 'The API does not answer.'));
      return true;
    }
    morph(api, el('h2', 'API'),
      el('p', 'Status: ', badge(String(h.status || 'unknown').toUpperCase()), ` — version ${h.version || '–'}, checked ${fmtTime(new Date().toISOString())}`),
      kv(h));
    try {
      const fams = parseMetrics(await get('/metrics', { headers: { Accept: 'text/plain' } }));
      morph(hub, el('h2', 'Hub (from /metrics)'),
        FAMILIES.filter(([f]) => fams[f]).map(([f, title]) => el('section', el('h3', title), familyTable(fams[f]))),
        FAMILIES.some(([f]) => fams[f]) ? null : el('p.hint', 'No hub figures yet (is modelhubd running?).'),
        el('p', el('a', { href: '/metrics' }, 'All metrics (Prometheus text)')));
    } catch (e) {
      morph(hub, el('h2', 'Hub'), el('p.error', errorText(e)));
    }
    if (autoscaler) {
      try {
        const a = await get('/api/autoscaler');
        morph(scaler, el('h2', 'Autoscaler'), kv(a));
      } catch (e) {
        morph(scaler);
        if (e.status === 404) autoscaler = false; // not on this hub (local backend)
      }
    }
    return true;
  };
  const stop = poll(load, HEALTH_POLL_MS);
  return () => stop();
}
