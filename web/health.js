// health.js — placeholder status probe for index.html: GET /api/health and
// show status and version. Replaced by the real pages in the UI issue.
const show = (id, text) => { document.getElementById(id).textContent = text; };

async function probe() {
  try {
    const r = await fetch('/api/health', { headers: { Accept: 'application/json' } });
    const body = await r.json().catch(() => ({}));
    show('status', r.ok ? (body.status || 'ok') : `unavailable (HTTP ${r.status})`);
    show('version', body.version || '–');
    const db = body.database ?? body.db;
    show('database', db === undefined ? '–' : (typeof db === 'object' ? JSON.stringify(db) : String(db)));
  } catch (e) {
    show('status', 'unreachable');
  }
}

probe();
