// pages/api-docs.js — #/api: the HTTP API, browsable, drawn from
// GET /api/openapi.json (the same description t/177 checks against the
// router and real answers).
//
// Runs in: the browser. Called by: app.js (#/api). Owns: nothing beyond
// its DOM. One section per path; each operation shows its method, summary,
// who may call it (x-access), path and query parameters, and its answers
// with their schemas (schema references resolved one level, shown as JSON).

import { get } from '../api.js';
import { el, pageTitle, errorText, setContent } from '../ui.js';

function schemaText(spec, sch) {
  const ref = sch && sch.$ref;
  const name = ref ? ref.split('/').pop() : null;
  const body = name ? spec.components.schemas[name] : sch;
  return (name ? name + ' = ' : '') + JSON.stringify(body, null, 1);
}

function operation(spec, path, method, op) {
  const params = (op.parameters || []).map((p) => el('li', el('code', p.name), ` (${p.in})`));
  const answers = Object.entries(op.responses || {}).map(([st, r]) => {
    const content = Object.entries(r.content || {});
    return el('li', el('strong', st), ' ', r.description || '',
      content.map(([ct, c]) => el('details', el('summary', ct), el('pre', schemaText(spec, c.schema)))));
  });
  return el('article.card.api-op', { dataset: { op: `${method.toUpperCase()} ${path}` } },
    el('h3', el('code', `${method.toUpperCase()} ${path}`)),
    el('p', op.summary || '', ' ', el('span.badge', op['x-access'] || '')),
    params.length ? [el('p', 'Parameters:'), el('ul', params)] : null,
    el('p', 'Answers:'), el('ul', answers));
}

export async function apiPage(view) {
  const out = el('div#api-docs');
  view.append(pageTitle('HTTP API'),
    el('p.lead', 'Every route of the API, from ', el('a', { href: '/api/openapi.json' }, '/api/openapi.json'),
      ' (OpenAPI 3.1). Access: public, session (a user or an anonymous token), user, admin. Errors are ',
      el('code', '{"error": {"code", "message", "fields"}}'), '.'),
    out);
  try {
    const spec = await get('/api/openapi.json');
    const ops = [];
    for (const [path, item] of Object.entries(spec.paths || {})) {
      for (const [method, op] of Object.entries(item)) ops.push(operation(spec, path, method, op));
    }
    setContent(out, el('p#api-count', `${ops.length} operations.`), ops);
  } catch (e) {
    setContent(out, el('p.error', { role: 'alert' }, errorText(e)));
  }
}
