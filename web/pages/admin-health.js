// pages/admin-health.js — admin: nodes (capacity, allocatable, usage,
// instance count; GET /api/nodes every 2 s) and hub health (GET /api/health
// plus the hub counters of GET /metrics: supervisor child restarts, queue
// depth per model, requests and instances by state, scrape statistics;
// every 5 s).
//
// Runs in: the browser. Called by: app.js (#/admin/nodes, #/admin/health).
// Owns: one poller per page (stopped by the returned cleanup).
//
// Answers are rendered generically where they can grow (health keys,
// metric families by their labels), so a field added to the API shows up
// without a page change.

import { get } from '../api.js';
import { el, pageTitle, table, badge, fmtTime, fmtNum, errorText, poll, setContent } from '../ui.js';
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

export async function nodesPage(view) {
  const out = el('div#nodes');
  view.append(pageTitle('Nodes'), el('p.lead', 'Machines that run model instances (the local backend has one: this machine).'), out);
  const load = async () => {
    try {
      const list = items(await get('/api/nodes'));
      setContent(out, table([
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
      setContent(out, el('p.error', { role: 'alert' }, e.status === 404 ? 'The nodes API is not available on this hub yet.' : errorText(e)));
      return e.status !== 404 && e.status !== 403; // 401: the session module decides
    }
  };
  const stop = poll(load, POLL_MS);
  return () => stop();
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
      setContent(api, el('h2', 'API'), el('p.error', { role: 'alert' }, 'The API does not answer.'));
      return true;
    }
    setContent(api, el('h2', 'API'),
      el('p', 'Status: ', badge(String(h.status || 'unknown').toUpperCase()), ` — version ${h.version || '–'}, checked ${fmtTime(new Date().toISOString())}`),
      kv(h));
    try {
      const fams = parseMetrics(await get('/metrics', { headers: { Accept: 'text/plain' } }));
      setContent(hub, el('h2', 'Hub (from /metrics)'),
        FAMILIES.filter(([f]) => fams[f]).map(([f, title]) => el('section', el('h3', title), familyTable(fams[f]))),
        FAMILIES.some(([f]) => fams[f]) ? null : el('p.hint', 'No hub figures yet (is modelhubd running?).'),
        el('p', el('a', { href: '/metrics' }, 'All metrics (Prometheus text)')));
    } catch (e) {
      setContent(hub, el('h2', 'Hub'), el('p.error', errorText(e)));
    }
    if (autoscaler) {
      try {
        const a = await get('/api/autoscaler');
        setContent(scaler, el('h2', 'Autoscaler'), kv(a));
      } catch (e) {
        setContent(scaler);
        if (e.status === 404) autoscaler = false; // not on this hub (local backend)
      }
    }
    return true;
  };
  const stop = poll(load, HEALTH_POLL_MS);
  return () => stop();
}
