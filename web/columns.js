// columns.js — the "Input column" choice of the request form (issue 21).
//
// Runs in: the browser. Called by: pages/models.js (the request form).
// Owns: its DOM (one field) and the last dry-run answer.
//
// The page never guesses the column itself: it sends the same body as the
// real submit with dry_run=true (POST /api/models/{id}/requests; the same
// parser and checks, nothing stored, docs/api.md "Submit") and shows what
// the API would do — the detected input column of a multi-column CSV, its
// key column and the other columns kept — with a list to pick another
// column; the choice goes out as `column` with the real submit. A body with
// one column hides the field. When the API cannot tell (422
// ambiguous_column) the list asks the person to choose.

import { request, qs } from './api.js';
import { el } from './ui.js';

const DEBOUNCE_MS = 400; // typing in the textarea: one dry run per pause

/** The field, refresh({file, text, header}) after any change of the body
 * or the header box, value() (the column to send, '' for the API's own
 * choice) and reset() when a new file or text replaces the old one. */
export function columnChooser(modelId) {
  const select = el('select#input-column', { name: 'column', 'aria-describedby': 'column-note' });
  const note = el('p.hint#column-note', { 'aria-live': 'polite' });
  const node = el('div.field#column-field', { hidden: true },
    el('label', { for: 'input-column' }, 'Input column (the one that holds the molecules)'),
    select, note);
  let chosen = '';
  let seq = 0;
  let timer = null;
  let last = null;

  const fill = (names, selected, placeholder) => {
    const opts = names.map((n) => el('option', { value: n, selected: n === selected }, n));
    if (placeholder) opts.unshift(el('option', { value: '' }, placeholder));
    select.replaceChildren(...opts);
    select.value = selected || '';
  };
  const show = (a) => {
    node.hidden = !a.columns;
    if (!a.columns) return;
    fill(a.columns, a.input_column);
    const kept = (a.extra_columns || []).length ? `; also kept: ${a.extra_columns.join(', ')}` : '';
    note.textContent = `${chosen ? 'Your choice' : 'Detected'}: “${a.input_column}”` +
      (a.key_column ? `; “${a.key_column}” comes back as the key` : '') + kept + '.';
  };
  const ask = async (body, n) => {
    const q = qs({ dry_run: 'true', has_header: body.header ? 'true' : 'false', column: chosen });
    const path = `/api/models/${encodeURIComponent(modelId)}/requests${q}`;
    let opts;
    if (body.file) {
      const fd = new FormData();
      fd.append('file', body.file, body.file.name);
      opts = { body: fd };
    } else {
      opts = { body: body.text, contentType: 'text/csv; charset=utf-8' };
    }
    try {
      const a = await request('POST', path, opts);
      if (n === seq) show(a);
    } catch (e) {
      if (n !== seq) return;
      const cols = e.fields && e.fields.columns;
      node.hidden = !(cols && (e.code === 'ambiguous_column' || e.code === 'unknown_column'));
      if (node.hidden) return; // other errors are the real submit's to report
      chosen = '';
      fill(cols, '', 'Choose…');
      note.textContent = 'Several columns could hold the molecules: choose one.';
    }
  };
  select.addEventListener('change', () => {
    chosen = select.value;
    if (last) ask(last, ++seq);
  });
  return {
    node,
    value: () => (node.hidden ? '' : chosen),
    reset: () => { chosen = ''; },
    refresh(body) {
      last = body;
      clearTimeout(timer);
      const n = ++seq;
      if (!body.file && !(body.text || '').includes(',')) { // one column: nothing to choose
        node.hidden = true;
        return;
      }
      timer = setTimeout(() => ask(body, n), body.file ? 0 : DEBOUNCE_MS);
    },
  };
}
