// gauges.js — resource gauges with bands and sparkline charts for model
// instances (seeds: "gauge MAX usage out of limit, min out of request, avg
// out of limit; x / y below, % inside; levels from the recommendation
// engine").
//
// Runs in: the browser. Called by: pages/admin-instances.js.
// Owns: the band table fetched once from GET /api/bands (falls back to the
// DESIGN.md §6 numbers when the call fails, so a gauge always has a colour).
//
// Gauges prefer what the API computed (value, of, percent, band, colour per
// gauge, see src/metrics/view.h); for an instance that only carries
// aggregates + resources they are computed here with the same band table.
// Drawing is SVG with classes from style.css (no inline style attributes:
// CSP); the arc length is an SVG attribute.

import { get } from './api.js';
import { el } from './ui.js';

const SVG = 'http://www.w3.org/2000/svg';

// DESIGN.md §6; upper bounds in percent, the last band is open-ended.
const DEFAULT_BANDS = {
  cpu: [[40, 'very_under', 'orange'], [65, 'under', 'yellow'], [85, 'recommended', 'green'],
    [95, 'over', 'yellow'], [105, 'very_over', 'orange'], [Infinity, 'critical', 'red']],
  memory: [[40, 'very_under', 'orange'], [65, 'under', 'yellow'], [80, 'recommended', 'green'],
    [90, 'over', 'yellow'], [93, 'very_over', 'orange'], [Infinity, 'critical', 'red']],
};

let bands = DEFAULT_BANDS;
let bandsLoaded = null;

/** Normalise the /api/bands answer into {cpu: [[upper, name, colour]], memory: ...}. */
function parseBands(j) {
  const out = {};
  const src = j && (j.bands || j);
  for (const res of ['cpu', 'memory']) {
    let list = src && (src[res] || src[res === 'memory' ? 'mem' : res]);
    if (list && !Array.isArray(list) && Array.isArray(list.bands)) list = list.bands;
    if (!Array.isArray(list) || !list.length) return null;
    out[res] = list.map((b) => {
      const upper = b.to_percent ?? b.to ?? b.max ?? b.upper ?? null;
      return [upper === null || upper === undefined ? Infinity : Number(upper), b.name || b.band || '', b.colour || b.color || 'none'];
    }).sort((a, b) => a[0] - b[0]);
  }
  return out;
}

/** Load the band table once (resolves even on failure). */
export function loadBands() {
  if (!bandsLoaded) {
    bandsLoaded = get('/api/bands').then((j) => {
      const b = parseBands(j);
      if (b) bands = b;
    }).catch(() => {});
  }
  return bandsLoaded;
}

export function bandOf(resource, percent) {
  if (percent === null || percent === undefined || Number.isNaN(percent)) return null;
  for (const [upper, name, colour] of bands[resource] || []) {
    if (percent < upper) return { name, colour };
  }
  return null;
}

function svg(tag, attrs) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
  return n;
}

const UNIT = { cpu: 'm', memory: 'MiB' };
const ARC_LEN = Math.PI * 40; // half circle of radius 40

function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(Number(v))) return '–';
  const n = Number(v);
  return n >= 100 || Number.isInteger(n) ? String(Math.round(n)) : n.toFixed(1);
}

/** A gauge element; update it with setGauge(node, g). */
export function gauge(caption) {
  const track = svg('path', { class: 'g-track', d: 'M 10 50 A 40 40 0 0 1 90 50' });
  const value = svg('path', { class: 'g-value band-none', d: 'M 10 50 A 40 40 0 0 1 90 50', 'stroke-dasharray': `0 ${ARC_LEN}` });
  const pct = svg('text', { class: 'g-pct', x: 50, y: 47, 'text-anchor': 'middle' });
  const s = svg('svg', { viewBox: '0 0 100 56', 'aria-hidden': 'true', focusable: 'false' });
  s.append(track, value, pct);
  const text = el('div.gauge-text');
  const node = el('div.gauge', { role: 'img' }, s, text, el('div.gauge-caption', caption));
  node._parts = { value, pct, text, caption };
  return node;
}

/** g: {resource, stat, against, value, of, percent, band, colour} */
export function setGauge(node, g) {
  const { value, pct, text, caption } = node._parts;
  const unit = g.unit === 'millicores' ? 'm' : (g.unit || UNIT[g.resource] || '');
  let p = g.percent;
  if ((p === null || p === undefined) && g.value !== null && g.value !== undefined && g.of) p = (Number(g.value) * 100) / Number(g.of);
  const band = g.colour ? { name: g.band, colour: g.colour } : bandOf(g.resource, p);
  const colour = band ? band.colour : 'none';
  const frac = p === null || p === undefined ? 0 : Math.max(0, Math.min(1, p / 100));
  value.setAttribute('stroke-dasharray', `${(frac * ARC_LEN).toFixed(1)} ${ARC_LEN}`);
  value.setAttribute('class', 'g-value band-' + colour);
  pct.textContent = p === null || p === undefined ? '–' : `${Math.round(p)}%`;
  text.textContent = `${fmt(g.value)} / ${g.of ? fmt(g.of) : '–'} ${unit}`;
  node.className = 'gauge band-' + colour;
  node.dataset.percent = p === null || p === undefined ? '' : String(Math.round(p));
  node.dataset.band = band ? band.name : '';
  node.setAttribute('aria-label', `${caption}: ${fmt(g.value)} of ${g.of ? fmt(g.of) : 'unknown'} ${unit}` +
    (p === null || p === undefined ? '' : `, ${Math.round(p)} percent`) + (band && band.name ? `, ${band.name.replace(/_/g, ' ')}` : ''));
}

/** The six gauges of an instance, from the API's gauges array or computed
 * from aggregates {cpu:{min,max,avg}, memory:{...}} and resources. */
export function gaugesOf(inst) {
  const m = inst.metrics || {};
  const api = Array.isArray(m.gauges) ? m.gauges : inst.gauges;
  if (Array.isArray(api) && api.length) return api;
  const a = m.aggregates || inst.aggregates || {};
  const r = inst.resources || inst;
  const out = [];
  const spec = [['cpu', 'cpu_request_m', 'cpu_limit_m'], ['memory', 'memory_request_mib', 'memory_limit_mib']];
  for (const [res, req, lim] of spec) {
    const ag = a[res] || a[res === 'memory' ? 'mem' : res] || {};
    out.push({ resource: res, stat: 'max', against: 'limit', value: ag.max, of: r[lim] });
    out.push({ resource: res, stat: 'min', against: 'request', value: ag.min, of: r[req] });
    out.push({ resource: res, stat: 'avg', against: 'limit', value: ag.avg, of: r[lim] });
  }
  return out;
}

/** A block of six gauges (CPU and memory rows); update with setGauges. */
export function gaugeBlock() {
  const nodes = {};
  const rows = [];
  for (const res of ['cpu', 'memory']) {
    rows.push(el('div.gauge-row-label', res === 'cpu' ? 'CPU' : 'Memory'));
    for (const [stat, against] of [['max', 'limit'], ['min', 'request'], ['avg', 'limit']]) {
      const g = gauge(`${stat} vs ${against}`);
      g.dataset.gauge = `${res}-${stat}`;
      nodes[`${res}-${stat}`] = g;
      rows.push(g);
    }
  }
  const block = el('div.gauges', rows);
  block._nodes = nodes;
  return block;
}

export function setGauges(block, inst) {
  for (const g of gaugesOf(inst)) {
    const n = block._nodes[`${g.resource === 'mem' ? 'memory' : g.resource}-${g.stat}`];
    if (n) setGauge(n, g);
  }
}

/** Legend of the colours (text, so colour is not the only cue). */
export function bandLegend() {
  const names = { orange: 'far from target', yellow: 'near target', green: 'recommended', red: 'critical' };
  return el('p.legend', Object.entries(names).map(([c, t]) => el('span.band-' + c, el('span.band-chip', { 'aria-hidden': 'true' }), t)));
}

/** Sparkline of samples [{t_ms, cpu_m, memory_mib}] against the limits. */
export function sparkline(samples, limits, label) {
  const W = 300;
  const H = 60;
  const s = svg('svg', { class: 'spark', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', role: 'img', 'aria-label': label || 'usage chart' });
  if (!samples || samples.length < 2) {
    const t = svg('text', { x: 6, y: 34, class: 'g-pct' });
    t.textContent = 'waiting for samples…';
    s.append(t);
    return s;
  }
  const t0 = samples[0].t_ms;
  const t1 = samples[samples.length - 1].t_ms;
  const span = Math.max(1, t1 - t0);
  const line = (key, max, cls) => {
    const pts = samples.map((x) => {
      const v = Number(x[key]) || 0;
      return `${(((x.t_ms - t0) / span) * W).toFixed(1)},${(H - 2 - (Math.min(v, max) / max) * (H - 4)).toFixed(1)}`;
    }).join(' ');
    s.append(svg('polyline', { class: cls, points: pts, 'vector-effect': 'non-scaling-stroke' }));
  };
  // Each resource is scaled to its own limit (or its peak), so both fit.
  const cpuMax = Math.max(limits.cpu_limit_m || 0, ...samples.map((x) => Number(x.cpu_m) || 0), 1);
  const memMax = Math.max(limits.memory_limit_mib || 0, ...samples.map((x) => Number(x.memory_mib) || 0), 1);
  if (limits.cpu_limit_m) s.append(svg('line', { class: 's-limit', x1: 0, x2: W, y1: 2, y2: 2, 'vector-effect': 'non-scaling-stroke' }));
  line('cpu_m', cpuMax, 's-cpu');
  line('memory_mib', memMax, 's-mem');
  return s;
}

export function sparkLegend(samples) {
  const last = samples && samples.length ? samples[samples.length - 1] : null;
  const first = samples && samples.length ? samples[0] : null;
  const secs = first && last ? Math.round((last.t_ms - first.t_ms) / 1000) : 0;
  return el('div.spark-legend',
    el('span.cpu', 'CPU'), last ? ` ${fmt(last.cpu_m)} m` : '', ' · ',
    el('span.mem', 'memory'), last ? ` ${fmt(last.memory_mib)} MiB` : '',
    ` · last ${secs} s, scaled to the limits (dashed)`);
}

/** The instance page's chart: CPU (m) and memory (MiB) over time, one
 * panel each on its own absolute scale, with the request (dotted) and the
 * limit (dashed) as labelled lines and a time axis (HH:MM:SS, UTC like the
 * rest of the pages). res: {cpu_request_m, cpu_limit_m, memory_request_mib,
 * memory_limit_mib}. Samples {t_ms, cpu_m, memory_mib}. */
export function timeChart(samples, res, label) {
  const W = 640, PH = 110, L = 58, R = 12, TOP = 8, GAP = 26, AX = 22;
  const H = TOP + 2 * PH + GAP + AX;
  const s = svg('svg', { class: 'timechart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label || 'usage over time',
    'data-samples': String((samples || []).length) });
  if (!samples || samples.length < 2) {
    const t = svg('text', { x: L, y: H / 2, class: 'tc-text' });
    t.textContent = 'Not enough samples for a chart yet.';
    s.append(t);
    return s;
  }
  const t0 = samples[0].t_ms, t1 = samples[samples.length - 1].t_ms, span = Math.max(1, t1 - t0);
  const x = (t) => L + ((t - t0) / span) * (W - L - R);
  const text = (attrs, str) => {
    const e = svg('text', attrs);
    e.textContent = str;
    return e;
  };
  const panel = (key, unit, req, lim, top, cls, name) => {
    const peak = Math.max(...samples.map((p) => Number(p[key]) || 0));
    const max = Math.max(lim || 0, req || 0, peak, 1) * 1.08;
    const y = (v) => top + PH - (Math.min(v, max) / max) * PH;
    s.append(svg('rect', { class: 'tc-frame', x: L, y: top, width: W - L - R, height: PH }),
      text({ x: L - 6, y: top + 10, class: 'tc-text tc-y' }, `${Math.round(max)}`),
      text({ x: L - 6, y: top + PH, class: 'tc-text tc-y' }, '0'),
      text({ x: 2, y: top + PH / 2, class: 'tc-text tc-name' }, name),
      text({ x: 2, y: top + PH / 2 + 13, class: 'tc-text tc-name' }, `(${unit})`));
    for (const [v, kind] of [[req, 'request'], [lim, 'limit']]) {
      if (!v) continue;
      s.append(svg('line', { class: `tc-${kind}`, x1: L, x2: W - R, y1: y(v), y2: y(v), 'data-value': String(v), 'data-resource': key }),
        text({ x: W - R - 4, y: y(v) - 3, class: 'tc-text tc-line-label' }, `${kind} ${v} ${unit}`));
    }
    s.append(svg('polyline', { class: cls, 'data-resource': key,
      points: samples.map((p) => `${x(p.t_ms).toFixed(1)},${y(Number(p[key]) || 0).toFixed(1)}`).join(' ') }));
  };
  panel('cpu_m', 'm', res.cpu_request_m, res.cpu_limit_m, TOP, 'tc-cpu', 'CPU');
  panel('memory_mib', 'MiB', res.memory_request_mib, res.memory_limit_mib, TOP + PH + GAP, 'tc-mem', 'memory');
  const hms = (t) => new Date(t).toISOString().slice(11, 19);
  for (let i = 0; i <= 4; i++) {
    const t = t0 + (span * i) / 4;
    s.append(svg('line', { class: 'tc-tick', x1: x(t), x2: x(t), y1: TOP + 2 * PH + GAP, y2: TOP + 2 * PH + GAP + 4 }),
      text({ x: x(t), y: H - 4, class: 'tc-text tc-time', 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, hms(t)));
  }
  return s;
}

/** What the chart shows, in words (and the legend of its lines). */
export function timeChartLegend(samples) {
  const n = (samples || []).length;
  const secs = n > 1 ? Math.round((samples[n - 1].t_ms - samples[0].t_ms) / 1000) : 0;
  return el('p.spark-legend.tc-legend', el('span.cpu', 'CPU'), ' and ', el('span.mem', 'memory'),
    ` over ${secs} s (${n} samples, UTC); dotted: request, dashed: limit.`);
}
