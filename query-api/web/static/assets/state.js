// The view's state (workspace, filters, open event) and its query string:
// the URL always reflects the filters, so a view can be shared and reloaded.

export const DAY = 86400e3;
export const HOUR = 3600e3;
export const WINDOW_DAYS = 90;

export const RANGES = [
  { value: '1h', label: 'Last hour', ms: HOUR },
  { value: '24h', label: 'Last 24 hours', ms: DAY },
  { value: '7d', label: 'Last 7 days', ms: 7 * DAY },
  { value: '30d', label: 'Last 30 days', ms: 30 * DAY },
  { value: '', label: `Last ${WINDOW_DAYS} days`, ms: WINDOW_DAYS * DAY },
  { value: 'custom', label: 'Custom range' },
];

// Single-valued filters passed to the API unchanged.
export const FIELDS = ['q', 'actor_type', 'actor_id', 'resource_type', 'resource_id'];

export function emptyState(ws = '') {
  const s = { ws, events: [], range: '', since: '', until: '', id: '' };
  for (const f of FIELDS) s[f] = '';
  return s;
}

// filtersActive reports whether s narrows the workspace's trail: events,
// any single-valued filter, or a time range other than the whole window.
export function filtersActive(s) {
  return s.events.length > 0 || FIELDS.some((f) => s[f]) || s.range !== '';
}

function validTime(s) {
  return s && !Number.isNaN(new Date(s).getTime());
}

export function readState(search) {
  const p = new URLSearchParams(search);
  const s = emptyState(p.get('ws') || '');
  s.events = [...new Set(p.getAll('event').filter(Boolean))];
  for (const f of FIELDS) s[f] = p.get(f) || '';
  s.id = p.get('id') || '';
  s.since = validTime(p.get('since')) ? p.get('since') : '';
  s.until = validTime(p.get('until')) ? p.get('until') : '';
  s.range = s.since || s.until ? 'custom' : p.get('range') || '';
  if (!RANGES.some((r) => r.value === s.range)) s.range = '';
  if (s.range === 'custom' && !s.since && !s.until) s.range = '';
  return s;
}

export function toQuery(s, { withID = true } = {}) {
  const p = new URLSearchParams();
  if (s.ws) p.set('ws', s.ws);
  for (const e of s.events) p.append('event', e);
  for (const f of FIELDS) if (s[f]) p.set(f, s[f]);
  if (s.range === 'custom') {
    if (s.since) p.set('since', s.since);
    if (s.until) p.set('until', s.until);
  } else if (s.range) {
    p.set('range', s.range);
  }
  if (withID && s.id) p.set('id', s.id);
  const q = p.toString();
  return q ? `?${q}` : '';
}

// bounds resolves the time range at now: since/until for the API (null =
// open) and start/end for the chart (clamped to the retention window).
export function bounds(s, now = Date.now()) {
  const windowStart = new Date(now - WINDOW_DAYS * DAY);
  let since = null;
  let until = null;
  if (s.range === 'custom') {
    since = s.since ? new Date(s.since) : null;
    until = s.until ? new Date(s.until) : null;
  } else if (s.range) {
    since = new Date(now - RANGES.find((r) => r.value === s.range).ms);
  }
  const start = since && since > windowStart ? since : windowStart;
  let end = until && until.getTime() < now ? until : new Date(now);
  if (end <= start) end = new Date(start.getTime() + HOUR);
  return { since, until, start, end };
}

// apiParams are the list endpoint's filters for s within b; omit names
// filters to leave out (the facets leave out their own dimension).
export function apiParams(s, b, omit = []) {
  const p = new URLSearchParams();
  if (!omit.includes('event')) for (const e of s.events) p.append('event', e);
  for (const f of FIELDS) if (s[f] && !omit.includes(f)) p.set(f, s[f]);
  if (b.since) p.set('since', b.since.toISOString());
  if (b.until) p.set('until', b.until.toISOString());
  return p;
}

export function rangeLabel(value) {
  const r = RANGES.find((x) => x.value === value);
  return r ? r.label : value;
}
