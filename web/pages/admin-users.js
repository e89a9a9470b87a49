// pages/admin-users.js — admin: accounts (id, username, email, roles,
// disabled), disable/enable, grant/revoke ADMIN, and a link to each user's
// work requests (the admin requests page filters by user id).
//
// Runs in: the browser. Called by: app.js (#/admin/users).
// Owns: nothing beyond its DOM.
//
// Calls GET /api/admin/users?limit=&after= (pages by id) and PATCH
// /api/admin/users/{id} {disabled | roles}. Disabling revokes the user's
// sessions on the server; an admin cannot disable or demote themselves
// from this page (the API would allow it; the page avoids the lock-out).

import { get, patch, qs } from '../api.js';
import * as session from '../session.js';
import { el, pageTitle, table, badge, fmtTime, errorText, flash, setContent } from '../ui.js';

const PAGE = 100;

export async function listPage(view) {
  const out = el('div#admin-users');
  const more = el('button.secondary', { type: 'button', hidden: true }, 'More users');
  view.append(pageTitle('Users'), out, more);
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
      { head: 'Actions', cell: rowActions },
    ], users, { cls: 'users', rowAttrs: (u) => ({ dataset: { id: String(u.id), username: u.username } }), empty: 'No users.' }));
    more.hidden = !next;
  };

  const load = async (after) => {
    try {
      const r = await get('/api/admin/users' + qs({ limit: PAGE, after }));
      users = after ? users.concat(r.items || []) : (r.items || []);
      next = r.next_cursor || null;
      draw();
    } catch (e) {
      setContent(out, el('p.error', { role: 'alert' }, errorText(e)));
    }
  };
  more.addEventListener('click', () => load(next));
  await load();
}
