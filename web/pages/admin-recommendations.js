// pages/admin-recommendations.js — admin: resource recommendations per
// model (why: instances, window, usage, band, reason), one-click apply,
// and the stored history (nightly and applied ones).
//
// Runs in: the browser. Called by: app.js (#/admin/recommendations) and
// pages/admin-models.js (recommendationView on a model's page).
// Owns: nothing beyond its DOM.
//
// Everything shown comes from GET /api/recommendations (computed on
// demand from finished instances) — see docs/recommendations.md for the
// fields. Apply first shows the diff (current -> recommended) to confirm;
// it then sends the model version, the window and the values the admin saw
// ("expect"), so the server applies exactly what was shown or refuses (409
// stale_version / recommendation_changed). After apply, Undo re-applies
// the previous values (PATCH with the new model version).

import { get, post, patch, qs } from '../api.js';
import { el, field, pageTitle, table, badge, flash, errorText, fmtTime, fmtNum, setContent, statusText } from '../ui.js';

const RES_LABEL = {
  cpu_request_m: 'CPU request',
  cpu_limit_m: 'CPU limit',
  memory_request_mib: 'Memory request',
  memory_limit_mib: 'Memory limit',
};

/** Band chip: colour name from the API (green, yellow, orange, red); the
 * band's name in words ('very_under' → 'very under'). */
export function bandChip(band) {
  if (!band) return el('span.band-none', '–');
  const colour = band.colour || band.color || 'none';
  return el('span.band-' + colour, el('span.band-chip', { 'aria-hidden': 'true' }), statusText(band.name || colour));
}

/* Below this many finished instances a recommendation is a guess (the
 * engine's recommend.min_bucket_instances default). */
const FEW_INSTANCES = 3;

/** One resource as a bar on a common scale: the usage measured (filled, in
 * the band's colour; the per-instance range lighter behind it when the
 * instances differ), the current value (solid tick) and the recommended
 * one (dashed tick). The numbers are in the text beside it. */
export function resourceBar(r) {
  const lo = r.spread ? (r.spread.min_percent * r.current) / 100 : null;
  const hi = r.spread ? (r.spread.max_percent * r.current) / 100 : null;
  const top = Math.max(r.current || 0, r.recommended || 0, r.usage || 0, hi || 0) * 1.1 || 1;
  const pos = (v) => `${Math.max(0, Math.min(100, (v / top) * 100)).toFixed(1)}%`;
  const colour = (r.band && (r.band.colour || r.band.color)) || 'none';
  const range = lo !== null && hi > lo ? el('span.rec-range') : null;
  if (range) {
    range.style.left = pos(lo);
    range.style.width = `calc(${pos(hi)} - ${pos(lo)})`;
  }
  const used = el('span.rec-used.band-' + colour);
  used.style.width = pos(r.usage || 0);
  const cur = el('span.rec-current', { dataset: { value: String(r.current) } });
  cur.style.left = pos(r.current);
  const rec = el('span.rec-recommended', { dataset: { value: String(r.recommended) } });
  rec.style.left = pos(r.recommended);
  return el('span.rec-bar', { role: 'img', 'aria-label': `used ${fmtNum(r.usage)} ${r.unit}` +
      (range ? ` (instances ${fmtNum(lo)}–${fmtNum(hi)})` : '') + `, current ${r.current}, recommended ${r.recommended} ${r.unit}` },
  range, used, cur, rec);
}

/** "Based on 3 finished instances", and a warning when that is few. */
function confidence(rec) {
  const n = rec.instances ?? 0;
  const based = `Based on ${n} finished instance${n === 1 ? '' : 's'}` +
    (rec.oom_instances ? `, ${rec.oom_instances} OOM-killed` : '') + '.';
  return el('p.confidence', { dataset: { instances: String(n) } }, based,
    n > 0 && n < FEW_INSTANCES ? el('strong.low-confidence', ` Low confidence: fewer than ${FEW_INSTANCES} instances; check again after more runs.`) : null);
}

/* The values before the last apply per model, for Undo (the view is
 * re-rendered after apply, so this outlives it): {prev, version}. */
const lastApplied = {};

/** The view of one model's recommendation (the API object). opts.version()
 * gives the model version the admin saw; opts.applied() runs after apply. */
export function recommendationView(rec, opts = {}) {
  const res = rec.resources || {};
  const changes = Object.keys(RES_LABEL).filter((k) => res[k] && res[k].recommended !== res[k].current);
  const undo = async (btn, prev, version) => {
    btn.disabled = true;
    try {
      const r = await patch(`/api/models/${encodeURIComponent(rec.model_id)}`, Object.assign({ version }, prev));
      delete lastApplied[rec.model_id];
      flash(`Previous values of ${rec.model_id} restored (model version ${r.version}).`, 'success');
      if (opts.applied) opts.applied(r);
    } catch (e) {
      flash(e.code === 'stale_version' ? `${rec.model_id} changed since the apply; undo refused.` : errorText(e), 'error');
      btn.disabled = false;
    }
  };
  const apply = async (btn, box) => {
    btn.disabled = true;
    try {
      const expect = {}, prev = {};
      for (const k of Object.keys(RES_LABEL)) { expect[k] = res[k].recommended; prev[k] = res[k].current; }
      const body = { expect, window: rec.window || {} };
      const v = opts.version ? opts.version() : rec.model_version;
      if (v !== undefined && v !== null) body.version = v;
      const r = await post(`/api/models/${encodeURIComponent(rec.model_id)}/apply-recommendation`, body);
      flash(`Recommendation applied to ${rec.model_id} (model version ${r.version}).`, 'success');
      lastApplied[rec.model_id] = { prev, version: r.version };
      setContent(box, undoView());
      if (opts.applied) opts.applied(r);
    } catch (e) {
      flash(e.code === 'stale_version' ? `${rec.model_id} changed since this recommendation; reload and check again.`
        : e.code === 'recommendation_changed' ? 'The recommendation changed since it was shown; reload and check again.'
          : errorText(e), 'error');
      btn.disabled = false;
    }
  };
  const undoView = () => {
    const last = lastApplied[rec.model_id];
    if (!last) return null;
    const undoBtn = el('button.undo-recommendation', { type: 'button' }, 'Undo (restore the previous values)');
    undoBtn.addEventListener('click', () => undo(undoBtn, last.prev, last.version));
    return el('p.undo', `Applied to ${rec.model_id}. `, undoBtn);
  };
  /* confirm step: the diff of what would change */
  const confirmBox = (box) => {
    const ok = el('button.confirm-recommendation', { type: 'button' }, 'Confirm apply');
    const cancel = el('button', { type: 'button' }, 'Cancel');
    ok.addEventListener('click', () => apply(ok, box));
    cancel.addEventListener('click', () => setContent(box, applyBtn));
    setContent(box, el('div.confirm', el('p', `Apply to ${rec.model_id}:`),
      el('ul', changes.map((k) => el('li', `${RES_LABEL[k]}: ${res[k].current} → ${res[k].recommended} ${res[k].unit}`))),
      ok, ' ', cancel));
  };
  const applyBtn = changes.length && rec.verdict !== 'no_data'
    ? el('button.apply-recommendation', { type: 'button', dataset: { model: rec.model_id } }, `Apply to ${rec.model_id}`)
    : null;
  const actions = applyBtn ? el('div.actions', applyBtn) : null;
  if (applyBtn) applyBtn.addEventListener('click', () => confirmBox(actions));
  const w = rec.window || {};
  return el('div.recommendation', { dataset: { model: rec.model_id, verdict: rec.verdict } },
    el('p', 'Verdict: ', badge(String(rec.verdict || 'unknown').toUpperCase()),
      ` — window ${w.from ? fmtTime(w.from) : 'start'} to ${w.to ? fmtTime(w.to) : 'now'}, newest ${w.limit ?? '–'}; computed ${fmtTime(rec.computed_at)}.`),
    confidence(rec),
    table([
      { head: 'Resource', cell: (k) => RES_LABEL[k] },
      { head: 'Current', cell: (k) => `${res[k].current} ${res[k].unit}` },
      { head: 'Recommended', cell: (k) => el(res[k].recommended !== res[k].current ? 'strong' : 'span', `${res[k].recommended} ${res[k].unit}`) },
      { head: 'Used · current · recommended', cell: (k) => resourceBar(res[k]) },
      { head: 'Band', cell: (k) => bandChip(res[k].band) },
      { head: 'Used', cell: (k) => `${fmtNum(res[k].percent_used)} %` + (res[k].spread && fmtNum(res[k].spread.min_percent) !== fmtNum(res[k].spread.max_percent)
        ? ` (instances ${fmtNum(res[k].spread.min_percent)}–${fmtNum(res[k].spread.max_percent)} %)` : '') },
      // the engine's sentence names bands as enums: (very_under) → (very under)
      { head: 'Why', cell: (k) => [String(res[k].reason || '').replace(/\b([a-z]+)_([a-z]+)\b/g, '$1 $2'), res[k].capped ? el('small', ' (capped at the largest node)') : null, res[k].oom_adjusted ? el('small', ' (raised after OOM kills)') : null] },
    ], Object.keys(RES_LABEL).filter((k) => res[k]), { cls: 'rec' }),
    el('p.legend.rec-legend', el('span', el('span.key-used', { 'aria-hidden': 'true' }), ' used (light: range over the instances)'),
      el('span', el('span.key-current', { 'aria-hidden': 'true' }), ' current'),
      el('span', el('span.key-recommended', { 'aria-hidden': 'true' }), ' recommended')),
    (rec.by_input_size || []).length ? el('details', el('summary', 'By input size'),
      table([
        { head: 'Inputs', cell: (b) => b.inputs || '' },
        { head: 'Instances', cell: (b) => String(b.instances ?? '–') },
        { head: 'Verdict', cell: (b) => (b.verdict ? statusText(b.verdict) : '–') },
        { head: 'Enough data', cell: (b) => (b.enough_data ? 'yes' : 'no') },
        { head: 'Recommended', cell: (b) => Object.keys(RES_LABEL).filter((k) => b.resources && b.resources[k])
          .map((k) => `${RES_LABEL[k]} ${b.resources[k].recommended}`).join(', ') },
      ], rec.by_input_size)) : null,
    lastApplied[rec.model_id] && lastApplied[rec.model_id].version === rec.model_version ? undoView() : null,
    actions || el('p.hint', rec.verdict === 'no_data' ? 'No finished instances yet: nothing to recommend.' : 'Nothing to change.'));
}

export async function listPage(view) {
  const fFrom = field({ name: 'from', label: 'Instances ended from', type: 'date' });
  const fTo = field({ name: 'to', label: 'to', type: 'date' });
  const fLimit = field({ name: 'limit', label: 'Newest instances', type: 'number', value: '100', attrs: { min: '1', max: '1000' } });
  const go = el('button', { type: 'submit' }, 'Compute');
  const form = el('form.filters', fFrom, fTo, fLimit, el('div.field', go));
  const out = el('div#recommendations');
  const hist = el('section#recommendation-history');
  view.append(pageTitle('Recommendations'),
    el('p.lead', 'CPU and memory requests and limits per model, from the metrics of finished instances. Usage is placed in the middle of the green band.'),
    form, out, hist);
  const load = async () => {
    setContent(out, el('p.hint', 'Computing…'));
    try {
      const r = await get('/api/recommendations' + qs({ from: fFrom.input.value, to: fTo.input.value, limit: fLimit.input.value }));
      const items = r.items || (r.model_id ? [r] : []);
      setContent(out, items.length ? items.map((rec) => el('section.card', el('h2', el('a', { href: '#/admin/models/' + encodeURIComponent(rec.model_id) }, rec.model_id)),
        recommendationView(rec, { applied: () => { load(); loadHistory(); } }))) : el('p.empty', 'No models.'));
    } catch (e) {
      setContent(out, el('p.error', { role: 'alert' }, errorText(e)));
    }
  };
  const loadHistory = async () => {
    try {
      const r = await get('/api/recommendations/history?limit=50');
      setContent(hist, el('h2', 'History'), table([
        { head: 'Computed', cell: (h) => fmtTime(h.computed_at) },
        { head: 'Model', cell: (h) => h.model_id },
        { head: 'Verdict', cell: (h) => h.verdict || '–' },
        { head: 'Instances', cell: (h) => String(h.instances ?? '–') },
        { head: 'CPU req/lim', cell: (h) => `${h.current.cpu_request_m}/${h.current.cpu_limit_m} → ${h.recommended.cpu_request_m}/${h.recommended.cpu_limit_m}` },
        { head: 'Memory req/lim', cell: (h) => `${h.current.memory_request_mib}/${h.current.memory_limit_mib} → ${h.recommended.memory_request_mib}/${h.recommended.memory_limit_mib}` },
        { head: 'Applied', cell: (h) => (h.applied_at ? `${fmtTime(h.applied_at)} by user ${h.applied_by ?? '?'}` : 'no') },
      ], r.items || [], { empty: 'No stored recommendations yet (the janitor stores one per model every night).' }));
    } catch (e) {
      setContent(hist, el('p.error', errorText(e)));
    }
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    load();
  });
  load();
  loadHistory();
}
