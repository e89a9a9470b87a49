// session.js — who is logged in, and keeping that true.
//
// Runs in: the browser (ES module). Called by: app.js (start, listeners),
// pages/auth.js (login, signup, logout), pages/account.js (guests).
// Owns: the current user (from GET /api/auth/session or the login
// answer), the expiry timer, the activity listeners and a BroadcastChannel
// that tells other tabs about login/logout/refresh.
//
// DESIGN (the upstream "session refresh bug"): the old client computed the
// expiry from its own clock (session_start_time + max_age) and cleared the
// user name while the server still held a valid session (other tab
// refreshed it, clock skew, a refresh that raced). Here:
// - the deadline comes from the server's expires_at, read against the
//   server's clock (api.serverNow(), corrected from Date headers);
// - the session is refreshed (POST /api/auth/refresh) once half of the
//   idle window has passed, but only if the user did something (key,
//   pointer, wheel, touch) since the last refresh: polling views do not
//   keep an abandoned tab logged in for ever;
// - when the local deadline passes, the server is asked
//   (GET /api/auth/session) before anything is cleared: a refresh made by
//   another tab just moves the deadline, no false "Session expired";
// - the user is cleared only when the server says so (401 session_expired
//   on any call; a 401 unauthorized only if the hub is healthy, since the
//   API answers that when its database cannot look the session up), then
//   the app shows the login page with a message and, after login, the page
//   the user was on.
// - shortly before an idle expiry a banner offers "Stay signed in"
//   (timing adjustable, WCAG 2.2.1).

import { request, onSessionExpired, serverNow } from './api.js';

const TICK_MS = 1000;              // local check of the deadline; no network
const WARN_MS = 60000;             // warn this long before an idle expiry
const ACTIVITY_EVENTS = ['pointerdown', 'keydown', 'wheel', 'touchstart', 'mousemove'];

const state = {
  user: null,              // {id, username, email, roles, ...}
  roles: [],
  kind: null,              // USER, or ANON for a guest (user.guest; curl tokens are not used)
  expiresAt: 0,            // server ms
  absoluteExpiresAt: 0,    // server ms
  windowMs: 0,             // longest idle window seen (expires_at - now)
  lastActivity: Date.now(),
  lastRefresh: Date.now(),
  busy: false,             // a refresh or check is in flight
};

const listeners = new Set();
let timer = null;
let channel = null;

/** fn({user, reason, message}) on every change of user. reason:
 * login | logout | remote-logout (in another tab) | expired | loaded |
 * refreshed | remote. */
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function emit(reason, message) {
  for (const fn of listeners) {
    try {
      fn({ user: state.user, reason, message });
    } catch (e) {
      console.error(e);
    }
  }
}

export function currentUser() {
  return state.user;
}

export function isAdmin() {
  return state.roles.includes('ADMIN');
}

/** Seconds until the idle expiry (server clock), or null when logged out. */
export function secondsLeft() {
  if (!state.user) return null;
  return Math.max(0, Math.round((state.expiresAt - serverNow()) / 1000));
}

function setExpiry(expires, absolute) {
  const e = Date.parse(expires);
  const a = Date.parse(absolute);
  if (!Number.isNaN(e)) {
    state.expiresAt = e;
    state.windowMs = Math.max(state.windowMs, e - serverNow());
  }
  if (!Number.isNaN(a)) state.absoluteExpiresAt = a;
}

/* A hint in localStorage that this browser holds a session cookie (the
 * cookie itself is HttpOnly): without it the start-up skips GET
 * /api/auth/session, whose 401 for a visitor who never logged in would be
 * a console error on every anonymous page load. Set on every login, cleared
 * on every logout or expiry (all tabs share it). Without storage (private
 * mode) the session is always asked for, as before. */
const HINT = 'modelhub.session';

function hint(on) {
  try {
    if (on) localStorage.setItem(HINT, '1');
    else localStorage.removeItem(HINT);
  } catch (e) {
    /* no storage: load() always asks */
  }
}

function mayHaveSession() {
  try {
    return localStorage.getItem(HINT) === '1';
  } catch (e) {
    return true;
  }
}

function setUser(user, roles, kind, expires, absolute) {
  hint(!!user);
  state.user = user || null;
  state.roles = roles || (user && user.roles) || [];
  state.kind = kind || 'USER';
  state.windowMs = 0;
  state.lastRefresh = Date.now();
  setExpiry(expires, absolute);
}

function clear() {
  hint(false);
  state.user = null;
  state.roles = [];
  state.kind = null;
  state.expiresAt = 0;
  state.absoluteExpiresAt = 0;
  state.windowMs = 0;
  warn(null);
}

function broadcast(type) {
  if (channel) {
    try {
      channel.postMessage({ type });
    } catch (e) {
      /* another tab closed the channel: nothing to tell */
    }
  }
}

/** Whether the hub and its database answer. The API treats a request
 * whose session cannot be looked up (database down, cache miss) as carrying
 * no session (401 unauthorized): that is an outage, not a logout. */
async function hubHealthy() {
  try {
    const h = await request('GET', '/api/health', { noExpire: true });
    return !!h && (h.db === undefined || h.db === 'ok');
  } catch (e) {
    return false;
  }
}

/** GET /api/auth/session. Resolves to the session or null (not logged
 * in: 401 session_expired, or unauthorized while the hub is healthy).
 * Network errors and outages throw (the caller keeps its state). */
async function fetchSession() {
  try {
    const s = await request('GET', '/api/auth/session', { noExpire: true });
    if (!s.user && s.kind === 'ANON') {
      // a guest (browser) session, unlike a curl token, is a page login
      const g = await request('GET', '/api/auth/guest', { noExpire: true });
      if (g.guest) return Object.assign(s, { user: guestUser(g), roles: [] });
    }
    if (!s.user) return null; // an anonymous (API) session: not a page login
    return s;
  } catch (e) {
    if (e.status === 401 && (e.code === 'session_expired' || await hubHealthy())) return null;
    throw e;
  }
}

/** The pseudo-user of a guest session (pages show "Guest"). */
function guestUser(g) {
  return { id: 0, username: 'Guest', guest: true, roles: [], requests: g.requests || 0 };
}

export function isGuest() {
  return !!(state.user && state.user.guest);
}

/** Load the session at start-up (no message if there is none). A guest
 * session is refreshed on every start: it lives as long as its results
 * from the last use. */
export async function load() {
  try {
    const s = mayHaveSession() ? await fetchSession() : null;
    if (s) setUser(s.user, s.roles, s.kind, s.expires_at, s.absolute_expires_at);
    else clear();
    if (isGuest()) await refresh();
  } catch (e) {
    clear();
  }
  emit('loaded');
  return state.user;
}

/** "Use without an account": a guest session (cookie). Resolves to the
 * guest id, shown once to the person so they can come back elsewhere. */
export async function startGuest() {
  const r = await request('POST', '/api/auth/guest', { noExpire: true });
  setUser(guestUser({}), [], 'ANON', r.expires_at, r.expires_at);
  broadcast('login');
  emit('login');
  return r.guest_id;
}

/** Come back as the guest of guest id `id` (sets the cookie). */
export async function resumeGuest(id) {
  const r = await request('POST', '/api/auth/guest/resume', { json: { guest_id: id }, noExpire: true });
  setUser(guestUser({}), [], 'ANON', r.expires_at, r.expires_at);
  broadcast('login');
  emit('login');
}

/** Turn the guest into an account (fields as signup); keeps its requests. */
export async function claimGuest(fields) {
  const r = await request('POST', '/api/auth/guest/claim', { json: fields, noExpire: true });
  setUser(r.user, r.user && r.user.roles, r.kind, r.expires_at, r.absolute_expires_at);
  broadcast('login');
  emit('login');
  return r;
}

export async function login(username, password) {
  const r = await request('POST', '/api/auth/login', { json: { username, password }, noExpire: true });
  setUser(r.user, r.user && r.user.roles, r.kind, r.expires_at, r.absolute_expires_at);
  broadcast('login');
  emit('login');
  return r.user;
}

export async function signup(fields) {
  return request('POST', '/api/auth/signup', { json: fields, noExpire: true });
}

/** Log out. ended: the server has already ended the session (a deleted
 * account; its answer cleared the cookie), so no call that would only
 * come back 401. */
export async function logout({ ended = false } = {}) {
  try {
    if (!ended) await request('POST', '/api/auth/logout', { noExpire: true });
  } catch (e) {
    /* already gone on the server: logged out either way */
  }
  clear();
  dropDrafts();
  broadcast('logout');
  emit('logout', 'You are logged out.');
}

/** Form drafts (pages/models.js) are kept across an expired session, not
 * across a deliberate log out. */
function dropDrafts() {
  try {
    for (const k of Object.keys(sessionStorage)) if (k.startsWith('modelhub.draft.')) sessionStorage.removeItem(k);
  } catch (e) {
    /* no storage: nothing kept */
  }
}

/** The server said the session is gone (401 on some call). */
function expired(message) {
  const had = !!state.user;
  clear();
  emit('expired', had ? (message || 'Your session has expired. Please log in again.') : null);
}

/** Extend the idle expiry now (user activity or "Stay signed in"). */
export async function refresh() {
  if (!state.user || state.busy) return;
  state.busy = true;
  try {
    const r = await request('POST', isGuest() ? '/api/auth/guest/refresh' : '/api/auth/refresh',
      { noExpire: true });
    state.lastRefresh = Date.now();
    setExpiry(r.expires_at, r.absolute_expires_at);
    warn(null);
    broadcast('refresh');
  } catch (e) {
    if (e.status === 401) await check();
  } finally {
    state.busy = false;
  }
}

/** Ask the server whether the session still holds; update or expire. */
async function check() {
  let s;
  try {
    s = await fetchSession();
  } catch (e) {
    return; // server unreachable: keep the user, ask again next tick
  }
  if (!s) {
    expired();
    return;
  }
  setExpiry(s.expires_at, s.absolute_expires_at);
  if (s.user) {
    state.user = s.user;
    state.roles = s.roles || s.user.roles || [];
  }
}

async function tick() {
  if (!state.user || state.busy) return;
  const left = state.expiresAt - serverNow();
  if (left <= 0) {
    state.busy = true;
    try {
      await check();
    } finally {
      state.busy = false;
    }
    return;
  }
  const active = state.lastActivity > state.lastRefresh;
  const absLeft = state.absoluteExpiresAt ? state.absoluteExpiresAt - serverNow() : Infinity;
  // A refresh cannot pass the absolute expiry: do not bother once the idle
  // deadline already sits on it.
  const canExtend = absLeft - left > 1000;
  if (active && canExtend && left < state.windowMs / 2) {
    await refresh();
    return;
  }
  const warnAt = Math.min(WARN_MS, state.windowMs / 4);
  warn(left < warnAt ? Math.ceil(left / 1000) : null, canExtend);
}

/** Show or hide the expiry warning banner (#session-warning). */
function warn(seconds, canExtend = true) {
  const box = document.getElementById('session-warning');
  if (!box) return;
  if (seconds === null) {
    if (!box.hidden) {
      box.hidden = true;
      box.replaceChildren();
    }
    return;
  }
  const text = `Your session ends in ${seconds} s.`;
  if (box.hidden) {
    box.hidden = false;
    const span = document.createElement('span');
    span.className = 'warn-text';
    box.append(span);
    if (canExtend) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = 'Stay signed in';
      b.addEventListener('click', () => {
        state.lastActivity = Date.now();
        refresh();
      });
      box.append(' ', b);
    }
  }
  box.querySelector('.warn-text').textContent = text;
}

function onActivity() {
  state.lastActivity = Date.now();
}

/** Start timers and listeners; call once after load(). */
export function start() {
  onSessionExpired((err) => {
    if (!state.user) {
      emit('expired', null);
    } else if (err && err.code === 'session_expired') {
      expired();
    } else if (!state.busy) {
      // 401 unauthorized: the cookie is gone, or the hub could not look the
      // session up (outage). check() tells them apart before clearing.
      state.busy = true;
      check().finally(() => {
        state.busy = false;
      });
    }
  });
  for (const ev of ACTIVITY_EVENTS) window.addEventListener(ev, onActivity, { passive: true, capture: true });
  if (!timer) timer = setInterval(tick, TICK_MS);
  if ('BroadcastChannel' in window) {
    channel = new BroadcastChannel('modelhub-session');
    channel.onmessage = async (m) => {
      const type = m.data && m.data.type;
      if (type === 'logout') {
        if (state.user) {
          clear();
          dropDrafts();
          emit('remote-logout', 'You logged out in another tab.');
        }
      } else if (type === 'login' || type === 'refresh') {
        const before = state.user && state.user.id;
        const s = await fetchSession().catch(() => null);
        if (s) {
          if (before !== s.user.id) setUser(s.user, s.roles, s.kind, s.expires_at, s.absolute_expires_at);
          else setExpiry(s.expires_at, s.absolute_expires_at);
          if (before !== s.user.id) emit('remote');
        }
      }
    };
  }
}
