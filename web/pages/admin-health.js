// pages/admin-health.js — admin: nodes (capacity, allocatable, usage,
// instance count) and hub health (API, database, supervisor children,
// queue depth, replicas) — whatever GET /api/health and GET /api/nodes
// report, refreshed every 2 s.
//
// Runs in: the browser. Called by: app.js (#/admin/nodes, #/admin/health).
// Owns: one poller per page (stopped by the returned cleanup).
//
// Both pages render the answers generically (known fields first, the rest
// as key/value rows), so a field added to the API shows up without a
// page change.

import { get } from '../api.js';
import { el, pageTitle, table, badge, fmtTime, fmtNum, errorText, poll, setContent } from '../ui.js';
import { probe } from '../health.js';
import { bandOf } from '../gauges.js';

const POLL_MS = 2000;

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
        { head: 'Status', cell: (n) => badge(pick(n, 'status', 'state', 'ready') === true ? 'READY' : (pick(n, 'status', 'state') || 'unknown')) },
        { head: 'Group', cell: (n) => show(pick(n, 'group', 'node_group')) },
        { head: 'CPU used / allocatable', cell: (n) => usageCell(pick(n, 'usage.cpu_m', 'cpu_usage_m', 'cpu_m'), pick(n, 'allocatable.cpu_m', 'cpu_allocatable_m', 'capacity.cpu_m', 'cpu_capacity_m'), 'm', 'cpu') },
        { head: 'Memory used / allocatable', cell: (n) => usageCell(pick(n, 'usage.memory_mib', 'memory_usage_mib', 'memory_mib'), pick(n, 'allocatable.memory_mib', 'memory_allocatable_mib', 'capacity.memory_mib', 'memory_capacity_mib'), 'MiB', 'memory') },
        { head: 'Instances', cell: (n) => show(pick(n, 'instances', 'instance_count')) },
        { head: 'Details', cell: (n) => el('details', el('summary', 'all fields'), kv(n)) },
      ], list, { cls: 'nodes', empty: 'No nodes reported.' }));
      return true;
    } catch (e) {
      setContent(out, el('p.error', { role: 'alert' }, e.status === 404 ? 'The nodes API is not available on this hub yet.' : errorText(e)));
      return e.status !== 404 && e.status !== 401 && e.status !== 403;
    }
  };
  const stop = poll(load, POLL_MS);
  return () => stop();
}

export async function healthPage(view) {
  const api = el('section#hub-health', el('h2', 'API'));
  const hub = el('section#hub-children');
  const scaler = el('section#hub-autoscaler');
  view.append(pageTitle('Hub health'), api, hub, scaler);
  const load = async () => {
    const h = await probe(); // plain fetch: also updates the footer
    if (!h) {
      setContent(api, el('h2', 'API'), el('p.error', { role: 'alert' }, 'The API does not answer.'));
      return true;
    }
    setContent(api, el('h2', 'API'),
      el('p', 'Status: ', badge(String(h.status || 'unknown').toUpperCase()), ` — version ${h.version || '–'}, checked ${fmtTime(new Date().toISOString())}`),
      kv(h, ['children', 'queue', 'queues', 'replicas', 'servers']));
    const children = h.children || (h.hub && h.hub.children);
    const queue = h.queue || h.queues || (h.hub && h.hub.queue);
    const replicas = h.replicas || h.servers;
    setContent(hub,
      el('h2', 'Supervisor children'),
      Array.isArray(children) ? table([
        { head: 'Role', cell: (c) => show(c.role || c.name) },
        { head: 'Pid', cell: (c) => show(c.pid) },
        { head: 'State', cell: (c) => badge(show(c.state || c.status || (c.alive ? 'ok' : 'down'))) },
        { head: 'Restarts', cell: (c) => show(c.restarts) },
        { head: 'Heartbeat', cell: (c) => show(c.heartbeat_age_ms !== undefined ? `${c.heartbeat_age_ms} ms ago` : c.heartbeat_at) },
      ], children) : el('p.hint', 'The health answer lists no supervisor children (modelhubd not running, or not reported by this hub version).'),
      el('h2', 'Queue'),
      queue ? (Array.isArray(queue) ? table([
        { head: 'Model', cell: (q) => show(q.model_id || q.model) },
        { head: 'Queued', cell: (q) => show(q.queued ?? q.depth) },
        { head: 'Running', cell: (q) => show(q.running) },
      ], queue) : kv(queue)) : el('p.hint', 'No queue figures reported.'),
      replicas ? [el('h2', 'Replicas'), Array.isArray(replicas) ? table([
        { head: 'Replica', cell: (r) => show(r.replica_id || r.id) },
        { head: 'Host', cell: (r) => show(r.hostname) },
        { head: 'Version', cell: (r) => show(r.version) },
        { head: 'Heartbeat', cell: (r) => fmtTime(r.heartbeat_at) },
        { head: 'Leader', cell: (r) => show(r.leader) },
      ], replicas) : kv(replicas)] : null);
    try {
      const a = await get('/api/autoscaler');
      setContent(scaler, el('h2', 'Autoscaler'), kv(a));
    } catch (e) {
      setContent(scaler);
    }
    return true;
  };
  const stop = poll(load, POLL_MS);
  return () => stop();
}
