// pages/models.js — the model catalogue and one model's page with the
// request form (paste or upload CSV, header option, cache opt-in).
//
// Runs in: the browser. Called by: app.js (#/models, #/models/{id}).
// Owns: nothing beyond its DOM.
//
// Inputs go to POST /api/models/{id}/requests: pasted text as text/csv,
// an uploaded file as multipart/form-data (the API parses both with the
// same rules; "has header" defaults to off, as in the API). Anonymous
// visitors see the catalogue and the curl recipe; submitting from the page
// needs an account.

import { get, request, qs } from '../api.js';
import * as session from '../session.js';
import { el, field, showFieldErrors, errorText, pageTitle, table, badge } from '../ui.js';
import { columnChooser } from '../columns.js';

function title(m) {
  return (m.details && m.details.title) || m.id;
}

export async function listPage(view) {
  const filter = field({ name: 'q', label: 'Filter models', type: 'search', attrs: { autocomplete: 'off' } });
  const out = el('div#models-list');
  view.append(pageTitle('Models'),
    el('p.lead', 'Chemistry models you can run on a list of molecules (SMILES). Pick one to submit a request.'),
    filter, out);
  let models = [];
  try {
    models = (await get('/api/models')).items || [];
  } catch (e) {
    out.append(el('p.error', { role: 'alert' }, 'Could not load the models: ' + errorText(e)));
    return;
  }
  const admin = session.isAdmin();
  const draw = () => {
    const q = filter.input.value.trim().toLowerCase();
    const rows = models.filter((m) => !q || [m.id, title(m), m.description || ''].join(' ').toLowerCase().includes(q));
    out.replaceChildren(table([
      { head: 'Model', cell: (m) => el('a', { href: '#/models/' + encodeURIComponent(m.id) }, m.id) },
      { head: 'Title', cell: (m) => title(m) },
      { head: 'Description', cell: (m) => m.description || '' },
      { head: 'Outputs', cell: (m) => ((m.details && m.details.columns) || []).join(', ') },
      { head: 'Mode', cell: (m) => m.execution_mode },
      admin ? { head: 'Enabled', cell: (m) => (m.enabled ? 'yes' : badge('DISABLED')) } : null,
    ].filter(Boolean), rows, { cls: 'models', empty: models.length ? 'No model matches the filter.' : 'No models are available yet.' }));
  };
  filter.input.addEventListener('input', draw);
  draw();
}

function countInputs(text, hasHeader) {
  const lines = text.split(/\r\n|\n|\r/).filter((l) => l.trim() !== '');
  return Math.max(0, lines.length - (hasHeader && lines.length ? 1 : 0));
}

function curlRecipe(id) {
  const origin = location.origin;
  return el('details.curl',
    el('summary', 'Use it from a script (curl, no account needed)'),
    el('pre', el('code',
      `TOKEN=$(curl -s -X POST ${origin}/api/auth/anon | sed 's/.*"token":"\\([0-9a-f]*\\)".*/\\1/')\n` +
      `curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/csv' \\\n` +
      `     --data-binary @molecules.csv '${origin}/api/models/${id}/requests?has_header=false'\n` +
      `curl -s -H "Authorization: Bearer $TOKEN" ${origin}/api/requests/ID\n` +
      `curl -s -H "Authorization: Bearer $TOKEN" '${origin}/api/requests/ID/result?format=csv'`)));
}

function requestForm(m, ctx) {
  const user = session.currentUser();
  const fText = field({ name: 'inputs', label: 'Molecules (one SMILES per line, or CSV)', type: 'textarea', rows: 8,
    attrs: { spellcheck: 'false', placeholder: 'CCO\nc1ccccc1' } });
  const fFile = field({ name: 'file', label: 'Or upload a CSV or text file', type: 'file',
    attrs: { accept: '.csv,.txt,.smi,text/csv,text/plain' } });
  const fHeader = field({ name: 'has_header', label: 'The first line is a header (not a molecule)', type: 'checkbox', value: false });
  const fCache = field({ name: 'cache_opt_in', label: 'Share my results with the cache (faster answers for everyone)', type: 'checkbox', value: false,
    hint: m.cache_enabled ? 'Results of molecules already computed by this model are reused either way.' : 'Caching is off for this model.' });
  const count = el('p.hint#input-count', { 'aria-live': 'polite' }, '0 molecules');
  const submit = el('button#submit-request', { type: 'submit' }, 'Submit request');
  const chooser = columnChooser(m.id);
  const form = el('form.card#request-form', { novalidate: true },
    el('h2', 'New request'),
    el('p.form-error', { role: 'alert' }),
    fText, count, fFile, fHeader, chooser.node, fCache,
    el('div.actions', submit));
  const recount = () => {
    const file = fFile.input.files && fFile.input.files[0];
    count.textContent = file ? `File: ${file.name} (${file.size} bytes)`
      : `${countInputs(fText.input.value, fHeader.input.checked)} molecules`;
    chooser.refresh({ file, text: fText.input.value, header: fHeader.input.checked });
  };
  fFile.input.addEventListener('change', () => chooser.reset());
  fText.input.addEventListener('input', recount);
  fFile.input.addEventListener('change', recount);
  fHeader.input.addEventListener('change', recount);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const file = fFile.input.files && fFile.input.files[0];
    const text = fText.input.value;
    if (!file && countInputs(text, fHeader.input.checked) === 0) {
      showFieldErrors(form, { inputs: 'give at least one molecule, or choose a file' });
      return;
    }
    if (file && text.trim()) {
      showFieldErrors(form, { file: 'choose either a file or pasted molecules, not both' });
      return;
    }
    showFieldErrors(form, {});
    const q = qs({ has_header: fHeader.input.checked ? 'true' : 'false', cache_opt_in: fCache.input.checked ? 'true' : 'false',
      column: chooser.value() });
    const path = `/api/models/${encodeURIComponent(m.id)}/requests${q}`;
    submit.disabled = true;
    try {
      let r;
      if (file) {
        const fd = new FormData();
        fd.append('file', file, file.name);
        r = await request('POST', path, { body: fd });
      } else {
        r = await request('POST', path, { body: text, contentType: 'text/csv; charset=utf-8' });
      }
      ctx.navigate('/requests/' + r.id);
    } catch (e) {
      const f = Object.assign({}, e.fields);
      if (f.line) f.inputs = (f.inputs || '') + ` (line ${f.line})`;
      delete f.line;
      const target = file && f.inputs ? { file: f.inputs } : f;
      showFieldErrors(form, target, errorText(e));
    } finally {
      submit.disabled = false;
    }
  });
  if (!user) {
    return el('div.card',
      el('h2', 'New request'),
      el('p', el('a', { href: '#/login?next=' + encodeURIComponent('/models/' + m.id) }, 'Log in'), ' or ',
        el('a', { href: '#/signup' }, 'sign up'), ' to submit molecules from this page.'));
  }
  return form;
}

export async function detailPage(view, ctx) {
  const id = ctx.params.id;
  let m;
  try {
    m = await get('/api/models/' + encodeURIComponent(id));
  } catch (e) {
    view.append(pageTitle('Model ' + id), el('p.error', { role: 'alert' },
      e.status === 404 ? 'There is no such model (or it is disabled).' : errorText(e)));
    return;
  }
  const d = m.details || {};
  const facts = [
    ['Model id', m.id],
    ['Outputs', (d.columns || []).join(', ') || '–'],
    ['Input', d.input || 'Compound (SMILES)'],
    ['Mode', m.execution_mode],
    ['Version', m.model_version],
    ['Source', d.source || d.source_code || '–'],
  ];
  view.append(
    pageTitle(title(m), session.isAdmin() ? el('a.button.secondary', { href: '#/admin/models/' + encodeURIComponent(m.id) }, 'Edit (admin)') : null),
    m.description ? el('p.lead', m.description) : null,
    el('dl.facts', facts.map(([k, v]) => [el('dt', k), el('dd', String(v ?? '–'))])),
    m.enabled ? requestForm(m, ctx) : el('p.error', 'This model is disabled and takes no requests.'),
    curlRecipe(m.id));
}
