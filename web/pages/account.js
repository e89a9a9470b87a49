// pages/account.js — the person's own account (#/account), forgot password
// (#/forgot-password) and choosing a new password from a reset link
// (#/reset-password?token=).
//
// Runs in: the browser. Called by: app.js. Owns: nothing beyond its forms.
//
// A user's account page: change password (current password required; every
// other session ends), change email, sessions (revoke any but this one),
// delete my data, delete my account (both ask for the password and a
// confirmation). A guest's account page: the guest id to copy (shown once
// when the session is made; "New guest id" makes another and ends the old
// one everywhere), the guest's request count and "Create an account",
// which keeps the guest's requests.
//
// Calls PATCH /api/account, POST /api/account/password, GET/DELETE
// /api/account/sessions[/{id}], POST /api/account/delete-data,
// POST /api/account/delete, POST /api/auth/password-reset[/confirm],
// GET /api/auth/guest, POST /api/auth/guest/new-id, /claim.

import { get, post, patch, del } from '../api.js';
import * as session from '../session.js';
import { checkSignup } from './auth.js';
import { el, field, showFieldErrors, errorText, pageTitle, flash, clearFlash, table, fmtTime,
  setContent } from '../ui.js';

/** The guest id made by "Use without an account", shown once on this page. */
let freshGuestId = null;
export function showGuestIdOnce(id) {
  freshGuestId = id;
}

function values(form) {
  const v = {};
  for (const i of form.querySelectorAll('input')) v[i.name] = i.value;
  return v;
}

/** A form that POSTs (or calls send) and shows the API's field errors. */
function apiForm(id, fields, label, send, opts = {}) {
  const submit = el('button', { type: 'submit', class: opts.danger ? 'danger' : null }, label);
  const form = el(`form.card.narrow#${id}`, { novalidate: true },
    opts.title ? el('h2', opts.title) : null,
    opts.text ? el('p.hint', opts.text) : null,
    el('p.form-error', { role: 'alert' }), fields, el('div.actions', submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const v = values(form);
    const pre = opts.check ? opts.check(v) : {};
    if (!showFieldErrors(form, pre)) return;
    if (opts.confirm && !window.confirm(opts.confirm)) return;
    submit.disabled = true;
    try {
      await send(v, form);
      showFieldErrors(form, {});
    } catch (e) {
      showFieldErrors(form, e.fields, errorText(e));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

const pw = (name, label, auto = 'current-password') =>
  field({ name, label, type: 'password', required: true, attrs: { autocomplete: auto } });

function passwordForm() {
  return apiForm('password-form', [pw('current_password', 'Current password'),
    pw('new_password', 'New password', 'new-password'), pw('new_password2', 'Repeat the new password', 'new-password')],
  'Change password', async (v, form) => {
    await post('/api/account/password', { current_password: v.current_password, new_password: v.new_password });
    form.reset();
    flash('Password changed. Your other sessions have been ended.', 'success');
  }, { title: 'Password',
    check: (v) => (v.new_password2 !== v.new_password ? { new_password2: 'does not match the new password' } : {}) });
}

function emailForm(user) {
  const f = field({ name: 'email', label: 'Email', type: 'email', required: true, value: user.email || '',
    attrs: { autocomplete: 'email' } });
  return apiForm('email-form', [f, pw('current_password', 'Current password')], 'Change email',
    async (v, form) => {
      const u = await patch('/api/account', { email: v.email.trim(), current_password: v.current_password });
      form.querySelector('[name=current_password]').value = '';
      flash(`Email changed to ${u.email}.`, 'success');
    }, { title: 'Email' });
}

async function sessionsBlock(box) {
  const draw = async () => {
    let r;
    try {
      r = await get('/api/account/sessions');
    } catch (e) {
      setContent(box, el('p.error', { role: 'alert' }, errorText(e)));
      return;
    }
    const revoke = (s) => {
      if (s.current) return el('span.hint', 'this session');
      const b = el('button.small.secondary', { type: 'button', 'aria-label': `End session ${s.id}` }, 'End');
      b.addEventListener('click', async () => {
        b.disabled = true;
        try {
          await del(`/api/account/sessions/${s.id}`);
          flash(`Session ${s.id} ended.`, 'success');
          await draw();
        } catch (e) {
          flash(errorText(e), 'error');
          b.disabled = false;
        }
      });
      return b;
    };
    setContent(box, table([
      { head: 'Id', cell: (s) => String(s.id) },
      { head: 'Kind', cell: (s) => s.kind },
      { head: 'Started', cell: (s) => fmtTime(s.created_at) },
      { head: 'Expires', cell: (s) => fmtTime(s.absolute_expires_at) },
      { head: 'Browser or client', cell: (s) => s.user_agent || '–' },
      { head: 'Address', cell: (s) => s.ip || '–' },
      { head: '', cell: revoke },
    ], r.items || [], { cls: 'sessions', rowAttrs: (s) => ({ dataset: { id: String(s.id) } }) }));
  };
  await draw();
}

function deleteForms(ctx) {
  const data = apiForm('delete-data-form', [pw('current_password', 'Current password')], 'Delete my data',
    async (v, form) => {
      const r = await post('/api/account/delete-data', { current_password: v.current_password });
      form.reset();
      flash(`Deleted ${r.deleted_requests} requests and ${r.deleted_cache_entries} cached results you contributed.`,
        'success');
    }, { danger: true, title: 'Delete my data',
      text: 'Deletes all your requests with their inputs and results, and the cached results you contributed. Your account stays.',
      confirm: 'Delete all your requests and results? This cannot be undone.' });
  const acct = apiForm('delete-account-form', [pw('current_password', 'Current password')], 'Delete my account',
    async (v) => {
      await post('/api/account/delete', { current_password: v.current_password });
      clearFlash();
      await session.logout({ ended: true }); // the deletion ended the session and cleared the cookie
      flash('Your account and its data have been deleted.', 'success');
      ctx.navigate('/models', { replace: true });
    }, { danger: true, title: 'Delete my account',
      text: 'Deletes your account, all your requests and results and your sessions.',
      confirm: 'Delete your account and everything in it? This cannot be undone.' });
  return [data, acct];
}

async function userAccount(view, ctx) {
  const u = ctx.user;
  const sessions = el('div#account-sessions');
  view.append(pageTitle('Your account'),
    el('dl.facts#account-facts', el('dt', 'Username'), el('dd', u.username), el('dt', 'Email'), el('dd', u.email || '–'),
      el('dt', 'Roles'), el('dd', (u.roles || []).join(', '))),
    el('div.grid', passwordForm(), emailForm(u)),
    el('h2', 'Sessions'), el('p.hint', 'Where you are logged in, API tokens included.'), sessions,
    el('div.grid', deleteForms(ctx)));
  await sessionsBlock(sessions);
}

function guestIdBox() {
  const box = el('div.card#guest-id-box');
  const show = (id) => setContent(box, el('h2', 'Your guest id'),
    el('p', 'Copy it to come back to your requests from another browser (Log in → "I have a guest id"). ' +
      'Anyone with it can see your requests: keep it private.'),
    el('input#guest-id', { type: 'text', readonly: true, value: id, 'aria-label': 'Guest id', size: 70 }),
    newIdButton('Make a new guest id'));
  const newIdButton = (label) => {
    const b = el('button.secondary#guest-new-id', { type: 'button' }, label);
    b.addEventListener('click', async () => {
      if (!window.confirm('The current guest id stops working everywhere. Go on?')) return;
      b.disabled = true;
      try {
        const r = await post('/api/auth/guest/new-id', {});
        show(r.guest_id);
      } catch (e) {
        flash(errorText(e), 'error');
        b.disabled = false;
      }
    });
    return b;
  };
  if (freshGuestId) {
    show(freshGuestId);
    freshGuestId = null;
  } else {
    setContent(box, el('h2', 'Your guest id'),
      el('p', 'It was shown when this guest session started. A new one replaces it (the old one stops working).'),
      newIdButton('Show a new guest id'));
  }
  return box;
}

function claimForm(ctx) {
  const fields = [
    field({ name: 'username', label: 'Username', required: true, attrs: { autocomplete: 'username', maxlength: '32' } }),
    field({ name: 'email', label: 'Email', type: 'email', required: true, attrs: { autocomplete: 'email' } }),
    pw('password', 'Password', 'new-password'), pw('password2', 'Repeat the password', 'new-password'),
  ];
  return apiForm('claim-form', fields, 'Create account', async (v) => {
    const r = await session.claimGuest({ username: v.username.trim(), email: v.email.trim(), password: v.password });
    flash(`Welcome, ${r.user.username}! Your ${r.moved_requests} requests are now in your account.`, 'success');
    ctx.navigate('/requests', { replace: true });
  }, { title: 'Create an account', text: 'Keeps your requests and results; no more guest id needed.',
    check: (v) => checkSignup({ username: v.username.trim(), email: v.email.trim(), password: v.password,
      password2: v.password2 }) });
}

async function guestAccount(view, ctx) {
  let g = {};
  try {
    g = await get('/api/auth/guest');
  } catch (e) {
    flash(errorText(e), 'error');
  }
  view.append(pageTitle('Guest session'),
    el('p.lead', `You are using modelhub without an account. Your requests (${g.requests || 0} so far) ` +
      `and this session are kept until ${fmtTime(g.expires_at)}; each visit extends it.`),
    el('div.grid', guestIdBox(), claimForm(ctx)));
}

export async function accountPage(view, ctx) {
  if (session.isGuest()) return guestAccount(view, ctx);
  return userAccount(view, ctx);
}

export function forgotPage(view) {
  const out = el('div#forgot-result', { role: 'status' });
  const form = apiForm('forgot-form', [field({ name: 'login', label: 'Username or email', required: true,
    attrs: { autocomplete: 'username' } })], 'Send a reset link', async (v) => {
    const r = await post('/api/auth/password-reset', { login: v.login.trim() });
    setContent(out, el('p.card', r.email_enabled
      ? 'If an account matches, a link to choose a new password is on its way to its email address. It works once, for a short time.'
      : 'This hub does not send email. Ask an administrator for a password reset link.'));
  }, { check: (v) => (v.login.trim() ? {} : { login: 'required' }) });
  view.append(pageTitle('Forgot your password?'), form, out,
    el('p', el('a', { href: '#/login' }, 'Back to log in')));
}

export function resetPage(view, ctx) {
  const token = ctx.query.get('token') || '';
  const out = el('div#reset-result', { role: 'status' });
  const form = apiForm('reset-form', [pw('new_password', 'New password', 'new-password'),
    pw('new_password2', 'Repeat the new password', 'new-password')], 'Set the new password', async (v, f) => {
    await post('/api/auth/password-reset/confirm', { token, new_password: v.new_password });
    f.hidden = true;
    setContent(out, el('p.card', 'Your password has been changed and every session of your account has ended. ',
      el('a#reset-login', { href: '#/login' }, 'Log in')));
  }, { check: (v) => (v.new_password2 !== v.new_password ? { new_password2: 'does not match the new password' } : {}) });
  view.append(pageTitle('Choose a new password'), token ? form : el('p.error', 'This link has no token.'), out);
}
