// Pure helpers: building DOM nodes, decoding the token for display,
// formatting times, actors, values and changes.

// h builds an element. attrs: class, text, dataset, on<event> handlers,
// booleans (true sets an empty attribute, false/null/undefined skip), and
// any other attribute. Children are nodes or strings (never parsed as HTML).
export function h(tag, attrs, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// decodeToken returns a JWT's payload. For display only: the API verifies.
export function decodeToken(token) {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('not a JWT');
  let b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
  while (b64.length % 4) b64 += '=';
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const claims = JSON.parse(new TextDecoder().decode(bytes));
  if (!claims || typeof claims !== 'object') throw new Error('not a JWT');
  return claims;
}

export const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local time';

// utcOffset is the viewer's offset from UTC at t, e.g. "UTC+05:30", or
// "UTC" when there is none. Browsers may report a zone by an old name
// (Asia/Calcutta for Asia/Kolkata); the offset reads the same everywhere.
export function utcOffset(t = new Date()) {
  const m = -t.getTimezoneOffset();
  if (m === 0) return 'UTC';
  const a = Math.abs(m);
  const pad = (n) => String(n).padStart(2, '0');
  return `UTC${m < 0 ? '-' : '+'}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

// zoneLabel names the viewer's time zone for people: its UTC offset now
// and the zone as the browser reports it, e.g. "UTC+05:30 (Asia/Calcutta)".
export function zoneLabel(t = new Date()) {
  const offset = utcOffset(t);
  return timeZone === offset || timeZone === 'local time' ? offset : `${offset} (${timeZone})`;
}

// zoneName is the zone's long name in the viewer's language (e.g. "India
// Standard Time"), or "" when the browser has none.
export function zoneName(t = new Date()) {
  try {
    const part = new Intl.DateTimeFormat(undefined, { timeZoneName: 'long' }).formatToParts(t).find((p) => p.type === 'timeZoneName');
    return part ? part.value : '';
  } catch {
    return '';
  }
}

const localFmt = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric',
  hour: '2-digit', minute: '2-digit', second: '2-digit',
});
const shortFmt = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
});

const timeOpts = { hour: '2-digit', minute: '2-digit', second: '2-digit' };
const dateOpts = { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' };
const fmts = {
  local: { time: new Intl.DateTimeFormat(undefined, timeOpts), date: new Intl.DateTimeFormat(undefined, dateOpts) },
  utc: {
    time: new Intl.DateTimeFormat(undefined, { ...timeOpts, timeZone: 'UTC' }),
    date: new Intl.DateTimeFormat(undefined, { ...dateOpts, timeZone: 'UTC' }),
  },
};

// formatTime and formatDate split a time into its two table lines, in the
// viewer's zone or (zone 'utc') in UTC.
export function formatTime(t, zone = 'local') {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : fmts[zone].time.format(d);
}

export function formatDate(t, zone = 'local') {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? '' : fmts[zone].date.format(d);
}

// formatAgo says how long before now t was: "just now", "5 min ago",
// "3 h ago", "2 days ago"; '' for a time in the future or not a time.
export function formatAgo(t, now = Date.now()) {
  const ms = now - new Date(t).getTime();
  if (!Number.isFinite(ms) || ms < 0) return '';
  const min = Math.floor(ms / 60e3);
  if (min < 1) return 'just now';
  if (min < 60) return `${min} min ago`;
  const hours = Math.floor(min / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} days ago`;
}

// formatLocal shows a time in the viewer's time zone.
export function formatLocal(t) {
  const d = t instanceof Date ? t : new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : localFmt.format(d);
}

const zonedFmt = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short',
});

// formatZoned shows a time in the viewer's time zone, naming the zone: for
// a time read on its own, such as when a token expired.
export function formatZoned(t) {
  const d = t instanceof Date ? t : new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : zonedFmt.format(d);
}

export function formatShort(t) {
  const d = t instanceof Date ? t : new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : shortFmt.format(d);
}

// formatUTC shows the exact stored time (nanoseconds kept) in UTC.
export function formatUTC(s) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2}(?:\.\d+)?)Z$/.exec(String(s));
  if (m) return `${m[1]} ${m[2]} UTC`;
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? String(s) : d.toISOString().replace('T', ' ').replace('Z', ' UTC');
}

export function capitalize(s) {
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : s;
}

export const actorKinds = {
  user: 'User',
  access_token: 'Access token',
  system: 'System',
};

// humanize turns "tracking_plan" into "Tracking plan".
export function humanize(s) {
  return capitalize(String(s || '').replace(/_/g, ' '));
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// formatValue renders a changed value on one line.
export function formatValue(v) {
  if (v === undefined) return '—';
  if (v === null) return 'null';
  if (typeof v === 'string') return v === '' ? '""' : v;
  return JSON.stringify(v);
}

// formatBlock renders a value for the detail panel (objects indented).
export function formatBlock(v) {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  return JSON.stringify(v, null, 2);
}

// flattenChanges turns {"settings": {"old": {"a": 1}, "new": {"a": 2}}}
// into [{path: "settings.a", old: 1, new: 2}]: nested objects on both sides
// are compared key by key and only differing leaves are listed.
export function flattenChanges(changes) {
  const out = [];
  const walk = (path, hasOld, oldV, hasNew, newV) => {
    if (hasOld && hasNew && isPlainObject(oldV) && isPlainObject(newV)) {
      const keys = [...new Set([...Object.keys(oldV), ...Object.keys(newV)])].sort();
      for (const k of keys) {
        walk(`${path}.${k}`, k in oldV, oldV[k], k in newV, newV[k]);
      }
      return;
    }
    if (hasOld && hasNew && JSON.stringify(oldV) === JSON.stringify(newV)) return;
    out.push({ path, hasOld, old: oldV, hasNew, new: newV });
  };
  if (!isPlainObject(changes)) return out;
  for (const field of Object.keys(changes).sort()) {
    const c = changes[field];
    if (isPlainObject(c) && ('old' in c || 'new' in c)) {
      walk(field, 'old' in c, c.old, 'new' in c, c.new);
    } else {
      out.push({ path: field, hasOld: false, old: undefined, hasNew: true, new: c });
    }
  }
  return out;
}

// summarizeChanges gives the table's one-line summary of an event's changes.
export function summarizeChanges(changes) {
  const parts = flattenChanges(changes).map((c) => {
    if (!c.hasOld) return `${c.path}: set to ${formatValue(c.new)}`;
    if (!c.hasNew) return `${c.path}: removed (was ${formatValue(c.old)})`;
    return `${c.path}: ${formatValue(c.old)} → ${formatValue(c.new)}`;
  });
  return parts.join('; ');
}

export function plural(n, one, many) {
  return `${n.toLocaleString()} ${n === 1 ? one : many}`;
}
