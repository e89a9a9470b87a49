// pages/admin-users.js — admin: accounts (id, username, email, roles,
// disabled), search by username, name or email prefix (?q=, kept in the
// route), one user's details with request counts (?username= deep link),
// disable/enable, grant/revoke ADMIN, a password reset link shown once,
// delete a user with their data (typed confirmation), and a link to each
// user's work requests (the admin requests page filters by user id).
//
// Runs in: the browser. Called by: app.js (#/admin/users).
// Owns: nothing beyond its DOM.
//
// Calls GET /api/admin/users?q=&limit=&after= (pages by id), PATCH
// /api/admin/users/{id} {disabled | roles}, GET /api/admin/users/{id},
// POST /api/admin/users/{id}/reset-link, DELETE /api/admin/users/{id}?confirm=. Disabling revokes the user's
// sessions on the server; an admin cannot disable or demote themselves
// from this page (the API would allow it; the page avoids the lock-out).

import { get, patch, post, del, qs } from '../api.js';
import * as session from '../session.js';
import { el, pageTitle, table, badge, fmtTime, errorText, flash, setContent, field } from '../ui.js';

const PAGE = 100;

/** One user's details: counts, reset link, delete (typed confirmation). */
async function detail(box, id, onGone) {
  let u;
  try {
    u = await get(`/api/admin/users/${id}`);
  } catch (e) {
    setContent(box, el('p.error', { role: 'alert' }, errorText(e)));
    return;
  }
  const c = u.requests || {};
  const linkOut = el('div#reset-link-out', { role: 'status' });
  const reset = el('button.secondary#reset-link', { type: 'button' }, 'Make a password reset link');
  reset.addEventListener('click', async () => {
    reset.disabled = true;
    try {
      const r = await post(`/api/admin/users/${u.id}/reset-link`, {});
      const url = r.url || location.origin + r.path;
      setContent(linkOut, el('p', `Give this link to ${r.username}; it works once, until ${fmtTime(r.expires_at)}. ` +
        'It is shown only now.'), el('input#reset-link-url', { type: 'text', readonly: true, value: url,
        'aria-label': 'Reset link', size: 80 }));
    } catch (e) {
      flash(errorText(e), 'error');
    } finally {
      reset.disabled = false;
    }
  });
  const conf = field({ name: 'confirm', label: `Type ${u.username} to delete this user and all their data` });
  const delBtn = el('button.danger#delete-user', { type: 'submit' }, 'Delete user');
  const delForm = el('form#delete-user-form', { novalidate: true }, conf, el('div.actions', delBtn));
  delForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (conf.input.value !== u.username) {
      conf.querySelector('.field-error').textContent = `type ${u.username} exactly`;
      return;
    }
    delBtn.disabled = true;
    try {
      await del(`/api/admin/users/${u.id}` + qs({ confirm: conf.input.value }));
      flash(`${u.username} and their data deleted.`, 'success');
      onGone();
    } catch (e) {
      conf.querySelector('.field-error').textContent = errorText(e);
      delBtn.disabled = false;
    }
  });
  setContent(box, el('h2', `${u.username} (user ${u.id})`),
    el('dl.facts', el('dt', 'Email'), el('dd', u.email || '–'),
      el('dt', 'Name'), el('dd', [u.first_name, u.last_name].filter(Boolean).join(' ') || '–'),
      el('dt', 'Roles'), el('dd', (u.roles || []).join(', ')),
      el('dt', 'Status'), el('dd', u.disabled ? 'disabled' : 'enabled'),
      el('dt', 'Created'), el('dd', fmtTime(u.created_at)),
      el('dt', 'Requests'), el('dd#user-request-counts', `${c.total} in all: ${c.queued} queued, ${c.running} running, ` +
        `${c.completed} completed, ${c.failed} failed, ${c.cancelled} cancelled`),
      el('dt', 'Last request'), el('dd', u.last_request_at ? fmtTime(u.last_request_at) : '–'),
      el('dt', 'Live sessions'), el('dd', String(u.live_sessions))),
    el('p', el('a', { href: '#/admin/requests?user_id=' + u.id }, 'Their work requests')),
    el('div.actions', reset), linkOut,
    session.currentUser() && session.currentUser().id === u.id ? null : delForm);
}

export async function listPage(view, ctx) {
  const out = el('div#admin-users');
  const more = el('button.secondary', { type: 'button', hidden: true }, 'More users');
  const q = ctx.query.get('q') || ctx.query.get('username') || '';
  const fq = field({ name: 'q', label: 'Username, name or email starts with', value: q, type: 'search' });
  const search = el('form.filters#admin-users-search', { role: 'search' }, fq,
    el('button', { type: 'submit' }, 'Search'));
  search.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = fq.input.value.trim();
    ctx.navigate('/admin/users' + (v ? qs({ q: v }) : ''));
  });
  const box = el('section.card#admin-user-detail', { hidden: true, 'aria-live': 'polite' });
  const open = async (u) => {
    box.hidden = false;
    await detail(box, u.id, () => {
      box.hidden = true;
      users = users.filter((x) => x.id !== u.id);
      draw();
    });
  };
  view.append(pageTitle('Users'), search, box, out, more);
  let users = [];
  let next = null;
  const me = session.currentUser();

  const change = async (u, body, what, btn) => {
    btn.disabled = true;
    try {
      const r = await patch(`/api/admin/users/${u.id}`, body);
      Object.assign(u, r);
      flash(`${u.username}: ${what}.`, 'success');
      draw();
    } catch (e) {
      flash(errorText(e), 'error');
      btn.disabled = false;
    }
  };

  const rowActions = (u) => {
    if (me && u.id === me.id) return el('span.hint', 'you');
    const admin = (u.roles || []).includes('ADMIN');
    const dis = el('button.small.secondary', { type: 'button', 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.username}` },
      u.disabled ? 'Enable' : 'Disable');
    dis.addEventListener('click', () => change(u, { disabled: !u.disabled }, u.disabled ? 'enabled' : 'disabled (sessions revoked)', dis));
    const role = el('button.small.secondary', { type: 'button', 'aria-label': `${admin ? 'Revoke admin from' : 'Make admin'} ${u.username}` },
      admin ? 'Revoke admin' : 'Make admin');
    role.addEventListener('click', () => change(u, { roles: admin ? ['USER'] : ['ADMIN', 'USER'] }, admin ? 'no longer admin' : 'now admin', role));
    return el('span.downloads', dis, role);
  };

  const draw = () => {
    setContent(out, table([
      { head: 'Id', cell: (u) => String(u.id) },
      { head: 'Username', cell: (u) => u.username },
      { head: 'Email', cell: (u) => u.email || '–' },
      { head: 'Name', cell: (u) => [u.first_name, u.last_name].filter(Boolean).join(' ') || '–' },
      { head: 'Roles', cell: (u) => (u.roles || []).join(', ') },
      { head: 'Status', cell: (u) => (u.disabled ? badge('DISABLED') : badge('OK')) },
      { head: 'Created', cell: (u) => fmtTime(u.created_at) },
      { head: 'Requests', cell: (u) => el('a', { href: '#/admin/requests?user_id=' + u.id }, 'requests') },
      { head: 'Details', cell: (u) => {
        if (me && u.id === me.id) return el('a', { href: '#/account' }, 'your account');
        const b = el('button.small.secondary', { type: 'button', 'aria-label': `Details of ${u.username}`,
          dataset: { details: u.username } }, 'Details');
        b.addEventListener('click', () => open(u));
        return b;
      } },
      { head: 'Actions', cell: rowActions },
    ], users, { cls: 'users', rowAttrs: (u) => ({ dataset: { id: String(u.id), username: u.username } }), empty: 'No users.' }));
    more.hidden = !next;
  };

  const load = async (after) => {
    try {
      const r = await get('/api/admin/users' + qs({ q: q || undefined, limit: PAGE, after }));
      users = after ? users.concat(r.items || []) : (r.items || []);
      next = r.next_cursor || null;
      draw();
      // #/admin/users?username=NAME opens that user's details
      const want = ctx.query.get('username');
      const hit = !after && want && users.find((u) => u.username === want);
      if (hit) await open(hit);
      else if (!after && want) flash(`No user named ${want}.`, 'error');
    } catch (e) {
      setContent(out, el('p.error', { role: 'alert' }, errorText(e)));
    }
  };
  more.addEventListener('click', () => load(next));
  await load();
}
