// pages/admin-models.js — admin: the model list (all models, disabled
// too), editing one model (resources, enabled, max instances, idle
// seconds, cache, local_command, ...), creating and deleting models,
// clearing a model's cache, and its resource recommendation with a
// one-click apply (seed: "models admin page").
//
// Runs in: the browser. Called by: app.js (#/admin/models,
// #/admin/models/new, #/admin/models/{id}).
// Owns: nothing beyond its DOM.
//
// Optimistic concurrency: the form keeps the `version` it was loaded with
// and sends it with PATCH; 409 stale_version means someone else saved in
// between — the admin is told and offered a reload (never a silent
// overwrite). The API validates every field; its 422 field errors are shown
// next to the fields.

import { get, post, patch, del } from '../api.js';
import { el, field, showFieldErrors, errorText, pageTitle, table, badge, flash, fmtTime, setContent } from '../ui.js';
import { recommendationView } from './admin-recommendations.js';
import { catalogImport } from './catalog-import.js';

const INT_FIELDS = [
  ['cpu_request_m', 'CPU request (millicores)'],
  ['cpu_limit_m', 'CPU limit (millicores)'],
  ['memory_request_mib', 'Memory request (MiB)'],
  ['memory_limit_mib', 'Memory limit (MiB)'],
  ['max_instances', 'Max instances'],
  ['idle_seconds', 'Idle seconds before stop'],
  ['port', 'Model server port'],
];
const BOOL_FIELDS = [
  ['enabled', 'Enabled (takes requests)'],
  ['cache_enabled', 'Cache results (compound caching)'],
  ['disable_memory_limit', 'No memory limit'],
];

export async function listPage(view) {
  const out = el('div#admin-models');
  // the catalogue import (issue 18) reloads this list when it is done,
  // keeping its box (and report): listPage appends before its first await
  const reload = () => {
    const box = view.querySelector('#catalog-box');
    view.replaceChildren();
    listPage(view);
    view.querySelector('#catalog-box').replaceWith(box);
  };
  view.append(pageTitle('Models (admin)', el('a.button#new-model', { href: '#/admin/models/new' }, 'New model')),
    catalogImport(reload), out);
  let models;
  try {
    models = (await get('/api/models')).items || [];
  } catch (e) {
    out.append(el('p.error', { role: 'alert' }, errorText(e)));
    return;
  }
  // Models whose requests fit no node group of the node autoscaler can
  // never start (the save check refuses new ones; this flags those saved
  // before the groups changed). Best effort: no flag when it cannot be read.
  let noGroup = new Set();
  try {
    noGroup = new Set((await get('/api/autoscaler')).models_without_group || []);
  } catch (e) { /* autoscaler report unavailable: no flags */ }
  const modelCell = (m) => {
    const a = el('a', { href: '#/admin/models/' + encodeURIComponent(m.id) }, m.id);
    if (!noGroup.has(m.id)) return a;
    return el('span', a, ' ', el('span.badge.status-failed.no-node-group', {
      title: `requests ${m.cpu_request_m} m CPU / ${m.memory_request_mib} MiB fit no node group: its instances can never start`,
    }, 'fits no node group'));
  };
  const toggle = async (m, btn) => {
    btn.disabled = true;
    try {
      const r = await patch('/api/models/' + encodeURIComponent(m.id), { enabled: !m.enabled, version: m.version });
      Object.assign(m, r);
      flash(`${m.id} is now ${m.enabled ? 'enabled' : 'disabled'}.`, 'success');
      draw();
    } catch (e) {
      flash(e.code === 'stale_version' ? `${m.id} changed meanwhile; reload the page.` : errorText(e), 'error');
      btn.disabled = false;
    }
  };
  const draw = () => setContent(out, table([
    { head: 'Model', cell: modelCell },
    { head: 'Enabled', cell: (m) => (m.enabled ? badge('ENABLED') : badge('DISABLED')) },
    { head: 'Mode', cell: (m) => m.execution_mode },
    { head: 'CPU req / lim (m)', cell: (m) => `${m.cpu_request_m} / ${m.cpu_limit_m}` },
    { head: 'Memory req / lim (MiB)', cell: (m) => `${m.memory_request_mib} / ${m.disable_memory_limit ? '∞' : m.memory_limit_mib}` },
    { head: 'Max inst.', cell: (m) => String(m.max_instances) },
    { head: 'Idle s', cell: (m) => String(m.idle_seconds) },
    { head: 'Cache', cell: (m) => (m.cache_enabled ? 'on' : 'off') },
    { head: 'Version', cell: (m) => String(m.version) },
    { head: 'Updated', cell: (m) => fmtTime(m.updated_at) },
    { head: 'Actions', cell: (m) => {
      const b = el('button.small.secondary', { type: 'button', 'aria-label': `${m.enabled ? 'Disable' : 'Enable'} ${m.id}` }, m.enabled ? 'Disable' : 'Enable');
      b.addEventListener('click', () => toggle(m, b));
      return el('span.downloads', el('a.button.small', { href: '#/admin/models/' + encodeURIComponent(m.id), 'aria-label': `Edit ${m.id}` }, 'Edit'), b);
    } },
  ], models, { cls: 'admin-models', empty: 'No models yet.' }));
  draw();
}

/** The model form; returns {form, read()} where read() gives the body or
 * throws {fields} on local parse errors. */
function modelForm(m, isNew) {
  const fs = {};
  const add = (f) => (fs[f.name] = field(f));
  if (isNew) add({ name: 'id', label: 'Model id', required: true, hint: 'lowercase letters, digits, _ . - (e.g. eos3b5e)' });
  BOOL_FIELDS.forEach(([n, l]) => add({ name: n, label: l, type: 'checkbox', value: m[n] }));
  add({ name: 'execution_mode', label: 'Execution mode', type: 'select', value: m.execution_mode || 'SYNC', options: [['SYNC', 'SYNC (POST /run)'], ['ASYNC', 'ASYNC (job submit/status/result)']] });
  INT_FIELDS.forEach(([n, l]) => add({ name: n, label: l, type: 'number', value: m[n], attrs: { min: '0', step: '1', inputmode: 'numeric' } }));
  add({ name: 'image', label: 'Image (kubernetes backend)', value: m.image || '' });
  add({ name: 'image_tag', label: 'Image tag', value: m.image_tag || 'latest' });
  add({ name: 'model_version', label: 'Model version (cache key)', value: m.model_version || '1' });
  add({ name: 'local_command', label: 'Local command (one argument per line; must contain {port})', type: 'textarea', rows: 6,
    value: (m.local_command || []).join('\n'), hint: 'Placeholders: {host}, {port}, {models_dir}. Empty: not runnable on the local backend.',
    attrs: { spellcheck: 'false' } });
  add({ name: 'description', label: 'Description', type: 'textarea', rows: 3, value: m.description || '' });
  add({ name: 'details', label: 'Details (JSON object: title, columns, source, ...)', type: 'textarea', rows: 6,
    value: JSON.stringify(m.details || {}, null, 2), attrs: { spellcheck: 'false' } });
  const form = el('form.card#model-form', { novalidate: true },
    el('p.form-error', { role: 'alert' }),
    isNew ? fs.id : null,
    el('fieldset', el('legend', 'Availability'), BOOL_FIELDS.map(([n]) => fs[n]), fs.execution_mode),
    el('fieldset', el('legend', 'Resources and scaling'), el('div.form-grid', INT_FIELDS.map(([n]) => fs[n]))),
    el('fieldset', el('legend', 'How it runs'), el('div.form-grid', fs.image, fs.image_tag, fs.model_version), fs.local_command),
    el('fieldset', el('legend', 'Catalogue'), fs.description, fs.details));
  const read = () => {
    const body = {};
    const errs = {};
    if (isNew) body.id = fs.id.input.value.trim();
    BOOL_FIELDS.forEach(([n]) => (body[n] = fs[n].input.checked));
    body.execution_mode = fs.execution_mode.input.value;
    INT_FIELDS.forEach(([n]) => {
      const v = fs[n].input.value.trim();
      if (!/^\d+$/.test(v)) errs[n] = 'must be a whole number';
      else body[n] = Number(v);
    });
    body.image = fs.image.input.value.trim() || null;
    body.image_tag = fs.image_tag.input.value.trim();
    body.model_version = fs.model_version.input.value.trim();
    const argv = fs.local_command.input.value.split('\n').map((s) => s.trim()).filter(Boolean);
    body.local_command = argv.length ? argv : null;
    body.description = fs.description.input.value;
    try {
      const d = JSON.parse(fs.details.input.value || '{}');
      if (!d || typeof d !== 'object' || Array.isArray(d)) errs.details = 'must be a JSON object';
      else body.details = d;
    } catch (e) {
      errs.details = 'is not valid JSON: ' + e.message;
    }
    if (!errs.cpu_request_m && !errs.cpu_limit_m && body.cpu_request_m > body.cpu_limit_m) errs.cpu_request_m = 'must not exceed the CPU limit';
    if (!errs.memory_request_mib && !errs.memory_limit_mib && body.memory_request_mib > body.memory_limit_mib) errs.memory_request_mib = 'must not exceed the memory limit';
    return { body, errs };
  };
  return { form, read };
}

export function newPage(view, ctx) {
  const defaults = { enabled: true, execution_mode: 'SYNC', cpu_request_m: 100, cpu_limit_m: 1000, memory_request_mib: 256,
    memory_limit_mib: 1024, max_instances: 2, idle_seconds: 60, port: 80, cache_enabled: false, image_tag: 'latest', model_version: '1', details: {} };
  const { form, read } = modelForm(defaults, true);
  const save = el('button#save-model', { type: 'submit' }, 'Create model');
  form.append(el('div.actions', save, el('a.button.secondary', { href: '#/admin/models' }, 'Cancel')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const { body, errs } = read();
    if (!showFieldErrors(form, errs)) return;
    save.disabled = true;
    try {
      const r = await post('/api/models', body);
      flash(`Model ${r.id} created.`, 'success');
      ctx.navigate('/admin/models/' + encodeURIComponent(r.id));
    } catch (e) {
      showFieldErrors(form, e.fields, errorText(e));
    } finally {
      save.disabled = false;
    }
  });
  view.append(pageTitle('New model'), form);
}

export async function editPage(view, ctx) {
  const id = ctx.params.id;
  let m;
  try {
    m = await get('/api/models/' + encodeURIComponent(id));
  } catch (e) {
    view.append(pageTitle('Model ' + id), el('p.error', { role: 'alert' }, e.status === 404 ? 'There is no such model.' : errorText(e)));
    return;
  }
  const { form, read } = modelForm(m, false);
  const ver = el('span#model-version', String(m.version));
  const save = el('button#save-model', { type: 'submit' }, 'Save changes');
  form.append(el('div.actions', save,
    el('span.hint', 'Version ', ver, ' — saved changes reach the runners at once (NOTIFY model_changed).')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const { body, errs } = read();
    if (!showFieldErrors(form, errs)) return;
    body.version = m.version;
    save.disabled = true;
    try {
      m = await patch('/api/models/' + encodeURIComponent(id), body);
      ver.textContent = String(m.version);
      flash(`Model ${id} saved (version ${m.version}).`, 'success');
      showFieldErrors(form, {});
    } catch (e) {
      if (e.code === 'stale_version') {
        showFieldErrors(form, {}, 'Someone else changed this model since you opened it. Reload to see their version (your edits here will be lost).');
        const reload = el('button.secondary#reload-model', { type: 'button', onclick: () => ctx.navigate('/admin/models/' + encodeURIComponent(id)) }, 'Reload');
        form.querySelector('.form-error').append(' ', reload);
      } else {
        showFieldErrors(form, e.fields, errorText(e));
      }
    } finally {
      save.disabled = false;
    }
  });

  const recBox = el('section#model-recommendation', el('h2', 'Resource recommendation'), el('p.hint', 'Loading…'));
  const loadRec = async () => {
    try {
      const rec = await get('/api/recommendations?model_id=' + encodeURIComponent(id));
      setContent(recBox, el('h2', 'Resource recommendation'), recommendationView(rec, {
        version: () => m.version,
        applied: () => ctx.navigate('/admin/models/' + encodeURIComponent(id)),
      }));
    } catch (e) {
      setContent(recBox, el('h2', 'Resource recommendation'), el('p.error', errorText(e)));
    }
  };

  const clearCache = async () => {
    if (!confirm(`Clear the input cache of ${id}?`)) return;
    try {
      const r = await del('/api/models/' + encodeURIComponent(id) + '/cache');
      flash(`Cache of ${id} cleared` + (r && r.deleted !== undefined ? ` (${r.deleted} entries).` : '.'), 'success');
    } catch (e) {
      flash(errorText(e), 'error');
    }
  };
  const remove = async () => {
    if (!confirm(`Delete model ${id}? Its requests are deleted too.`)) return;
    try {
      await del('/api/models/' + encodeURIComponent(id));
      flash(`Model ${id} deleted.`, 'success');
      ctx.navigate('/admin/models');
    } catch (e) {
      flash(errorText(e), 'error');
    }
  };
  view.append(pageTitle('Model ' + id, el('a.button.secondary', { href: '#/models/' + encodeURIComponent(id) }, 'Catalogue page')),
    el('p.hint', `Created ${fmtTime(m.created_at)}, updated ${fmtTime(m.updated_at)}.`),
    form, recBox,
    el('section', el('h2', 'Maintenance'), el('div.actions',
      el('button.secondary#clear-cache', { type: 'button', onclick: clearCache }, 'Clear cache'),
      el('a.button.secondary', { href: '#/admin/instances?model=' + encodeURIComponent(id) }, 'Active instances'),
      el('button.danger#delete-model', { type: 'button', onclick: remove }, 'Delete model'))));
  loadRec();
}
