// pages/catalog-import.js — admin: import an Ersilia catalogue file onto
// the models' identification fields (title, tasks, areas, organisms, ...),
// shown on the admin models page.
//
// Runs in: the browser. Called by: pages/admin-models.js (listPage).
// Owns: nothing beyond its DOM.
//
// Calls POST /api/models/import-catalog[?create=true] with the file's JSON
// (docs/api.md): registered models are updated; the others are skipped, or
// added disabled when "Add the models not registered yet" is ticked. The
// report lists what was updated, added and skipped (with the reason).

import { request, qs } from '../api.js';
import { el, field, showFieldErrors, errorText, setContent } from '../ui.js';

function report(r) {
  const skipped = r.skipped || [];
  return [
    el('p#catalog-summary', `${r.updated.length} updated, ${r.created.length} added (disabled), ${skipped.length} skipped.`),
    r.updated.length ? el('p', 'Updated: ' + r.updated.join(', ')) : null,
    r.created.length ? el('p', 'Added, disabled (register how to run them, then enable): ' + r.created.join(', ')) : null,
    skipped.length ? el('ul#catalog-skipped', skipped.map((s) => el('li', `${s.identifier ?? '(no identifier)'}: ${s.reason}`))) : null,
  ];
}

/** The import box; onDone() runs after a successful import (to reload the list). */
export function catalogImport(onDone) {
  const file = field({ name: 'catalog', label: 'Catalogue file (JSON array of Ersilia model records)', type: 'file',
    attrs: { accept: '.json,application/json' } });
  const create = field({ name: 'create', label: 'Add the models not registered yet (disabled)', type: 'checkbox', value: false });
  const go = el('button#catalog-import', { type: 'submit' }, 'Import');
  const out = el('div#catalog-report', { role: 'status' });
  const form = el('form#catalog-form', { novalidate: true }, el('p.form-error', { role: 'alert' }), file, create,
    el('div.actions', go), out);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = file.input.files && file.input.files[0];
    if (!f) return showFieldErrors(form, { catalog: 'choose a catalogue file' });
    const text = await f.text();
    try {
      JSON.parse(text);
    } catch (e) {
      return showFieldErrors(form, { catalog: 'this file is not JSON' });
    }
    showFieldErrors(form, {});
    go.disabled = true;
    try {
      const r = await request('POST', '/api/models/import-catalog' + qs({ create: create.input.checked ? 'true' : '' }),
        { body: text, contentType: 'application/json' });
      setContent(out, ...report(r));
      if (onDone) onDone(r);
    } catch (e) {
      showFieldErrors(form, {}, errorText(e));
    } finally {
      go.disabled = false;
    }
  });
  return el('details.card#catalog-box', el('summary', 'Import an Ersilia catalogue'),
    el('p.hint', 'Sets the title, description, tasks, areas, organisms, publication, source code and licence of each model named in the file (modelhubctl import-catalog does the same).'),
    form);
}
