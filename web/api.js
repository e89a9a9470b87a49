// api.js — every call the pages make to /api goes through here.
//
// Runs in: the browser (ES module). Called by: session.js and pages/*.js.
// Owns: the count of calls in flight (drives the global loader in
// index.html), the handler called when the server says the session is gone.
//
// Rules it enforces so pages need not think about them:
// - same-origin cookie auth (modelhub_session, HttpOnly: never visible here);
// - header `X-Requested-With: modelhub` on every call (the API's CSRF rule
//   for cookie-authenticated state changes; harmless on GETs);
// - errors come back as ApiError {status, code, message, fields,
//   retryAfter (seconds, from Retry-After)} whatever
//   the server (or nginx, or the network) answered;
// - 401 session_expired (or 401 while we believed we were logged in)
//   calls the expiry handler once per call, so the user is cleared and sent
//   to the login page (seed: "ensure logout on session expiry").

export class ApiError extends Error {
  constructor(status, code, message, fields) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || 'http_' + status;
    this.fields = fields || {};
  }
}

let inflight = 0;
let loaderTimer = null;
let expiredHandler = null;
let serverSkewMs = 0; // server clock minus browser clock, from Date headers

// Delay before the loader shows, so sub-frame calls do not flash it.
const LOADER_DELAY_MS = 120;

function loaderUpdate() {
  const el = document.getElementById('loader');
  document.body.dataset.apiInflight = String(inflight);
  if (!el) return;
  if (inflight > 0) {
    el.setAttribute('aria-busy', 'true');
    if (!loaderTimer && !el.classList.contains('active')) {
      loaderTimer = setTimeout(() => {
        loaderTimer = null;
        if (inflight > 0) {
          el.classList.add('active');
          el.hidden = false;
        }
      }, LOADER_DELAY_MS);
    }
  } else {
    if (loaderTimer) {
      clearTimeout(loaderTimer);
      loaderTimer = null;
    }
    el.classList.remove('active');
    el.hidden = true;
    el.setAttribute('aria-busy', 'false');
  }
}

/** Called with the ApiError when the server says the session is gone. */
export function onSessionExpired(fn) {
  expiredHandler = fn;
}

/** Server time now (ms since epoch), corrected by the last Date header. */
export function serverNow() {
  return Date.now() + serverSkewMs;
}

function noteDate(res) {
  const d = res.headers.get('Date');
  if (!d) return;
  const t = Date.parse(d);
  // Date has 1 s resolution: only move the estimate for real differences.
  if (!Number.isNaN(t) && Math.abs(t - Date.now() - serverSkewMs) > 1500) {
    serverSkewMs = t - Date.now();
  }
}

async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    body = null;
  }
  const e = body && body.error ? body.error : {};
  const err = new ApiError(res.status, e.code, e.message || res.statusText, e.fields);
  const ra = Number(res.headers.get('Retry-After'));
  if (ra > 0) err.retryAfter = ra; // seconds (429, 503)
  return err;
}

/**
 * request(method, path, opts) → parsed JSON (or text for non-JSON answers,
 * or null for 204). opts: json (object body), body (raw body: string,
 * Blob, FormData), contentType, headers, noExpire (do not run the expiry
 * handler on 401: used by session probes), raw (return the Response).
 */
export async function request(method, path, opts = {}) {
  const headers = Object.assign({ 'X-Requested-With': 'modelhub', Accept: 'application/json' },
    opts.headers || {});
  let body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['Content-Type'] = 'application/json';
  } else if (opts.body !== undefined) {
    body = opts.body;
    if (opts.contentType) headers['Content-Type'] = opts.contentType;
  }
  inflight++;
  loaderUpdate();
  let res;
  try {
    try {
      res = await fetch(path, { method, headers, body, credentials: 'same-origin', cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, 'network_error', 'The server could not be reached. Check your connection and try again.');
    }
    noteDate(res);
    if (!res.ok) {
      const err = await errorOf(res);
      if (res.status === 401 && !opts.noExpire && expiredHandler &&
          (err.code === 'session_expired' || err.code === 'unauthorized')) {
        expiredHandler(err);
      }
      throw err;
    }
    if (opts.raw) return res;
    if (res.status === 204) return null;
    const ct = res.headers.get('Content-Type') || '';
    if (ct.includes('json')) return await res.json();
    return await res.text();
  } finally {
    inflight--;
    loaderUpdate();
  }
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, json, opts = {}) => request('POST', path, Object.assign({ json }, opts));
export const patch = (path, json, opts = {}) => request('PATCH', path, Object.assign({ json }, opts));
export const del = (path, opts) => request('DELETE', path, opts);

/** Query string from an object, skipping empty values. */
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

/** Count a promise (a page module loading) as a call in flight, so the
 * global loader shows for it too. */
export function track(promise) {
  inflight++;
  loaderUpdate();
  return Promise.resolve(promise).finally(() => {
    inflight--;
    loaderUpdate();
  });
}

/** Number of API calls in flight (tests and the loader read it). */
export function inflightCount() {
  return inflight;
}
