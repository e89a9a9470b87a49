// pages/auth.js — log in (with "Use without an account" and "I have a
// guest id") and sign up.
//
// Runs in: the browser. Called by: app.js (routes #/login, #/signup).
// Owns: nothing beyond its forms.
//
// Sign-up checks mirror the API's (src/lib/validate.c) so most mistakes
// are shown before a round trip; the API checks again and its field errors
// (422 validation_failed, 409 conflict) are shown next to the same fields.
// Email is required (seed: "make email required during signup").

import * as session from '../session.js';
import { el, field, showFieldErrors, errorText, pageTitle, flash, clearFlash } from '../ui.js';

const USERNAME_RE = /^[a-z0-9_.-]+$/;
// Close to the API's rule (one '@', dot-atom local part, LDH labels, alphabetic TLD).
const EMAIL_RE = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}$/;

/** Client-side checks; {field: message} (empty when fine). */
export function checkSignup(v) {
  const f = {};
  const u = v.username || '';
  if (!u) f.username = 'required';
  else if (u.length < 3 || u.length > 32) f.username = 'must be 3 to 32 characters long';
  else if (!USERNAME_RE.test(u)) f.username = "may only contain lowercase letters, digits, '_', '.' and '-'";
  const e = v.email || '';
  if (!e) f.email = 'required';
  else if (e.length > 254) f.email = 'must be at most 254 characters long';
  else if ((e.match(/@/g) || []).length !== 1) f.email = "must contain exactly one '@'";
  else if (!EMAIL_RE.test(e)) f.email = 'is not a valid email address';
  const p = v.password || '';
  const chars = [...p].length;
  if (!p) f.password = 'required';
  else if (chars < 10) f.password = 'must be at least 10 characters long';
  else if (new TextEncoder().encode(p).length > 1024) f.password = 'must be at most 1024 bytes long';
  else if (p.toLowerCase() === u.toLowerCase()) f.password = 'must not be the same as the username';
  else if (p.toLowerCase() === e.toLowerCase()) f.password = 'must not be the same as the email';
  if (v.password2 !== undefined && p && v.password2 !== p) f.password2 = 'does not match the password';
  if ((v.first_name || '').length > 100) f.first_name = 'must be at most 100 characters long';
  if ((v.last_name || '').length > 100) f.last_name = 'must be at most 100 characters long';
  return f;
}

function values(form) {
  const v = {};
  for (const i of form.querySelectorAll('input')) v[i.name] = i.type === 'checkbox' ? i.checked : i.value;
  return v;
}

function safeNext(next) {
  // Only our own hash routes: never an absolute URL.
  return next && /^\/[A-Za-z0-9/_.?=&%-]*$/.test(next) && !next.startsWith('/login') &&
    !next.startsWith('/signup') ? next : '/models';
}

/** "Use without an account" (a guest session) and coming back with a
 * guest id; pages/account.js shows the new id once. */
function guestBox(ctx) {
  const start = el('button.secondary#guest-start', { type: 'button' }, 'Use without an account');
  const out = el('p.form-error', { role: 'alert' });
  start.addEventListener('click', async () => {
    start.disabled = true;
    try {
      const id = await session.startGuest();
      (await import('./account.js')).showGuestIdOnce(id);
      ctx.navigate('/account', { replace: true });
    } catch (e) {
      out.textContent = errorText(e);
      start.disabled = false;
    }
  });
  const fId = field({ name: 'guest_id', label: 'Guest id', required: true,
    attrs: { autocomplete: 'off', spellcheck: 'false' } });
  const resume = el('form#guest-resume-form', { novalidate: true }, el('p.form-error', { role: 'alert' }), fId,
    el('div.actions', el('button.secondary#guest-resume', { type: 'submit' }, 'Continue as this guest')));
  resume.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const id = fId.input.value.trim();
    if (!showFieldErrors(resume, id ? {} : { guest_id: 'required' })) return;
    try {
      await session.resumeGuest(id);
      ctx.navigate('/requests', { replace: true });
    } catch (e) {
      showFieldErrors(resume, e.fields, errorText(e));
    }
  });
  return el('section.card.narrow#guest-box', el('h2', 'No account?'),
    el('p', 'Submit and download requests as a guest: no password, your requests are kept as long as results are.'),
    out, el('div.actions', start),
    el('details', el('summary', 'I have a guest id'), resume));
}

export function loginPage(view, ctx) {
  if (session.currentUser()) {
    ctx.navigate(safeNext(ctx.query.get('next')), { replace: true });
    return;
  }
  const fUser = field({ name: 'username', label: 'Username or email', required: true,
    attrs: { autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false' } });
  const fPass = field({ name: 'password', label: 'Password', type: 'password', required: true,
    attrs: { autocomplete: 'current-password' } });
  const submit = el('button#login-submit', { type: 'submit' }, 'Log in');
  const form = el('form.card.narrow#login-form', { novalidate: true },
    el('p.form-error', { role: 'alert' }),
    fUser, fPass,
    el('div.actions', submit, el('a#forgot-link', { href: '#/forgot-password' }, 'Forgot your password?')),
    el('p', 'No account yet? ', el('a', { href: '#/signup' }, 'Sign up')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const v = values(form);
    const f = {};
    if (!v.username) f.username = 'required';
    if (!v.password) f.password = 'required';
    if (!showFieldErrors(form, f)) return;
    submit.disabled = true;
    try {
      await session.login(v.username.trim(), v.password);
      clearFlash();
      ctx.navigate(safeNext(ctx.query.get('next')), { replace: true });
    } catch (e) {
      fPass.input.value = '';
      if (e.code === 'invalid_credentials') showFieldErrors(form, {}, 'Wrong username or password.');
      else showFieldErrors(form, e.fields, errorText(e));
    } finally {
      submit.disabled = false;
    }
  });
  view.append(pageTitle('Log in'), form, guestBox(ctx));
  fUser.input.focus();
}

export function signupPage(view, ctx) {
  if (session.currentUser()) {
    ctx.navigate('/models', { replace: true });
    return;
  }
  const fields = [
    field({ name: 'username', label: 'Username', required: true,
      hint: '3 to 32 characters: lowercase letters, digits, _ . -',
      attrs: { autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', maxlength: '32' } }),
    field({ name: 'email', label: 'Email', type: 'email', required: true, attrs: { autocomplete: 'email' } }),
    field({ name: 'password', label: 'Password', type: 'password', required: true,
      hint: 'At least 10 characters, not your username or email.', attrs: { autocomplete: 'new-password' } }),
    field({ name: 'password2', label: 'Repeat the password', type: 'password', required: true,
      attrs: { autocomplete: 'new-password' } }),
    field({ name: 'first_name', label: 'First name (optional)', attrs: { autocomplete: 'given-name', maxlength: '100' } }),
    field({ name: 'last_name', label: 'Last name (optional)', attrs: { autocomplete: 'family-name', maxlength: '100' } }),
  ];
  const submit = el('button#signup-submit', { type: 'submit' }, 'Create account');
  const form = el('form.card.narrow#signup-form', { novalidate: true },
    el('p.form-error', { role: 'alert' }),
    fields,
    el('div.actions', submit),
    el('p', 'Already registered? ', el('a', { href: '#/login' }, 'Log in')));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const v = values(form);
    v.username = v.username.trim();
    v.email = v.email.trim();
    if (!showFieldErrors(form, checkSignup(v))) return;
    const body = { username: v.username, email: v.email, password: v.password };
    if (v.first_name.trim()) body.first_name = v.first_name.trim();
    if (v.last_name.trim()) body.last_name = v.last_name.trim();
    submit.disabled = true;
    try {
      await session.signup(body);
      // Log straight in: the user just typed the password.
      await session.login(v.username, v.password);
      clearFlash();
      flash(`Welcome, ${v.username}! Your account is ready.`, 'success');
      ctx.navigate('/models', { replace: true });
    } catch (e) {
      if (e.status === 422 || e.status === 409) {
        showFieldErrors(form, e.fields, e.status === 409 ? 'Already in use.' : 'Please correct the marked fields.');
      } else {
        showFieldErrors(form, {}, errorText(e));
      }
    } finally {
      submit.disabled = false;
    }
  });
  view.append(pageTitle('Sign up'), form);
  fields[0].input.focus();
}
