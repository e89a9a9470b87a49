// health.js — footer status: GET /api/health once at load and every minute,
// showing the API status and the release version (seed: release).
//
// Runs in: the browser (ES module, loaded by index.html). Called by:
// index.html (self-starting) and pages/admin-health.js (probe()).
// Owns: the footer's #version and #api-status texts.
// Uses plain fetch, not api.js: the footer probe is not a user action, so
// it does not drive the global loader.

const PERIOD_MS = 60000;

function show(id, text) {
  const el = document.getElementById(id);
  if (el) el.textContent = text;
}

export async function probe() {
  try {
    const r = await fetch('/api/health', { headers: { Accept: 'application/json' }, cache: 'no-store' });
    const body = await r.json().catch(() => ({}));
    show('api-status', r.ok ? (body.status || 'ok') : `unavailable (HTTP ${r.status})`);
    if (body.version) show('version', body.version);
    return body;
  } catch (e) {
    show('api-status', 'unreachable');
    return null;
  }
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', () => probe());
} else {
  probe();
}
setInterval(probe, PERIOD_MS);
