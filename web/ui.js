// ui.js — small DOM helpers shared by the pages: element builder, forms
// with field errors, status badges, progress bars, dates, the poller.
//
// Runs in: the browser (ES module). Called by: app.js and pages/*.js.
// Owns: nothing global except the message area (#messages) it writes
// to, the polite live region (#live-status) that announce() fills, and
// one 1 s timer ticking the durations marked by ticking().
//
// Text always goes in through textContent (never innerHTML), so values
// from the API (model descriptions, failure details, inputs) cannot inject
// markup. Styles are classes from style.css; the only inline style is set
// through the CSSOM (el.style.width), which the CSP allows.

/** el('tag.class#id', {attrs}, ...children) → Element. Children may be
 * strings, numbers, Elements, arrays or null. Attrs: on* → listeners,
 * `class`, `dataset`, boolean true → empty attribute, false/null → skipped. */
export function el(spec, attrs, ...children) {
  const m = /^([a-z0-9-]+)?((?:[.#][\w-]+)*)$/i.exec(spec) || [];
  const node = document.createElement(m[1] || 'div');
  for (const part of (m[2] || '').match(/[.#][\w-]+/g) || []) {
    if (part[0] === '.') node.classList.add(part.slice(1));
    else node.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'class') String(v).split(/\s+/).filter(Boolean).forEach((c) => node.classList.add(c));
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'value' && 'value' in node) node.value = v;
    else if (k === 'checked' || k === 'selected' || k === 'disabled') node[k] = !!v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replace the content of node with children. */
export function setContent(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

const FLASH_MAX = 3; /* messages shown at once */

/** Show a message in the page-wide live region. kind: info|error|success. */
export function flash(text, kind = 'info') {
  const box = document.getElementById('messages');
  if (!box) return;
  const msg = el('p.message.' + kind, { role: kind === 'error' ? 'alert' : 'status' },
    el('span', text),
    el('button.link.dismiss', { type: 'button', 'aria-label': 'Dismiss message', onclick: () => msg.remove() }, '×'));
  msg.dataset.at = String(Date.now());
  box.append(msg);
  // At most FLASH_MAX at once, the oldest going first (an error only when
  // nothing else can go): a stack of toasts would cover the controls at the
  // bottom right of the page that the next click needs.
  while (box.children.length > FLASH_MAX) {
    const old = [...box.children].find((m) => !m.classList.contains('error')) || box.firstElementChild;
    old.remove();
  }
  if (kind !== 'error') setTimeout(() => msg.remove(), 8000);
}

/** On navigation: drop messages older than ms (a message flashed just
 * before navigating, e.g. "Model created", stays for the new page). */
export function pruneFlash(ms = 1500) {
  const box = document.getElementById('messages');
  if (!box) return;
  const now = Date.now();
  for (const m of [...box.children]) {
    if (now - Number(m.dataset.at || 0) > ms) m.remove();
  }
}

export function clearFlash() {
  const box = document.getElementById('messages');
  if (box) box.replaceChildren();
}

// ---- forms

let fieldSeq = 0;

/** A labelled field: {name, label, type, value, hint, required, attrs,
 * options (select: [[value, text]]), rows (textarea)}. Returns the wrapper;
 * its .input is the control. The error slot is aria-describedby'd. */
export function field(f) {
  const id = 'f-' + f.name + '-' + ++fieldSeq;
  const errId = id + '-err';
  const hintId = id + '-hint';
  let input;
  const common = Object.assign({ id, name: f.name, required: !!f.required,
    'aria-describedby': (f.hint ? hintId + ' ' : '') + errId }, f.attrs || {});
  if (f.type === 'select') {
    input = el('select', common, (f.options || []).map(([v, t]) =>
      el('option', { value: v, selected: String(v) === String(f.value ?? '') }, t)));
  } else if (f.type === 'textarea') {
    input = el('textarea', Object.assign({ rows: f.rows || 6 }, common));
    input.value = f.value ?? '';
  } else if (f.type === 'checkbox') {
    input = el('input', Object.assign({ type: 'checkbox', checked: !!f.value }, common));
  } else {
    input = el('input', Object.assign({ type: f.type || 'text', value: f.value ?? '' }, common));
  }
  const label = el('label', { for: id }, f.label, f.required ? el('span.req', { 'aria-hidden': 'true' }, ' *') : null);
  const wrap = f.type === 'checkbox'
    ? el('div.field.check', input, label)
    : el('div.field', label, input);
  if (f.hint) wrap.append(el('small.hint', { id: hintId }, f.hint));
  wrap.append(el('small.field-error', { id: errId, 'aria-live': 'polite' }));
  wrap.input = input;
  wrap.dataset.field = f.name;
  return wrap;
}

/** Show {name: message} next to the fields of form (clears the others).
 * Unknown names go to the form-level error box. Focuses the first bad
 * field unless opts.focus is false (checks while the user types). */
export function showFieldErrors(form, fields, general, opts = {}) {
  let first = null;
  const rest = [];
  for (const w of form.querySelectorAll('.field')) {
    const slot = w.querySelector('.field-error');
    const name = w.dataset.field;
    if (!slot || !name) continue; // a layout wrapper (e.g. around a button)
    const msg = fields && Object.prototype.hasOwnProperty.call(fields, name) ? fields[name] : '';
    slot.textContent = msg;
    const input = w.querySelector('input, select, textarea');
    if (msg) {
      input.setAttribute('aria-invalid', 'true');
      w.classList.add('invalid');
      if (!first) first = input;
    } else {
      input.removeAttribute('aria-invalid');
      w.classList.remove('invalid');
    }
  }
  for (const [k, v] of Object.entries(fields || {})) {
    if (!form.querySelector(`.field[data-field="${CSS.escape(k)}"]`)) rest.push(`${k}: ${v}`);
  }
  const box = form.querySelector('.form-error');
  if (box) box.textContent = [general, ...rest].filter(Boolean).join(' — ');
  if (first && opts.focus !== false) first.focus();
  return !first && !general && rest.length === 0;
}

/** An ApiError (or any error) as one sentence for the user. */
export function errorText(e) {
  if (!e) return '';
  if (e.code === 'network_error') return e.message;
  if (e.code === 'account_disabled') return 'This account is disabled. Ask an administrator to enable it again.';
  if (e.status === 403) return 'You do not have permission to do this.';
  if (e.status === 429) return tooMany(e);
  return e.message || String(e);
}

/** "in 15 minutes" (or seconds under a minute). */
export function fmtWait(sec) {
  const s = Math.max(1, Math.round(sec));
  if (s < 60) return `in ${s} second${s === 1 ? '' : 's'}`;
  const m = Math.ceil(s / 60);
  return m < 120 ? `in ${m} minute${m === 1 ? '' : 's'}` : `in ${Math.ceil(m / 60)} hours`;
}

/** A 429 as a sentence: what was refused (the API's words before ';')
 * and when to try again, in minutes. */
function tooMany(e) {
  const msg = String(e.message || '');
  const m = /retry in (\d+) seconds?/.exec(msg);
  const wait = e.retryAfter || (m ? Number(m[1]) : 0);
  const what = msg.split(';')[0].trim() || 'too many attempts';
  const head = what.charAt(0).toUpperCase() + what.slice(1) + '.';
  return wait ? `${head} Try again ${fmtWait(wait)}.` : `${head} Wait a little and try again.`;
}

// ---- values

/** ISO timestamp → local "YYYY-MM-DD HH:MM:SS" (or '–'). */
export function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Seconds → "1 h 2 min", "3 min 4 s", "5 s". */
export function fmtDuration(sec) {
  if (sec === null || sec === undefined || Number.isNaN(sec)) return '–';
  sec = Math.max(0, Math.round(sec));
  if (sec < 60) return `${sec} s`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min ${sec % 60} s`;
  return `${Math.floor(sec / 3600)} h ${Math.floor((sec % 3600) / 60)} min`;
}

/** Milliseconds → "350 ms", "2.4 s", or fmtDuration's form from a minute on. */
export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return '–';
  const n = Math.max(0, Number(ms));
  if (n < 1000) return `${Math.round(n)} ms`;
  if (n < 60000) return `${(n / 1000).toFixed(1)} s`;
  return fmtDuration(n / 1000);
}

export function fmtNum(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(Number(v))) return '–';
  const n = Number(v);
  return Number.isInteger(n) ? String(n) : n.toFixed(digits);
}

/** An API enum as words: 'very_under' → 'very under', 'CANCELLED' →
 * 'cancelled'. */
export function statusText(s) {
  return String(s ?? '').toLowerCase().replace(/_+/g, ' ');
}

/** Coloured status badge (QUEUED, RUNNING, READY, ...). */
export function badge(status) {
  const s = String(status || 'unknown');
  return el('span.badge.status-' + s.toLowerCase().replace(/[^a-z0-9]+/g, '-'), s);
}

/** Progress bar: done of total (cached shown in the label). */
export function progressBar(p, label) {
  const total = Math.max(0, Number(p && p.total) || 0);
  const done = Math.min(total, Math.max(0, Number(p && p.done) || 0));
  const pct = total ? Math.round((done * 100) / total) : 0;
  const text = `${done} / ${total}` + (p && p.cached ? ` (${p.cached} cached)` : '');
  const fill = el('span.progress-fill');
  fill.style.width = pct + '%';
  return el('span.progress', {
    role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': String(total),
    'aria-valuenow': String(done), 'aria-label': label || 'progress', 'aria-valuetext': text,
  }, el('span.progress-track', fill), el('span.progress-text', text));
}

/** A table: cols [{head, cell: row → node|string, class}], rows. */
/** Placeholder rows while a list's first answer is on its way (grey
 * bars, hidden from screen readers, which hear "Loading…"); the page
 * replaces the whole element when the data arrives. */
export function skeletonRows(cols, rows = 3) {
  const bar = () => el('td', el('span.skeleton-bar'));
  return el('div.skeleton', el('span.sr-only', 'Loading…'),
    el('table.skeleton-table', { 'aria-hidden': 'true' },
      el('tbody', Array.from({ length: rows }, () => el('tr', Array.from({ length: cols }, bar))))));
}

export function table(cols, rows, opts = {}) {
  return el('div.table-wrap', el('table' + (opts.cls ? '.' + opts.cls : ''),
    opts.caption ? el('caption', opts.caption) : null,
    el('thead', el('tr', cols.map((c) => el('th', { scope: 'col', class: c.class }, c.head)))),
    el('tbody', rows.length
      ? rows.map((r) => el('tr', opts.rowAttrs ? opts.rowAttrs(r) : null,
        cols.map((c) => el('td', { class: c.class, 'data-label': c.head }, c.cell(r)))))
      : el('tr', el('td.empty', { colspan: String(cols.length) }, opts.empty || 'Nothing to show.')))));
}

/** A heading for a page; focusable so route changes can move focus to it. */
export function pageTitle(text, ...extra) {
  document.title = text + ' — modelhub';
  return el('div.page-head', el('h1', { tabindex: '-1' }, text), extra);
}

/**
 * poll(fn, ms) — call async fn now and then every ms while it returns
 * true (keep going); one call at a time; paused while the tab is hidden.
 * Returns stop(). Errors stop nothing: fn decides.
 */
export function poll(fn, ms) {
  let stopped = false;
  let timer = null;
  let running = false;
  async function tick() {
    timer = null;
    if (stopped || running) return;
    if (document.hidden) {
      timer = setTimeout(tick, ms);
      return;
    }
    running = true;
    let again = false;
    try {
      again = await fn();
    } catch (e) {
      again = true;
    }
    running = false;
    if (!stopped && again) timer = setTimeout(tick, ms);
  }
  tick();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}

/** Date input value (YYYY-MM-DD) for a Date. */
export function isoDate(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

// ---- live views: update in place

/** Key of a node for morph(): its id or data-key / data-id, else null. */
function keyOf(n) {
  if (n.nodeType !== 1) return null;
  return n.id || n.dataset.key || n.dataset.id || null;
}

function sameKind(a, b) {
  return a.nodeType === b.nodeType && a.nodeName === b.nodeName && keyOf(a) === keyOf(b);
}

function syncAttrs(cur, want) {
  for (const a of [...cur.attributes]) {
    // a <details> the user opened stays open (pages never build it open)
    if (a.name === 'open' && cur.nodeName === 'DETAILS') continue;
    if (!want.hasAttribute(a.name)) cur.removeAttribute(a.name);
  }
  for (const a of want.attributes) {
    if (cur.getAttribute(a.name) === a.value) continue;
    // style through the CSSOM: the CSP refuses a style attribute write
    if (a.name === 'style') cur.style.cssText = want.style.cssText;
    else cur.setAttribute(a.name, a.value);
  }
  if ('disabled' in want && cur.disabled !== want.disabled) cur.disabled = want.disabled;
}

/**
 * morph(target, ...children) — make target's content equal to children
 * while keeping the nodes that are already there (matched by position,
 * tag and key: id, data-key or data-id). A focused link or button, an
 * open <details> or a text selection survive a poll this way; only
 * changed text and attributes are written. Rows are keyed (data-id), so a
 * new row inserted above does not shift content into the focused one.
 * Kept nodes keep their listeners: pages give them handlers that do not
 * capture stale data. Form controls keep what the user typed.
 */
export function morph(target, ...children) {
  const src = document.createElement('div');
  append(src, children);
  morphChildren(target, src);
  return target;
}

function morphChildren(target, src) {
  const want = [...src.childNodes];
  const wantKeys = new Set(want.map(keyOf).filter(Boolean));
  let i = 0;
  for (const n of want) {
    let cur = target.childNodes[i];
    // drop old keyed nodes that are not wanted any more
    while (cur && keyOf(cur) && !wantKeys.has(keyOf(cur)) && keyOf(cur) !== keyOf(n)) {
      cur.remove();
      cur = target.childNodes[i];
    }
    const k = keyOf(n);
    if (cur && k && keyOf(cur) !== k) {
      const old = [...target.childNodes].slice(i).find((c) => keyOf(c) === k && sameKind(c, n));
      if (old) {
        target.insertBefore(old, cur); // moved (rare: a reorder)
        cur = old;
      }
    }
    if (!cur) target.append(n);
    else if (!sameKind(cur, n) && !keyOf(cur)) cur.replaceWith(n);
    else if (!sameKind(cur, n)) target.insertBefore(n, cur);
    else if (n.nodeType === 3 || n.nodeType === 8) {
      if (cur.data !== n.data) cur.data = n.data;
    } else if (n.nodeType === 1) {
      syncAttrs(cur, n);
      if (!['INPUT', 'TEXTAREA', 'SELECT'].includes(n.nodeName)) morphChildren(cur, n);
    }
    i++;
  }
  while (target.childNodes.length > want.length) target.lastChild.remove();
}

/** Say text once through the polite live region (#live-status), e.g. a
 * status change; the tables themselves are not live regions. */
export function announce(text) {
  let box = document.getElementById('live-status');
  if (!box) {
    box = el('div.sr-only#live-status', { role: 'status', 'aria-live': 'polite' });
    document.body.append(box);
  }
  box.textContent = text;
}

/** Status changes since the last poll, for announce(): remembers
 * id → status and returns "what changed" sentences. */
export function statusWatch() {
  const last = new Map();
  return (items, label) => {
    const out = [];
    for (const x of items) {
      const before = last.get(x.id);
      if (before && before !== x.status) out.push(`${label(x)} is now ${statusText(x.status)}.`);
      last.set(x.id, x.status);
    }
    return out;
  };
}

let ticker = null;

function tickAll() {
  const now = Date.now();
  for (const n of document.querySelectorAll('[data-tick-from]')) {
    const from = Date.parse(n.dataset.tickFrom);
    if (!Number.isNaN(from)) n.textContent = fmtDuration((now - from) / 1000);
  }
}

/** A duration that ticks every second while on the page: from iso to
 * now, or fixed when `to` is given. */
export function ticking(from, to) {
  if (!from) return el('span.duration', '–');
  const a = Date.parse(from);
  if (to) return el('span.duration', fmtDuration((Date.parse(to) - a) / 1000));
  if (!ticker) ticker = setInterval(tickAll, 1000);
  return el('span.duration', { dataset: { tickFrom: from } }, fmtDuration((Date.now() - a) / 1000));
}
