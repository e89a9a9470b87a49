// app.js — start-up and the hash router of the modelhub web app.
//
// Runs in: the browser (ES module, loaded by index.html). Called by: the
// browser on load and on every hashchange.
// Owns: the route table, the current page's cleanup function (pages stop
// their pollers there), the navigation bar and the user box.
//
// Routes are `#/path/{param}?query`. A route names its page module under
// pages/ (loaded on first use with import()), what it needs (user, admin)
// and the function of the module that draws it. Pages export functions
// `(view, ctx) → cleanup?`; ctx = {params, query, user, navigate, href}.
// Guards: a route needing a user sends to #/login?next=<route>; a route
// needing ADMIN shows "not allowed" to others (the API checks too — the
// pages only hide what the API would refuse).

import * as session from './session.js';
import { el, setContent, flash, clearFlash, pruneFlash, pageTitle } from './ui.js';
import { track } from './api.js';

const ROUTES = [
  // pattern, module, export, needs
  ['/login', 'auth', 'loginPage', null],
  ['/signup', 'auth', 'signupPage', null],
  ['/forgot-password', 'account', 'forgotPage', null],
  ['/reset-password', 'account', 'resetPage', null],
  ['/account', 'account', 'accountPage', 'user'],
  ['/api', 'api-docs', 'apiPage', null],
  ['/models', 'models', 'listPage', null],
  ['/models/{id}', 'models', 'detailPage', null],
  ['/requests', 'requests', 'listPage', 'user'],
  ['/requests/{id}', 'requests', 'detailPage', 'user'],
  ['/admin/models', 'admin-models', 'listPage', 'admin'],
  ['/admin/models/new', 'admin-models', 'newPage', 'admin'],
  ['/admin/models/{id}', 'admin-models', 'editPage', 'admin'],
  ['/admin/requests', 'admin-requests', 'listPage', 'admin'],
  ['/admin/users', 'admin-users', 'listPage', 'admin'],
  ['/admin/stats', 'admin-stats', 'statsPage', 'admin'],
  ['/admin/instances', 'admin-instances', 'activePage', 'admin'],
  ['/admin/instances/finished', 'admin-instances', 'finishedPage', 'admin'],
  ['/admin/instances/{id}', 'admin-instances', 'detailPage', 'admin'],
  ['/admin/recommendations', 'admin-recommendations', 'listPage', 'admin'],
  ['/admin/nodes', 'admin-health', 'nodesPage', 'admin'],
  ['/admin/health', 'admin-health', 'healthPage', 'admin'],
];

const USER_NAV = [
  ['#/models', 'Models'],
  ['#/requests', 'My requests', 'user'],
  ['#/api', 'API'],
];
const ADMIN_NAV = [
  ['#/admin/models', 'Models'],
  ['#/admin/requests', 'Work requests'],
  ['#/admin/users', 'Users'],
  ['#/admin/stats', 'Stats'],
  ['#/admin/instances', 'Instances'],
  ['#/admin/recommendations', 'Recommendations'],
  ['#/admin/nodes', 'Nodes'],
  ['#/admin/health', 'Hub health'],
];

const DEFAULT_ROUTE = '/models';

let cleanup = null;
let seq = 0;
let firstRender = true;
let lastRoute = null;

/** Route path for a location hash: '#/a/b?x=1' → {path:'/a/b', query}. */
function parseHash(hash) {
  const h = (hash || '').replace(/^#/, '') || DEFAULT_ROUTE;
  const q = h.indexOf('?');
  const path = q < 0 ? h : h.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : h.slice(q + 1));
  return { path: path.startsWith('/') ? path : '/' + path, query, raw: h };
}

function match(path) {
  const parts = path.split('/').filter(Boolean);
  for (const r of ROUTES) {
    const pp = r[0].split('/').filter(Boolean);
    if (pp.length !== parts.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < pp.length && ok; i++) {
      if (pp[i].startsWith('{')) params[pp[i].slice(1, -1)] = decodeURIComponent(parts[i]);
      else ok = pp[i] === parts[i];
    }
    if (ok) return { route: r, params };
  }
  return null;
}

/** Go to a route ('/requests/4'); same route → re-render. */
export function navigate(route, opts = {}) {
  const target = '#' + route;
  if (location.hash === target) {
    render();
  } else if (opts.replace) {
    history.replaceState(null, '', target);
    render();
  } else {
    location.hash = target;
  }
}

/** A menu link; aria-current="page" on its own route and the routes below
 * it (#/requests lights up on #/requests/12). */
function navLink(href, text, current) {
  const here = current === href.slice(1) || current.startsWith(href.slice(1) + '/');
  return el('a', { href, 'aria-current': here ? 'page' : null }, text);
}

function drawChrome(current) {
  const user = session.currentUser();
  const nav = document.getElementById('nav');
  const items = USER_NAV.filter((n) => !n[2] || user).map((n) => navLink(n[0], n[1], current));
  const parts = [el('ul.nav-main', items.map((a) => el('li', a)))];
  if (user && session.isAdmin()) {
    parts.push(el('div.nav-admin#admin-nav', { role: 'group', 'aria-label': 'Admin' },
      el('span.nav-label', 'Admin'),
      el('ul', ADMIN_NAV.map((n) => el('li', navLink(n[0], n[1], current))))));
  }
  setContent(nav, parts);
  const box = document.getElementById('userbox');
  if (user) {
    setContent(box,
      el('a.username#current-user', { href: '#/account', title: user.guest ? 'Guest session: your account page'
        : `${user.email || ''} — your account page` }, user.username),
      session.isAdmin() ? el('span.badge.role', 'admin') : null,
      el('button.link#logout', { type: 'button', onclick: doLogout }, 'Log out'));
  } else {
    setContent(box,
      el('a#login-link', { href: '#/login' }, 'Log in'),
      el('a.button#signup-link', { href: '#/signup' }, 'Sign up'));
  }
}

async function doLogout() {
  await session.logout();
}

function notAllowed(view) {
  setContent(view, pageTitle('Not allowed'),
    el('p', 'This page is for administrators.'),
    el('p', el('a', { href: '#/models' }, 'Back to the models')));
}

function notFound(view, path) {
  setContent(view, pageTitle('Page not found'),
    el('p', `There is no page at ${path}.`),
    el('p', el('a', { href: '#/models' }, 'Back to the models')));
}

async function render() {
  const my = ++seq;
  const loc = parseHash(location.hash);
  const view = document.getElementById('view');
  if (cleanup) {
    try {
      cleanup();
    } catch (e) {
      console.error(e);
    }
    cleanup = null;
  }
  if (!firstRender && loc.raw !== lastRoute) pruneFlash();
  lastRoute = loc.raw;
  drawChrome(loc.path);
  const m = match(loc.path);
  if (!m) {
    notFound(view, loc.path);
    return;
  }
  const [, mod, fn, needs] = m.route;
  const user = session.currentUser();
  if (needs && !user) {
    navigate('/login?next=' + encodeURIComponent(loc.raw), { replace: true });
    return;
  }
  if (needs === 'admin' && !session.isAdmin()) {
    notAllowed(view);
    return;
  }
  view.setAttribute('aria-busy', 'true');
  try {
    // The loader shows while the page's module loads (first visit).
    document.body.dataset.routeLoading = '1';
    const page = await track(import(`./pages/${mod}.js`)).finally(() => {
      if (my === seq) delete document.body.dataset.routeLoading;
    });
    if (my !== seq) return;
    view.replaceChildren();
    const ctx = { params: m.params, query: loc.query, user, navigate, isCurrent: () => my === seq };
    const c = await page[fn](view, ctx);
    if (my !== seq) {
      if (typeof c === 'function') c();
      return;
    }
    cleanup = typeof c === 'function' ? c : null;
  } catch (e) {
    console.error(e);
    if (my === seq) setContent(view, pageTitle('Something went wrong'), el('p.error', String(e.message || e)));
  } finally {
    if (my === seq) view.removeAttribute('aria-busy');
  }
  if (my === seq && !firstRender) {
    const h = view.querySelector('h1');
    if (h && !view.contains(document.activeElement)) h.focus({ preventScroll: false });
  }
  firstRender = false;
}

function onSession({ reason, message }) {
  const loc = parseHash(location.hash);
  if (reason === 'expired') {
    if (message) {
      clearFlash();
      flash(message, 'error');
    }
    if (!['/login', '/signup', '/forgot-password', '/reset-password'].includes(loc.path)) {
      navigate('/login?next=' + encodeURIComponent(loc.raw), { replace: true });
      return;
    }
    drawChrome(loc.path);
  } else if (reason === 'logout' || reason === 'remote-logout') {
    clearFlash();
    if (message) flash(message, 'info');
    // Logged out from another tab: this tab's page is where to come back.
    const keep = reason === 'remote-logout' && loc.path !== '/login' && loc.path !== '/signup';
    navigate(keep ? '/login?next=' + encodeURIComponent(loc.raw) : '/login', { replace: true });
  } else if (reason === 'remote') {
    render();
  } else {
    drawChrome(loc.path);
  }
}

async function main() {
  const bar = document.querySelector('.topbar');
  const toggle = document.getElementById('menu-toggle');
  toggle.addEventListener('click', () => {
    const open = bar.classList.toggle('menu-open');
    toggle.setAttribute('aria-expanded', String(open));
  });
  // a chosen page closes the folded menu
  window.addEventListener('hashchange', () => {
    bar.classList.remove('menu-open');
    toggle.setAttribute('aria-expanded', 'false');
  });
  document.getElementById('skip-link').addEventListener('click', (ev) => {
    ev.preventDefault();
    document.getElementById('main').focus();
  });
  await session.load();
  session.start();
  session.subscribe(onSession);
  window.addEventListener('hashchange', () => render());
  await render();
  document.body.dataset.ready = '1';
}

main();
