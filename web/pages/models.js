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
// needs an account (or a guest session). The catalogue shows cards with the
// identification fields (title, tasks, areas, organisms), filters on them
// and free text, and a "Try with example molecules" button that opens the
// model's page with its form filled (#/models/{id}?example=1).

import { get, request, qs } from '../api.js';
import * as session from '../session.js';
import { el, field, showFieldErrors, errorText, pageTitle, table, badge } from '../ui.js';
import { columnChooser } from '../columns.js';

function title(m) {
  return m.title || (m.details && m.details.title) || m.id;
}

// Well-known drugs, for "Try with example molecules" (a model may name its
// own in details.examples).
const EXAMPLES = [
  'CC(=O)Oc1ccccc1C(=O)O', // aspirin
  'Cn1cnc2c1c(=O)n(C)c(=O)n2C', // caffeine
  'CC(=O)Nc1ccc(O)cc1', // paracetamol
  'CC(C)Cc1ccc(cc1)C(C)C(=O)O', // ibuprofen
  'CCO', // ethanol
];

function examples(m) {
  const own = m.details && Array.isArray(m.details.examples) ? m.details.examples.filter((x) => typeof x === 'string' && x) : [];
  return own.length ? own : EXAMPLES;
}

// The catalogue's list filters: [field of the model, label, select name].
const FACETS = [
  ['biomedical_areas', 'Biomedical area', 'area'],
  ['target_organisms', 'Target organism', 'organism'],
  ['tasks', 'Task', 'task'],
];

function facetField(models, [key, label, name], value) {
  const values = [...new Set(models.flatMap((m) => m[key] || []))].sort((a, b) => a.localeCompare(b));
  return field({ name, label, type: 'select', value, options: [['', 'Any'], ...values.map((v) => [v, v])] });
}

function chips(list, cls) {
  return (list || []).length ? el('ul.chips' + cls, (list || []).map((x) => el('li', x))) : null;
}

/** One model of the public catalogue as a card. */
function card(m, admin) {
  const href = '#/models/' + encodeURIComponent(m.id);
  const lists = [['Tasks', m.tasks], ['Areas', m.biomedical_areas], ['Organisms', m.target_organisms]]
    .filter(([, v]) => v && v.length);
  return el('li.model-card', { 'data-id': m.id },
    el('h2', el('a', { href }, title(m))),
    el('p.model-id', m.id, admin && !m.enabled ? [' ', badge('DISABLED')] : null),
    m.description ? el('p.model-desc', m.description) : null,
    lists.length ? el('dl.card-facts', lists.map(([k, v]) => [el('dt', k), el('dd', chips(v, ''))])) : null,
    el('div.actions', el('a.button.secondary.try-example', { href: href + '?example=1' }, 'Try with example molecules')));
}

export async function listPage(view, ctx) {
  const q0 = ctx && ctx.query ? ctx.query : new URLSearchParams();
  const filter = field({ name: 'q', label: 'Search models', type: 'search', value: q0.get('q') || '', attrs: { autocomplete: 'off' } });
  const out = el('div#models-list');
  const bar = el('form.filters#models-filters', { role: 'search', novalidate: true }, filter);
  view.append(pageTitle('Models'),
    el('p.lead', 'Chemistry models you can run on a list of molecules (SMILES). Pick one to submit a request.'),
    bar, out);
  bar.addEventListener('submit', (ev) => ev.preventDefault());
  let models = [];
  try {
    models = (await get('/api/models')).items || [];
  } catch (e) {
    out.append(el('p.error', { role: 'alert' }, 'Could not load the models: ' + errorText(e)));
    return;
  }
  const admin = session.isAdmin();
  const facets = FACETS.map((f) => [f, facetField(models, f, q0.get(f[2]) || '')]);
  bar.append(...facets.map(([, w]) => w));
  const draw = () => {
    const q = filter.input.value.trim().toLowerCase();
    const rows = models.filter((m) => {
      for (const [[key], w] of facets) if (w.input.value && !(m[key] || []).includes(w.input.value)) return false;
      const text = [m.id, title(m), m.description, m.interpretation, m.slug, ...(m.tasks || []),
        ...(m.biomedical_areas || []), ...(m.target_organisms || [])].join(' ').toLowerCase();
      return !q || text.includes(q);
    });
    out.replaceChildren(rows.length
      ? el('ul.model-cards', rows.map((m) => card(m, admin)))
      : el('p.empty', models.length ? 'No model matches the filters.' : 'No models are available yet.'),
    el('p.hint#models-count', { 'aria-live': 'polite' }, `${rows.length} of ${models.length} models`));
  };
  filter.input.addEventListener('input', draw);
  for (const [, w] of facets) w.input.addEventListener('change', draw);
  draw();
}

/** Non-empty lines of a text (CR, LF or CRLF). */
function lines(text) {
  return text.split(/\r\n|\n|\r/).filter((l) => l.trim() !== '');
}

function countInputs(text, hasHeader) {
  const ls = lines(text);
  return Math.max(0, ls.length - (hasHeader && ls.length ? 1 : 0));
}

// Header names the API knows for the input column (docs/api.md).
const HEADER_NAMES = /^(smiles|canonical_smiles|input|inputs|molecule|molecules|mol|compound|key|id|name|inchikey)$/i;
// A SMILES token: bracket atom, organic-subset atom, aromatic atom, bond,
// ring closure, branch or dot. A word that is not a run of these (e.g.
// "smiles": 'm' is no atom) is not a molecule.
const SMILES_TOKENS = /^(?:\[[^\]]+\]|Br|Cl|[BCNOPSFI]|[bcnops]|[-=#$:/\\.]|%\d\d|\d|[()*@+])+$/;

/** Whether one line looks like a molecule (its first CSV field, or every
 * field of a multi-column line that is not a known header name). */
export function looksLikeMolecule(line) {
  const fields = line.split(',').map((f) => f.trim().replace(/^"(.*)"$/, '$1'));
  if (fields.some((f) => HEADER_NAMES.test(f))) return false;
  return fields.some((f) => f !== '' && SMILES_TOKENS.test(f));
}

/** {header: bool, first} for a text: a header when its first non-empty
 * line is not a molecule but some later line is (or it is alone and a
 * known header name). */
export function detectHeader(text) {
  const ls = lines(text).slice(0, 20);
  if (!ls.length) return { header: false, first: '' };
  const first = ls[0].trim();
  const header = !looksLikeMolecule(first) && (ls.length === 1 ? first.split(',').some((f) => HEADER_NAMES.test(f.trim())) : true);
  return { header, first };
}

function curlRecipe(id) {
  const base = location.origin;
  const auth = '-H "Authorization: Bearer $TOKEN"';
  const text = `BASE=${base}\n` +
    `# 1. an anonymous token (no account needed)\n` +
    `TOKEN=$(curl -s -X POST "$BASE/api/auth/anon" | grep -o '"token":"[0-9a-f]*"' | cut -d'"' -f4)\n` +
    `# 2. submit molecules.csv (one SMILES per line; has_header=true if its first line is a header)\n` +
    `ID=$(curl -s ${auth} -H 'Content-Type: text/csv' --data-binary @molecules.csv \\\n` +
    `     "$BASE/api/models/${id}/requests?has_header=false" | grep -o '"id":[0-9]*' | head -1 | cut -d: -f2)\n` +
    `# 3. wait until it is done\n` +
    `while :; do\n` +
    `  STATUS=$(curl -s ${auth} "$BASE/api/requests/$ID" | grep -o '"status":"[A-Z]*"' | head -1 | cut -d'"' -f4)\n` +
    `  echo "request $ID: $STATUS"\n` +
    `  case "$STATUS" in QUEUED|RUNNING) sleep 2 ;; *) break ;; esac\n` +
    `done\n` +
    `# 4. the result (CSV; format=json for JSON)\n` +
    `curl -s ${auth} "$BASE/api/requests/$ID/result?format=csv" > result.csv\n`;
  const code = el('code#curl-recipe', text);
  const said = el('span.copy-status', { role: 'status' });
  const copy = el('button.secondary.small#copy-recipe', { type: 'button' }, 'Copy');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      said.textContent = 'Copied to the clipboard.';
    } catch (e) {
      // no clipboard (plain http): select the text for Ctrl+C instead
      const range = document.createRange();
      range.selectNodeContents(code);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      said.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
    }
  });
  return el('details.curl',
    el('summary', 'Use it from a script (curl, no account needed)'),
    el('p', 'The whole guide, with modelhubctl and what each error means: ',
      el('a#anon-guide', { href: '/docs/anonymous-requests.md', target: '_blank', rel: 'noopener' },
        'Running a model from the command line'), '.'),
    el('div.actions', copy, said),
    el('pre', code));
}

const DRAFT = (id) => 'modelhub.draft.' + id;

/** The form's draft in sessionStorage (kept across an expired session
 * and the login that follows; dropped on submit and on log out). */
function saveDraft(id, text, header) {
  try {
    if (text) sessionStorage.setItem(DRAFT(id), JSON.stringify({ text, header }));
    else sessionStorage.removeItem(DRAFT(id));
  } catch (e) {
    /* storage full or off: a draft is a convenience */
  }
}

function loadDraft(id) {
  try {
    return JSON.parse(sessionStorage.getItem(DRAFT(id)) || 'null');
  } catch (e) {
    return null;
  }
}

/** Count, limit and header note under the molecules field. */
function countText(n, limit, what) {
  return `${what}${n} molecule${n === 1 ? '' : 's'} (at most ${limit} per request)`;
}

function formFields(m) {
  return {
    text: field({ name: 'inputs', label: 'Molecules (one SMILES per line, or CSV)', type: 'textarea', rows: 8,
      attrs: { spellcheck: 'false', placeholder: 'CCO\nc1ccccc1' } }),
    file: field({ name: 'file', label: 'Or upload a CSV or text file', type: 'file',
      attrs: { accept: '.csv,.txt,.smi,text/csv,text/plain' } }),
    header: field({ name: 'has_header', label: 'The first line is a header (not a molecule)', type: 'checkbox', value: false }),
    cache: field({ name: 'cache_opt_in', label: 'Share my results with the cache (faster answers for everyone)', type: 'checkbox', value: false,
      attrs: { disabled: !m.cache_enabled },
      hint: m.cache_enabled ? 'Results of molecules already computed by this model are reused either way.' : 'Caching is off for this model.' }),
  };
}

/** Keeps the count, the header box and the one error of the form in
 * step with what was typed or chosen. Returns {check, inputs}. */
function formState(m, form, f, limit) {
  const count = form.querySelector('#input-count');
  const note = form.querySelector('#header-note');
  const st = { fileText: null, headerSetByUser: false, error: false };
  const current = () => st.fileText ?? f.text.input.value;
  const check = () => {
    const n = countInputs(current(), f.header.input.checked);
    const file = f.file.input.files && f.file.input.files[0];
    const what = file ? `${file.name}: ` : '';
    count.textContent = st.fileText === null && file ? `${file.name}: reading…` : countText(n, limit, what);
    const errs = {};
    const target = file ? 'file' : 'inputs';
    if (file && f.text.input.value.trim()) errs.file = 'choose either a file or pasted molecules, not both';
    else if (n > limit) errs[target] = `${n} molecules: at most ${limit} per request; split the list`;
    if (st.error || Object.keys(errs).length) {
      showFieldErrors(form, errs, null, { focus: false });
      st.error = Object.keys(errs).length > 0;
    }
    return { n, errs };
  };
  const detect = () => {
    const d = detectHeader(current());
    if (!st.headerSetByUser) f.header.input.checked = d.header;
    note.textContent = d.header && f.header.input.checked
      ? `The first line (“${d.first.slice(0, 40)}”) is not a molecule: it is taken as a header and not sent. Untick the box if it is a molecule.` : '';
    if (st.fileText === null) saveDraft(m.id, f.text.input.value, st.headerSetByUser ? f.header.input.checked : null);
    check();
    const file = f.file.input.files && f.file.input.files[0];
    f.chooser.refresh({ file, text: f.text.input.value, header: f.header.input.checked });
  };
  f.text.input.addEventListener('input', () => {
    if (!f.text.input.value.trim()) st.headerSetByUser = false;
    detect();
  });
  f.header.input.addEventListener('change', () => {
    st.headerSetByUser = true;
    detect();
  });
  f.file.input.addEventListener('change', async () => {
    const file = f.file.input.files && f.file.input.files[0];
    st.fileText = null;
    st.headerSetByUser = false; // new content: detect again
    f.chooser.reset();
    check();
    if (file) st.fileText = await file.text().catch(() => '');
    detect();
  });
  const draft = loadDraft(m.id);
  if (draft && draft.text) {
    f.text.input.value = draft.text;
    if (draft.header !== null && draft.header !== undefined) {
      st.headerSetByUser = true;
      f.header.input.checked = !!draft.header;
    }
  }
  detect();
  return { check, state: st };
}

async function submitForm(m, ctx, form, f, fs, submit) {
  const file = f.file.input.files && f.file.input.files[0];
  const text = f.text.input.value;
  const { n, errs } = fs.check();
  if (!Object.keys(errs).length && n === 0) errs[file ? 'file' : 'inputs'] = file ? 'the file has no molecule' : 'give at least one molecule, or choose a file';
  if (Object.keys(errs).length) {
    fs.state.error = true;
    showFieldErrors(form, errs);
    return;
  }
  const q = qs({ has_header: f.header.input.checked ? 'true' : 'false', cache_opt_in: f.cache.input.checked ? 'true' : 'false',
    column: f.chooser.value() });
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
    saveDraft(m.id, '');
    ctx.navigate('/requests/' + r.id);
  } catch (e) {
    const fe = Object.assign({}, e.fields);
    if (fe.line) fe.inputs = (fe.inputs || '') + ` (line ${fe.line})`;
    delete fe.line;
    const target = file && fe.inputs ? { file: fe.inputs } : fe;
    fs.state.error = true;
    // one error: next to the field when the API names one, else the form's
    showFieldErrors(form, target, Object.keys(target).length ? null : errorText(e));
  } finally {
    submit.disabled = false;
  }
}

function requestForm(m, ctx, limit) {
  const wantExample = ctx.query && ctx.query.get('example') === '1';
  if (!session.currentUser()) {
    const back = '/models/' + m.id + (wantExample ? '?example=1' : '');
    return el('div.card',
      el('h2', 'New request'),
      el('p', el('a', { href: '#/login?next=' + encodeURIComponent(back) }, 'Log in'), ' (or use it without an account there) or ',
        el('a', { href: '#/signup' }, 'sign up'), ' to submit molecules from this page.'));
  }
  const f = formFields(m);
  f.chooser = columnChooser(m.id); // the input column of a multi-column CSV (web/columns.js)
  const submit = el('button#submit-request', { type: 'submit' }, 'Submit request');
  const fill = el('button.secondary.small#fill-examples', { type: 'button' }, 'Try with example molecules');
  fill.addEventListener('click', () => {
    f.text.input.value = examples(m).join('\n') + '\n';
    f.text.input.dispatchEvent(new Event('input'));
    f.text.input.focus();
  });
  const form = el('form.card#request-form', { novalidate: true },
    el('h2', 'New request'), el('div.actions', fill),
    el('p.form-error', { role: 'alert' }),
    f.text, el('p.hint#input-count', { 'aria-live': 'polite' }), f.file, f.header,
    el('p.hint#header-note', { 'aria-live': 'polite' }), f.chooser.node, f.cache,
    el('div.actions', submit));
  const fs = formState(m, form, f, limit);
  if (wantExample && !f.text.input.value.trim()) fill.click();
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitForm(m, ctx, form, f, fs, submit);
  });
  return form;
}

export async function detailPage(view, ctx) {
  const id = ctx.params.id;
  let m;
  let limit = 1000;
  try {
    const [mm, h] = await Promise.all([get('/api/models/' + encodeURIComponent(id)),
      get('/api/health').catch(() => null)]);
    m = mm;
    if (h && h.limits && h.limits.max_inputs) limit = h.limits.max_inputs;
  } catch (e) {
    view.append(pageTitle('Model ' + id), el('p.error', { role: 'alert' },
      e.status === 404 ? 'There is no such model (or it is disabled).' : errorText(e)));
    return;
  }
  const d = m.details || {};
  const join = (a) => (a && a.length ? a.join(', ') : null);
  const facts = [
    ['Model id', m.id],
    ['Slug', m.slug],
    ['Tasks', join(m.tasks)],
    ['Input', join(m.input_types) || d.input || 'Compound (SMILES)'],
    ['Output', join(m.output_types)],
    ['Outputs (columns)', (d.columns || []).join(', ') || null],
    ['Interpretation', m.interpretation],
    ['Biomedical areas', join(m.biomedical_areas)],
    ['Target organisms', join(m.target_organisms)],
    ['Publication', m.publication],
    ['Source code', m.source_code || d.source || d.source_code],
    ['License', m.license],
    ['Mode', m.execution_mode],
    ['Version', m.model_version],
  ].filter(([, v]) => v !== null && v !== undefined && v !== '');
  const value = (v) => (/^https?:\/\//.test(String(v)) ? el('a', { href: String(v), rel: 'noopener noreferrer', target: '_blank' }, String(v)) : String(v));
  const form = m.enabled ? requestForm(m, ctx, limit) : el('p.error', 'This model is disabled and takes no requests.');
  view.append(
    pageTitle(title(m), session.isAdmin() ? el('a.button.secondary', { href: '#/admin/models/' + encodeURIComponent(m.id) }, 'Edit (admin)') : null),
    m.description ? el('p.lead', m.description) : null,
    el('dl.facts#model-facts', facts.map(([k, v]) => [el('dt', k), el('dd', value(v))])),
    form,
    curlRecipe(m.id));
}
