// The Audit Trail page: sign-in with a pasted token, the filtered table of
// events, the timeline, the event detail panel, CSV export and the
// forwarding settings. Every request goes to the read API with the token;
// the API decides what the token may see.

import { APIError, Client, publicJSON } from './api.js';
import * as chart from './chart.js';
import { initEditors } from './editors.js';
import { initForwarding } from './forwarding.js';
import { showRetention } from './retention.js';
import {
  actorKinds, capitalize, decodeToken, flattenChanges, formatBlock, formatAgo, formatDate, formatLocal, formatShort, formatTime, formatZoned,
  formatUTC, formatValue, h, humanize, plural, summarizeChanges, timeZone, utcOffset, zoneLabel, zoneName,
} from './format.js';
import { exportProven, loadProof } from './integrity.js';
import { HOUR, RANGES, apiParams, bounds, emptyState, filtersActive, rangeLabel, readState, toQuery } from './state.js';

const TOKEN_KEY = 'audittrail.token';
const ZONE_KEY = 'audittrail.zone'; // 'utc' or 'local': how the table shows times
const PAGE_SIZE = 50;
const CHART_SAMPLE = 1000;
const MIN_CHART_SPAN = 10 * 60e3;
const NEW_EVENTS_EVERY = 30e3; // how often the page looks for new events

const $ = (id) => document.getElementById(id);

// Phone-width screens start with the filters folded away; touch and
// phone-width screens are told to tap an event for its exact time.
const narrowScreen = matchMedia('(max-width: 760px)');
const touchScreen = matchMedia('(pointer: coarse), (max-width: 760px)');

function readZone() {
  try {
    return localStorage.getItem(ZONE_KEY) === 'utc' ? 'utc' : 'local';
  } catch {
    return 'local';
  }
}

const app = {
  zone: readZone(),
  token: '',
  claims: null,
  client: null,
  features: {},
  catalogue: [],
  state: readState(location.search),
  bounds: null,
  events: [],
  next: null,
  loading: false,
  seq: 0,
  facets: null,
  pendingEvents: null,
  searchUnsupported: false,
  lastFocus: null,
  proof: null, // the event panel's integrity section: {id, el}
};

// forwarding is the forwarding drawer (forwarding.js), bound in bind().
let forwarding = null;

// ---------------------------------------------------------------- helpers

function base() {
  return `/v1/workspaces/${encodeURIComponent(app.state.ws)}`;
}

function show(section) {
  $('boot').hidden = true;
  for (const id of ['signin', 'denied', 'trail']) $(id).hidden = id !== section;
  $('session').hidden = section === 'signin';
  $('open-forwarding').hidden = section !== 'trail';
  const f = app.features;
  $('open-editors').hidden = section !== 'trail' || !(f.tracking_plan || f.destination_filters || f.alerts);
}

function banner(el, text, kind = 'info') {
  el.hidden = !text;
  el.textContent = text || '';
  el.dataset.kind = kind;
}

function errorText(err) {
  if (err instanceof APIError) {
    return err.field && err.status === 400 ? `${capitalize(err.message)} (${err.field}).` : capitalize(err.message);
  }
  return 'Something went wrong. Try again.';
}

// guard runs an async handler and reports its failure on the page instead
// of leaving an unhandled rejection.
function guard(fn) {
  return (...args) => {
    Promise.resolve()
      .then(() => fn(...args))
      .catch((err) => {
        if (err && err.name === 'AbortError') return;
        if (!handleAuthError(err)) banner($('status'), errorText(err), 'error');
      });
  };
}

function writeURL(push) {
  const url = `${location.pathname}${toQuery(app.state)}`;
  if (url === `${location.pathname}${location.search}`) return;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

// --------------------------------------------------------------- sign-in

function signIn(raw) {
  const token = String(raw || '').trim().replace(/^Bearer\s+/i, '');
  if (!token) return 'Paste a token to sign in.';
  let claims;
  try {
    claims = decodeToken(token);
  } catch {
    return 'This does not look like a token. Paste the whole token: three parts separated by dots.';
  }
  if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now()) {
    return `This token expired on ${formatZoned(new Date(claims.exp * 1000))}. Ask for a new one.`;
  }
  const workspaces = claims.workspaces && typeof claims.workspaces === 'object' ? claims.workspaces : {};
  const ids = Object.keys(workspaces).sort();
  if (!ids.length) return 'This token gives access to no workspace.';
  app.token = token;
  app.claims = claims;
  app.client = new Client(token);
  sessionStorage.setItem(TOKEN_KEY, token);
  if (!ids.includes(app.state.ws)) {
    app.state.ws = ids.find((w) => workspaces[w] === 'owner') || ids[0];
  }
  $('workspace').replaceChildren(...ids.map((w) => h('option', {
    value: w, selected: w === app.state.ws, text: `${w} · ${workspaces[w]}`,
  })));
  showWorkspace();
  $('who').textContent = claims.email || claims.name || claims.sub || '';
  $('who').title = [claims.name, claims.email, claims.sub].filter(Boolean).join(' · ');
  return '';
}

// showWorkspace shows the chosen workspace over the picker: cut with an
// ellipsis when narrow, the whole text in its title.
function showWorkspace() {
  const sel = $('workspace');
  const opt = sel.options[sel.selectedIndex];
  const text = opt ? opt.textContent : '';
  $('workspace-value').textContent = text;
  $('workspace-value').title = text;
  sel.title = text;
}

function signOut(message = '') {
  sessionStorage.removeItem(TOKEN_KEY);
  app.token = '';
  app.claims = null;
  app.client = null;
  app.seq++;
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  show('signin');
  $('token-input').value = '';
  banner($('signin-error'), message, 'error');
  $('token-input').focus();
}

// handleAuthError shows what a 401, 403 or unknown workspace means.
// It returns true when it handled err.
function handleAuthError(err) {
  if (!(err instanceof APIError)) return false;
  if (err.status === 401) {
    signOut(`Your token was not accepted: ${err.message}. Paste a new one.`);
    return true;
  }
  if (err.status === 403 || (err.status === 404 && err.code === 'workspace_not_found')) {
    for (const d of document.querySelectorAll('dialog[open]')) d.close();
    const role = app.claims && app.claims.workspaces ? app.claims.workspaces[app.state.ws] : '';
    if (err.status === 403) {
      $('denied-title').textContent = capitalize(err.message || 'only workspace owners can view the audit trail');
      $('denied-detail').textContent = role
        ? `Your role in ${app.state.ws} is “${role}”. Ask an owner of the workspace for access, or choose another workspace.`
        : 'Ask an owner of the workspace for access.';
    } else {
      $('denied-title').textContent = 'This workspace is not available to your token';
      $('denied-detail').textContent = `Your token does not give access to ${app.state.ws}. Choose another workspace.`;
    }
    show('denied');
    return true;
  }
  return false;
}

// ------------------------------------------------------------ the filters

function fillStaticFilters() {
  $('f-range').replaceChildren(...RANGES.map((r) => h('option', { value: r.value, text: r.label })));
  const types = [...new Set(app.catalogue.map((e) => e.resource_type).filter(Boolean))].sort();
  $('f-resource-type').replaceChildren(
    h('option', { value: '', text: 'Any type' }),
    ...types.map((t) => h('option', { value: t, text: humanize(t) })),
  );
  $('f-q').closest('.field').hidden = app.searchUnsupported || !app.features.search;
}

function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const off = d.getTimezoneOffset() * 60e3;
  return new Date(d.getTime() - off).toISOString().slice(0, 19);
}

function fromLocalInput(v) {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

function syncForm() {
  const s = app.state;
  $('f-q').value = s.q;
  $('f-actor-type').value = s.actor_type;
  $('f-actor-id').value = s.actor_id;
  if (s.resource_type && ![...$('f-resource-type').options].some((o) => o.value === s.resource_type)) {
    $('f-resource-type').append(h('option', { value: s.resource_type, text: humanize(s.resource_type) }));
  }
  $('f-resource-type').value = s.resource_type;
  $('f-resource-id').value = s.resource_id;
  $('f-range').value = s.range;
  const custom = s.range === 'custom';
  $('f-custom').hidden = !custom;
  $('f-custom-until').hidden = !custom;
  $('f-since').value = toLocalInput(s.since);
  $('f-until').value = toLocalInput(s.until);
  const n = s.events.length;
  $('f-events-toggle').textContent = n === 0 ? 'All events' : n === 1 ? s.events[0] : `${n} events`;
  $('f-events-toggle').classList.toggle('active', n > 0);
}

function readForm() {
  const s = { ...app.state, events: [...app.state.events], id: '' };
  s.q = $('f-q').closest('.field').hidden ? '' : $('f-q').value.trim();
  s.actor_type = $('f-actor-type').value;
  s.actor_id = resolveActor($('f-actor-id').value.trim());
  s.resource_type = $('f-resource-type').value;
  s.resource_id = $('f-resource-id').value.trim();
  s.range = $('f-range').value;
  if (s.range === 'custom') {
    s.since = fromLocalInput($('f-since').value);
    s.until = fromLocalInput($('f-until').value);
    if (!s.since && !s.until) {
      // Start a custom range from what was shown.
      const b = app.bounds || bounds(app.state);
      s.since = b.start.toISOString();
    }
  } else {
    s.since = '';
    s.until = '';
  }
  return s;
}

// apply switches to state s (a new history entry when it differs).
function apply(s) {
  if (toQuery(s) === toQuery(app.state) && app.bounds) return;
  app.state = s;
  guard(loadView)({ push: true });
}

function renderChips() {
  const s = app.state;
  const chips = [];
  const chip = (label, remove) => chips.push(h('span', { class: 'chip' },
    h('span', { text: label }),
    h('button', {
      type: 'button', class: 'chip-x', 'aria-label': `Remove filter ${label}`, text: '×',
      onclick: () => { const n = { ...app.state, events: [...app.state.events], id: '' }; remove(n); apply(n); },
    })));
  for (const e of s.events) chip(`Event: ${e}`, (n) => { n.events = n.events.filter((x) => x !== e); });
  if (s.q) chip(`Search: ${s.q}`, (n) => { n.q = ''; });
  if (s.actor_type) chip(`Actor type: ${actorKinds[s.actor_type] || s.actor_type}`, (n) => { n.actor_type = ''; });
  if (s.actor_id) {
    const name = actorName(s.actor_id);
    chip(`Actor: ${name ? `${name} (${s.actor_id})` : s.actor_id}`, (n) => { n.actor_id = ''; });
  }
  if (s.resource_type) chip(`Resource type: ${humanize(s.resource_type)}`, (n) => { n.resource_type = ''; });
  if (s.resource_id) chip(`Resource: ${s.resource_id}`, (n) => { n.resource_id = ''; });
  if (s.range === 'custom') {
    const from = s.since ? formatShort(s.since) : 'the start';
    const to = s.until ? formatShort(s.until) : 'now';
    chip(`Time: ${from} – ${to}`, (n) => { n.range = ''; n.since = ''; n.until = ''; });
  } else if (s.range) {
    chip(`Time: ${rangeLabel(s.range)}`, (n) => { n.range = ''; });
  }
  $('chips').replaceChildren(...chips);
  $('chips').hidden = chips.length === 0;
  $('filters-count').hidden = chips.length === 0;
  $('filters-count').replaceChildren(String(chips.length), h('span', { class: 'visually-hidden', text: ' active' }));
}

// setFiltersOpen shows or folds away the filter form.
function setFiltersOpen(open) {
  if (!open) closeEventsMenu(false);
  $('filters').hidden = !open;
  $('filters-toggle').setAttribute('aria-expanded', String(open));
}

// The Events dropdown: every catalogue name grouped by product area, plus
// names seen in the facets (custom events), with counts when the facets
// endpoint is there.
function renderEventOptions() {
  const selected = new Set(app.pendingEvents || app.state.events);
  const counts = app.facets ? new Map(app.facets.events.map((e) => [e.name, e.count])) : null;
  const groups = new Map();
  const known = new Set();
  for (const e of app.catalogue) {
    if (!groups.has(e.category)) groups.set(e.category, []);
    groups.get(e.category).push(e.name);
    known.add(e.name);
  }
  const extra = [...new Set([...(counts ? counts.keys() : []), ...selected])].filter((n) => !known.has(n)).sort();
  if (extra.length) groups.set('Custom', extra);
  const find = $('f-events-search').value.trim().toLowerCase();
  const option = (name) => {
    const n = counts ? counts.get(name) || 0 : null;
    return h('label', { class: `option${n === 0 ? ' zero' : ''}` },
      h('input', {
        type: 'checkbox', value: name, checked: selected.has(name),
        onchange: (e) => {
          const set = new Set(app.pendingEvents || app.state.events);
          if (e.target.checked) set.add(name); else set.delete(name);
          app.pendingEvents = [...set];
        },
      }),
      h('span', { class: 'option-name', text: name }),
      n === null ? null : h('span', { class: 'count', text: n.toLocaleString() }));
  };
  const nodes = [];
  // With counts and no search, the names that occur come first, most frequent first.
  const top = counts && !find
    ? [...counts.entries()].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([name]) => name)
    : [];
  if (top.length) {
    nodes.push(h('fieldset', { class: 'menu-group' }, h('legend', { text: 'In the current view' }), top.map(option)));
  }
  const shown = new Set(top);
  for (const cat of [...groups.keys()].sort()) {
    const names = groups.get(cat).filter((n) => !shown.has(n) &&
      (!find || n.toLowerCase().includes(find) || cat.toLowerCase().includes(find)));
    if (!names.length) continue;
    nodes.push(h('fieldset', { class: 'menu-group' }, h('legend', { text: cat }), names.map(option)));
  }
  if (!nodes.length) nodes.push(h('p', { class: 'muted small menu-empty', text: 'No event name matches.' }));
  $('f-events-list').replaceChildren(...nodes);
  $('f-events-source').textContent = counts ? 'Counts with the other filters' : '';
}

function openEventsMenu() {
  app.pendingEvents = [...app.state.events];
  $('f-events-search').value = '';
  renderEventOptions();
  $('f-events-menu').hidden = false;
  $('f-events-toggle').setAttribute('aria-expanded', 'true');
  $('f-events-search').focus();
}

function closeEventsMenu(commit) {
  if ($('f-events-menu').hidden) return;
  $('f-events-menu').hidden = true;
  $('f-events-toggle').setAttribute('aria-expanded', 'false');
  const pending = app.pendingEvents;
  app.pendingEvents = null;
  if (commit && pending) {
    const s = { ...app.state, events: pending, id: '' };
    apply(s);
  }
}

// seenActors remembers every actor seen in this workspace (name, email,
// type), so that a name or email typed later is found even while a view
// loads; switching workspace forgets them.
const seenActors = { ws: '', byID: new Map() };

function remember(a) {
  if (!a || !a.id) return;
  if (seenActors.ws !== app.state.ws) {
    seenActors.ws = app.state.ws;
    seenActors.byID.clear();
  }
  const known = seenActors.byID.get(a.id) || {};
  seenActors.byID.set(a.id, { type: a.type || known.type, id: a.id, name: a.name || known.name, email: a.email || known.email });
}

// knownActors are the actors to suggest: the view's facets (with counts)
// or else its loaded events, with what was seen of them before, by id.
function knownActors() {
  for (const e of app.events) remember(e.actor);
  for (const a of (app.facets && app.facets.actors) || []) remember(a);
  const actors = new Map();
  const view = app.facets ? app.facets.actors : app.events.map((e) => e.actor).filter((a) => a && a.id);
  for (const a of view) if (!actors.has(a.id)) actors.set(a.id, { ...seenActors.byID.get(a.id), count: a.count });
  return actors;
}

// resolveActor turns what was typed in the actor field into an actor id:
// an id as it is, or the name or email of exactly one known actor.
function resolveActor(text) {
  knownActors(); // remembers the view's actors
  const actors = seenActors.ws === app.state.ws ? seenActors.byID : new Map();
  if (!text || actors.has(text)) return text;
  const t = text.toLowerCase();
  const hits = [...actors.values()].filter((a) => (a.name || '').toLowerCase() === t || (a.email || '').toLowerCase() === t);
  return hits.length === 1 ? hits[0].id : text;
}

// actorName is the name (or email) of a known actor, for chips.
function actorName(id) {
  knownActors();
  const a = seenActors.ws === app.state.ws ? seenActors.byID.get(id) : null;
  return a ? a.name || a.email || '' : '';
}

function fillActorSuggestions() {
  const actors = knownActors();
  // The label carries the name and email: typing either finds the actor.
  $('f-actors').replaceChildren(...[...actors.values()].slice(0, 200).map((a) => h('option', {
    value: a.id,
    label: [a.name, a.email, actorKinds[a.type] || a.type, a.count !== undefined ? plural(a.count, 'event', 'events') : ''].filter(Boolean).join(' · '),
  })));
  const resources = new Map();
  for (const e of app.events) if (e.resource && !resources.has(e.resource.id)) resources.set(e.resource.id, e.resource);
  $('f-resources').replaceChildren(...[...resources.values()].slice(0, 200).map((r) => h('option', {
    value: r.id, label: [r.name, humanize(r.type)].filter(Boolean).join(' · '),
  })));
}

// ----------------------------------------------------------- the table

function actorCell(a) {
  if (!a) return h('td', { class: 'c-actor', 'data-label': 'Actor', text: '—' });
  const kind = actorKinds[a.type] || humanize(a.type);
  return h('td', { class: 'c-actor', 'data-label': 'Actor' },
    h('div', { class: 'primary' },
      h('span', { class: `kind kind-${a.type}`, text: a.type === 'user' ? 'User' : a.type === 'access_token' ? 'Token' : kind }),
      h('span', { class: 'ellipsis', text: a.name || a.id })),
    h('div', { class: 'secondary ellipsis', text: a.email || a.id, title: [a.email, a.id].filter(Boolean).join(' · ') }));
}

// row renders the i-th loaded event. The first row of a day carries the
// date (a day separator); later rows of that day show only their time.
function row(ev, i) {
  const summary = summarizeChanges(ev.changes);
  const r = ev.resource || {};
  const prev = i > 0 ? app.events[i - 1] : null;
  const sameDay = prev && formatDate(prev.timestamp, app.zone) === formatDate(ev.timestamp, app.zone);
  const tr = h('tr', { dataset: { id: ev.id }, class: sameDay ? 'same-day' : 'day-start' },
    h('td', { class: 'c-time', 'data-label': 'Time' },
      h('time', { datetime: ev.timestamp, title: formatUTC(ev.timestamp) },
        h('span', { class: 'time-of-day', text: formatTime(ev.timestamp, app.zone) }),
        h('span', { class: 'date', text: formatDate(ev.timestamp, app.zone) }),
        h('span', { class: 'ago', text: formatAgo(ev.timestamp) }))),
    h('td', { class: 'c-event', 'data-label': 'Event' },
      h('button', {
        type: 'button', class: 'link open-event', text: ev.event,
        'aria-label': `${ev.event}, ${formatLocal(ev.timestamp)}: show details`,
        onclick: () => openDetail(ev.id),
      }),
      h('div', { class: 'secondary', text: ev.category || '' })),
    actorCell(ev.actor),
    h('td', { class: 'c-resource', 'data-label': 'Resource' },
      h('div', { class: 'primary ellipsis', text: r.name || r.id || '—' }),
      h('div', { class: 'secondary ellipsis', text: [humanize(r.type), r.id].filter(Boolean).join(' · '), title: [humanize(r.type), r.id].filter(Boolean).join(' · ') })),
    h('td', { class: 'c-change', 'data-label': 'Change' },
      h('div', { class: 'summary', title: summary || null, text: summary || '—' })));
  tr.addEventListener('click', (e) => {
    if (e.target.closest('button, a, input, select')) return;
    if (window.getSelection && String(window.getSelection())) return;
    openDetail(ev.id);
  });
  return tr;
}

function updateFooter() {
  const n = app.events.length;
  $('count').textContent = n
    ? `Showing ${plural(n, 'event', 'events')}${app.next ? '' : ' · that is all'}`
    : app.loading ? 'Loading events…' : '';
  $('events').closest('.table-card').setAttribute('aria-busy', String(app.loading));
  $('load-more').hidden = !app.next;
  $('load-more').disabled = app.loading;
  $('load-more').textContent = app.loading ? 'Loading…' : 'Load more';
  $('empty').hidden = n > 0 || app.loading;
  $('events').hidden = n === 0;
  // An empty view: a filter may hide events, or the workspace has none.
  const filtered = filtersActive(app.state);
  $('empty-text').textContent = filtered ? 'No events match these filters.' : 'No events yet in this workspace.';
  $('empty-clear').hidden = !filtered;
}

// searchError shows the server's message about the search under the box,
// or clears it ('').
function searchError(message) {
  $('f-q-error').textContent = message;
  $('f-q-error').hidden = !message;
  if (message) $('f-q').setAttribute('aria-invalid', 'true');
  else $('f-q').removeAttribute('aria-invalid');
}

// viewFailed reports a view that could not be loaded: the chart of the
// previous view is cleared (it no longer matches), and a failure that may
// pass (the network, a 5xx) offers Retry.
function viewFailed(err) {
  lastChart = null;
  $('chart').replaceChildren();
  $('chart-note').textContent = '';
  banner($('status'), errorText(err), 'error');
  if (!(err instanceof APIError) || err.status === 0 || err.status >= 500) { // 0: the network
    $('status').append(' ', h('button', {
      type: 'button', class: 'btn btn-small', id: 'retry', text: 'Retry',
      onclick: () => guard(loadView)({ push: false }),
    }));
  }
}

async function loadView({ push = false } = {}) {
  const seq = ++app.seq;
  closeEventsMenu(false);
  let warning = '';
  if (app.state.q && (app.searchUnsupported || !app.features.search)) {
    // A shared link with a search, on a server without search.
    app.state = { ...app.state, q: '' };
    warning = 'Search is not available on this server yet; showing the view without it.';
  }
  const s = app.state;
  writeURL(push);
  syncForm();
  renderChips();
  app.bounds = bounds(s);
  app.events = [];
  app.next = null;
  app.facets = null;
  app.loading = true;
  $('rows').replaceChildren();
  banner($('status'), '');
  banner($('export-status'), '');
  $('new-events').hidden = true;
  showRetention(app.client, s.ws, { sub: $('trail-sub'), notice: $('legal-hold'), current: () => app.state.ws });
  updateFooter();
  const params = apiParams(s, app.bounds);
  params.set('limit', String(PAGE_SIZE));
  let page;
  try {
    page = await app.client.json(`${base()}/audit-events?${params}`);
  } catch (err) {
    if (seq !== app.seq) return;
    app.loading = false;
    if (handleAuthError(err)) return;
    if (err instanceof APIError && err.status === 400 && err.field === 'q' && s.q && err.message !== 'unknown query parameter') {
      // A mistyped search: the server's message under the box; the box
      // and the search in the URL stay, to be corrected.
      show('trail');
      updateFooter();
      $('empty').hidden = true;
      searchError(err.message);
      return;
    }
    if (err instanceof APIError && err.status === 400 && err.field === 'q' && s.q) {
      // The server has no search yet: show the rest of the view without it.
      app.searchUnsupported = true;
      fillStaticFilters();
      app.state = { ...s, q: '' };
      await loadView({ push: false });
      banner($('status'), 'Search is not available on this server yet; showing the view without it.', 'warn');
      return;
    }
    show('trail');
    updateFooter();
    $('empty').hidden = true;
    viewFailed(err);
    return;
  }
  if (seq !== app.seq) return;
  show('trail');
  app.loading = false;
  searchError('');
  if (warning) banner($('status'), warning, 'warn');
  appendPage(page);
  fillActorSuggestions();
  if (s.id) openDetail(s.id);
  await Promise.all([loadChart(seq), loadFacets(seq)]);
}

function appendPage(page) {
  const data = (page && page.data) || [];
  const before = app.events.length;
  app.events.push(...data);
  app.next = page && page.next_cursor ? page.next_cursor : null;
  $('rows').append(...data.map((ev, i) => row(ev, before + i)));
  updateFooter();
}

async function loadMore() {
  if (!app.next || app.loading) return;
  const seq = app.seq;
  app.loading = true;
  updateFooter();
  const params = apiParams(app.state, app.bounds);
  params.set('limit', String(PAGE_SIZE));
  params.set('cursor', app.next);
  try {
    const page = await app.client.json(`${base()}/audit-events?${params}`);
    if (seq !== app.seq) return;
    app.loading = false;
    appendPage(page);
    fillActorSuggestions();
  } catch (err) {
    if (seq !== app.seq) return;
    app.loading = false;
    updateFooter();
    throw err;
  }
}

async function loadFacets(seq) {
  if (!app.features.facets) return;
  const params = apiParams(app.state, app.bounds, ['event', 'actor_type', 'actor_id']);
  try {
    const f = await app.client.json(`${base()}/audit-events/facets?${params}`);
    if (seq !== app.seq) return;
    app.facets = { events: (f && f.events) || [], actors: (f && f.actors) || [] };
  } catch (err) {
    if (seq !== app.seq) return;
    if (err instanceof APIError && err.status === 404) {
      app.features.facets = false; // not on this server: the catalogue serves
      return;
    }
    throw err;
  }
  fillActorSuggestions();
  if (!$('f-events-menu').hidden) renderEventOptions();
}

// ----------------------------------------------------------- the chart

let lastChart = null;

// chartSpan is the chart's [start, end): the chosen time range, and where
// the counted events begin and end (oldest and newest in ms, null when
// there are none) for the ends that are not chosen. A span that follows
// the events is at least MIN_CHART_SPAN.
function chartSpan(oldest, newest) {
  const b = app.bounds;
  const chosen = Boolean(app.state.range); // a preset or custom range: it ends at its end, or now
  let start = b.since ? b.start : oldest === null ? b.start : new Date(oldest);
  let end = chosen ? b.end : newest === null ? b.end : new Date(newest);
  if (!b.since && end - start < MIN_CHART_SPAN) {
    if (chosen) start = new Date(end.getTime() - MIN_CHART_SPAN);
    else {
      const mid = (start.getTime() + end.getTime()) / 2;
      start = new Date(mid - MIN_CHART_SPAN / 2);
      end = new Date(mid + MIN_CHART_SPAN / 2);
    }
  }
  return { start, end };
}

const STALE = Symbol('stale');

// chartFromEvents counts the newest events of the view (up to
// CHART_SAMPLE) into buckets, for servers without the timeline endpoint. With complete, it answers null when the view
// has more events than that.
async function chartFromEvents(seq, complete) {
  let data = app.events;
  let more = Boolean(app.next);
  if (more) {
    const params = apiParams(app.state, app.bounds);
    params.set('limit', String(CHART_SAMPLE));
    const page = await app.client.json(`${base()}/audit-events?${params}`);
    if (seq !== app.seq) return STALE;
    data = (page && page.data) || [];
    more = Boolean(page && page.next_cursor);
  }
  if (more && complete) return null;
  const times = data.map((e) => new Date(e.timestamp).getTime()).filter(Number.isFinite);
  const span = chartSpan(times.length ? Math.min(...times) : null, times.length ? Math.max(...times) + 1 : null);
  const interval = chart.chooseInterval(span.start, span.end);
  const buckets = chart.grid(span.start, span.end, interval);
  for (const t of times) chart.add(buckets, t);
  const note = more && data.length
    ? `Latest ${data.length.toLocaleString()} events, since ${formatShort(data[data.length - 1].timestamp)}`
    : '';
  return { buckets, interval, note };
}

// API_INTERVAL is the timeline endpoint's name for each chart interval.
const API_INTERVAL = { minute: 'minute', '5min': '5m', hour: 'hour', day: 'day' };

// chartZone is the zone the timeline counts in: the browser's, or UTC
// when the server does not know it.
let chartZone = timeZone;

// chartFromTimeline draws every bar from the server's counts (the timeline
// endpoint, computed in ClickHouse): the browser counts nothing. Bars
// finer than an hour are asked for over the chart's span only.
async function chartFromTimeline(seq) {
  const b = app.bounds;
  const fetchCounts = async (interval, within) => {
    const params = apiParams(app.state, b);
    if (within) {
      params.set('since', within.start.toISOString());
      params.set('until', within.end.toISOString());
    }
    params.set('interval', API_INTERVAL[interval]);
    params.set('tz', chartZone);
    let t;
    try {
      t = await app.client.json(`${base()}/audit-events/timeline?${params}`);
    } catch (err) {
      // A zone the server does not know (its list is the IANA database
      // it embeds): count in UTC rather than draw nothing.
      if (!(err instanceof APIError && err.status === 400 && err.field === 'tz') || chartZone === 'UTC') throw err;
      chartZone = 'UTC';
      params.set('tz', chartZone);
      t = await app.client.json(`${base()}/audit-events/timeline?${params}`);
    }
    return ((t && t.buckets) || []).filter((x) => x.count > 0);
  };
  let counts = null;
  let span;
  if (b.since) {
    span = chartSpan(null, null);
  } else {
    // No start chosen: the hourly counts tell where the events are.
    counts = await fetchCounts('hour');
    if (seq !== app.seq) return STALE;
    const starts = counts.map((x) => new Date(x.start).getTime()).filter(Number.isFinite);
    span = chartSpan(starts.length ? Math.min(...starts) : null, starts.length ? Math.max(...starts) + HOUR : null);
  }
  let interval = chart.chooseInterval(span.start, span.end);
  if (!b.since && chart.finerThanHour(interval)) {
    // The hours hold the events: their minutes tell where, for a chart
    // that spans the events rather than whole hours.
    counts = await fetchCounts('minute', span);
    if (seq !== app.seq) return STALE;
    const starts = counts.map((x) => new Date(x.start).getTime()).filter(Number.isFinite);
    span = chartSpan(starts.length ? Math.min(...starts) : null, starts.length ? Math.max(...starts) + 60e3 : null);
    interval = chart.chooseInterval(span.start, span.end);
    if (interval === 'minute') counts = counts.filter((x) => new Date(x.start) >= span.start);
    else counts = null;
  }
  if (!counts || (interval !== 'hour' && interval !== 'minute')) {
    counts = await fetchCounts(interval, chart.finerThanHour(interval) ? span : null);
    if (seq !== app.seq) return STALE;
  }
  const buckets = chart.grid(span.start, span.end, interval);
  for (const x of counts) chart.add(buckets, x.start, x.count);
  return { buckets, interval, note: '' };
}

async function loadChart(seq) {
  let result = null;
  if (app.features.timeline) {
    try {
      result = await chartFromTimeline(seq);
    } catch (err) {
      if (seq !== app.seq) return;
      if (!(err instanceof APIError && err.status === 404)) throw err;
      app.features.timeline = false;
    }
  }
  if (!result) result = await chartFromEvents(seq, false);
  if (result === STALE || seq !== app.seq) return;
  const { buckets, interval, note } = result;
  const total = buckets.reduce((n, x) => n + x.count, 0);
  $('chart-note').textContent = note ||
    `${plural(total, 'event', 'events')} · per ${chart.INTERVALS[interval].name} · ${utcOffset()}`;
  lastChart = { buckets, interval };
  drawChart();
}

function drawChart() {
  if (!lastChart) return;
  chart.render($('chart'), lastChart.buckets, {
    interval: lastChart.interval,
    onSelect: (b) => apply({ ...app.state, events: [...app.state.events], id: '', range: 'custom', since: b.start.toISOString(), until: b.end.toISOString() }),
  });
}

// ------------------------------------------------------- event details

function dl(pairs) {
  const rows = pairs.filter(([, v]) => v !== undefined && v !== null && v !== '');
  if (!rows.length) return null;
  return h('dl', { class: 'fields' }, rows.map(([k, v]) => [h('dt', { text: k }), h('dd', {}, v)]));
}

function section(title, ...content) {
  const body = content.flat().filter(Boolean);
  if (!body.length) return null;
  return h('section', { class: 'detail-section' }, h('h3', { text: title }), body);
}

// breakable returns a field path as text with a line-break opportunity
// after each separator (. _ - / [), so a long name wraps between its parts
// rather than inside a word.
function breakable(path) {
  const out = [];
  for (const part of path.split(/(?<=[._\-/[])/)) out.push(part, h('wbr'));
  out.pop();
  return out;
}

function diffTable(changes) {
  const rows = flattenChanges(changes);
  if (!rows.length) return null;
  return h('table', { class: 'diff' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Field' }), h('th', { scope: 'col', text: 'Before' }), h('th', { scope: 'col', text: 'After' }))),
    h('tbody', {}, rows.map((c) => h('tr', {},
      h('th', { scope: 'row' }, breakable(c.path)),
      h('td', { class: c.hasOld ? 'before' : 'unset' }, c.hasOld ? h('pre', { text: formatBlock(c.old) }) : 'not set'),
      h('td', { class: c.hasNew ? 'after' : 'unset' }, c.hasNew ? h('pre', { text: formatBlock(c.new) }) : 'removed')))));
}

// copyButton copies value to the clipboard and says so on the button for a
// moment.
function copyButton(label, value, id) {
  return h('button', {
    type: 'button', class: 'btn btn-small', id,
    onclick: async (e) => {
      const b = e.currentTarget;
      try {
        await navigator.clipboard.writeText(value);
        b.textContent = 'Copied';
      } catch {
        b.textContent = 'Could not copy: select the text instead';
      }
      setTimeout(() => { b.textContent = label; }, 2000);
    },
    text: label,
  });
}

function filterButton(label, patch) {
  return h('button', {
    type: 'button', class: 'btn btn-small',
    onclick: () => {
      closeDetail();
      apply({ ...app.state, events: [...app.state.events], id: '', ...patch });
    },
    text: label,
  });
}

const knownTop = new Set(['id', 'workspace_id', 'event', 'category', 'timestamp', 'received_at', 'actor', 'resource', 'changes', 'context', 'sender', 'properties']);

function renderDetail(ev) {
  $('detail-title').textContent = ev.event || 'Event';
  $('detail-category').textContent = ev.category || '';
  const a = ev.actor || {};
  const r = ev.resource || {};
  const c = ev.context || {};
  const sender = ev.sender || {};
  const code = (v) => h('code', { text: v });
  const when = (v) => v ? [h('span', { text: formatLocal(v) }), h('span', { class: 'muted small block', text: formatUTC(v) })] : null;
  const extra = Object.keys(ev).filter((k) => !knownTop.has(k)).sort();
  // Properties are an object; a stored value that is not readable JSON
  // comes as a string of its text and is shown as such.
  const propsRows = ev.properties && typeof ev.properties === 'object'
    ? Object.keys(ev.properties).sort().map((k) => [k, h('pre', { class: 'inline', text: formatBlock(ev.properties[k]) })])
    : typeof ev.properties === 'string' ? [['Stored text', h('pre', { class: 'inline', text: ev.properties })]] : [];
  $('detail-body').replaceChildren(...[
    section('Changes', diffTable(ev.changes) || h('p', { class: 'muted', text: 'This event records no field changes.' })),
    section('Event', dl([
      ['Time', when(ev.timestamp)],
      ['Received', when(ev.received_at)],
      ['Event', ev.event],
      ['Category', ev.category],
      ['Event id', code(ev.id)],
      ['Workspace', code(ev.workspace_id)],
    ]), h('div', { class: 'detail-actions' },
      copyButton('Copy event id', ev.id, 'copy-id'),
      copyButton('Copy link to this event', `${location.origin}${location.pathname}${toQuery({ ...app.state, id: ev.id })}`, 'copy-link'))),
    section('Actor', dl([
      ['Type', actorKinds[a.type] || a.type],
      ['Name', a.name],
      ['Email', a.email],
      ['Id', a.id ? code(a.id) : null],
    ]), a.id ? h('div', { class: 'detail-actions' }, filterButton('Show events by this actor', { actor_type: a.type || '', actor_id: a.id })) : null),
    section('Resource', dl([
      ['Type', r.type ? humanize(r.type) : null],
      ['Name', r.name],
      ['Id', r.id ? code(r.id) : null],
    ]), r.id ? h('div', { class: 'detail-actions' }, filterButton('Show events on this resource', { resource_type: r.type || '', resource_id: r.id })) : null),
    section('Context', dl([
      ['IP address', c.ip ? code(c.ip) : null],
      ['User agent', c.user_agent],
      ['Request id', c.request_id ? code(c.request_id) : null],
      ...Object.keys(c).filter((k) => !['ip', 'user_agent', 'request_id'].includes(k)).sort().map((k) => [k, formatValue(c[k])]),
    ])),
    // Who put the event on the trail: the producer's name (self-declared
    // at the gateway, configured in the emitter) and the gateway's
    // credential, which is the proof. Empty for events stored before.
    section('Sent by', dl([
      ['Producer', sender.producer],
      ['Credential', sender.credential_id ? code(sender.credential_id) : null],
      ...Object.keys(sender).filter((k) => !['producer', 'credential_id'].includes(k)).sort().map((k) => [k, formatValue(sender[k])]),
    ])),
    app.features.proofs ? section('Integrity', proofSection(ev.id)) : null,
    section('Properties', dl(propsRows)),
    section('Other fields', dl(extra.map((k) => [k, h('pre', { class: 'inline', text: formatBlock(ev[k]) })]))),
    h('details', { class: 'raw' }, h('summary', { text: 'Raw JSON' }), h('pre', { text: JSON.stringify(ev, null, 2) })),
  ].filter(Boolean));
}

// proofSection returns the event panel's integrity section for id, loaded
// once per opened event (the panel renders twice: from the table's copy,
// then from the server's).
function proofSection(id) {
  if (app.proof && app.proof.id === id) return app.proof.el;
  const el = h('div', { id: 'detail-integrity' });
  app.proof = { id, el };
  loadProof(el, {
    client: app.client, base: base(), id, download,
    isCurrent: () => app.proof && app.proof.el === el && $('detail').open,
    onAuthError: handleAuthError,
  });
  return el;
}

async function openDetail(id) {
  const dlg = $('detail');
  if (!dlg.open) app.lastFocus = document.activeElement;
  const known = app.events.find((e) => e.id === id);
  if (known) renderDetail(known);
  else {
    $('detail-title').textContent = 'Loading…';
    $('detail-category').textContent = '';
    $('detail-body').replaceChildren();
  }
  if (!dlg.open) dlg.showModal();
  $('detail-close').focus();
  if (app.state.id !== id) {
    app.state = { ...app.state, id };
    writeURL(false);
  }
  try {
    const ev = await app.client.json(`${base()}/audit-events/${encodeURIComponent(id)}`);
    // The row's event is drawn already: draw again only when the server's
    // differs, so the panel's buttons are not replaced under a click.
    const same = known && JSON.stringify(ev) === JSON.stringify(known);
    if (dlg.open && app.state.id === id && !same) renderDetail(ev);
  } catch (err) {
    if (handleAuthError(err)) return;
    if (!dlg.open || app.state.id !== id) return;
    if (!known) {
      $('detail-title').textContent = 'Event not found';
      $('detail-body').replaceChildren(h('p', {
        class: 'muted',
        text: err instanceof APIError && err.status === 404
          ? 'No event with this id in the retention window.'
          : errorText(err),
      }));
    }
  }
}

// closeDetail closes the panel and updates the URL at once (the dialog's
// close event comes a task later, after a quick next action could have
// recorded the old URL in the history).
function closeDetail() {
  const dlg = $('detail');
  if (dlg.open) dlg.close();
  onDetailClosed();
}

function onDetailClosed() {
  if (app.state.id) {
    app.state = { ...app.state, id: '' };
    writeURL(false);
  }
  if (app.lastFocus && document.contains(app.lastFocus)) app.lastFocus.focus();
  app.lastFocus = null;
  app.proof = null;
}

// -------------------------------------------------------------- export

function filenameOf(resp) {
  const cd = resp.headers.get('Content-Disposition') || '';
  const star = /filename\*\s*=\s*(?:UTF-8'')?([^;]+)/i.exec(cd);
  if (star) {
    try {
      return decodeURIComponent(star[1].trim().replace(/^"|"$/g, ''));
    } catch {
      // fall through to the plain filename
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(cd);
  if (plain) return plain[1].trim();
  const ext = (resp.headers.get('Content-Type') || '').includes('ndjson') ? 'ndjson' : 'csv';
  return `audit-trail-${app.state.ws}.${ext}`;
}

// download fetches path with the token and saves the answer under the
// server's file name, which it returns.
async function download(path) {
  const resp = await app.client.fetch(path);
  const blob = await resp.blob();
  const name = filenameOf(resp);
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60e3);
  return name;
}

async function exportCSV() {
  const btn = $('export');
  if (!app.features.csv) {
    banner($('export-status'), 'CSV export is not available on this server yet.', 'warn');
    return;
  }
  btn.disabled = true;
  btn.textContent = 'Exporting…';
  banner($('export-status'), '');
  try {
    const name = await download(`${base()}/audit-events.csv?${apiParams(app.state, app.bounds)}`);
    banner($('export-status'), `Downloaded ${name}.`, 'ok');
  } catch (err) {
    if (handleAuthError(err)) return;
    if (err instanceof APIError && err.status === 404) {
      app.features.csv = false;
      banner($('export-status'), 'CSV export is not available on this server yet.', 'warn');
    } else {
      banner($('export-status'), `Export failed: ${errorText(err)}`, 'error');
    }
  } finally {
    btn.disabled = false;
    btn.textContent = 'Export CSV';
  }
}

// exportNDJSON downloads the filtered view with its signed manifest (the
// rows of the latest checkpoint).
async function exportNDJSON() {
  const btn = $('export-proven');
  btn.disabled = true;
  banner($('export-status'), '');
  try {
    const text = await exportProven(download, `${base()}/audit-events.ndjson?${apiParams(app.state, app.bounds)}`);
    banner($('export-status'), text, 'ok');
  } catch (err) {
    if (handleAuthError(err)) return;
    banner($('export-status'), err instanceof APIError && err.code === 'no_checkpoint'
      ? 'Nothing to prove yet: this workspace’s log has no signed checkpoint. Try again in a minute.'
      : `Export failed: ${errorText(err)}`, err instanceof APIError && err.code === 'no_checkpoint' ? 'warn' : 'error');
  } finally {
    btn.disabled = false;
  }
}

// -------------------------------------------------------------- wiring

// renderTimeNote says which time zone the table shows and how to see an
// event's exact UTC time: hovering a time needs a mouse, opening the event
// works everywhere.
function renderTimeNote() {
  $('zone-utc').checked = app.zone === 'utc';
  const zone = app.zone === 'utc' ? 'Times in UTC' : `Times in ${zoneLabel()}`;
  $('tz-note').textContent = touchScreen.matches
    ? `${zone}. Tap an event for its exact UTC time.`
    : `${zone}; hover a time or open an event for the exact UTC time.`;
  $('tz-note').title = zoneName();
}

// setZone shows the table's times in the viewer's zone ('local') or in
// UTC, and remembers the choice.
function setZone(zone) {
  app.zone = zone;
  try { localStorage.setItem(ZONE_KEY, zone); } catch { /* private mode: for this page only */ }
  renderTimeNote();
  $('rows').replaceChildren(...app.events.map((ev, i) => row(ev, i)));
}

// checkNew looks for events newer than the view's newest one, with the
// view's filters, and offers them ("3 new events"). It runs every
// NEW_EVENTS_EVERY and when the page becomes visible again; not for a
// custom time range, which does not move with the clock.
async function checkNew() {
  if (!app.client || app.loading || $('trail').hidden || document.hidden || app.state.range === 'custom') return;
  const seq = app.seq;
  const params = apiParams(app.state, bounds(app.state));
  params.set('limit', '100');
  if (app.events.length) params.set('since', app.events[0].timestamp);
  const page = await app.client.json(`${base()}/audit-events?${params}`);
  if (seq !== app.seq) return;
  const known = new Set(app.events.slice(0, 200).map((e) => e.id));
  const fresh = ((page && page.data) || []).filter((e) => !known.has(e.id)).length;
  const more = Boolean(page && page.next_cursor);
  $('new-events').hidden = fresh === 0;
  $('new-events').textContent = fresh ? `${more ? '100+' : fresh} new ${fresh === 1 && !more ? 'event' : 'events'}: show` : '';
}

// refreshAgo brings the "… ago" of every row up to date.
function refreshAgo() {
  for (const el of document.querySelectorAll('#rows time')) {
    el.querySelector('.ago').textContent = formatAgo(el.getAttribute('datetime'));
  }
}

function startSession() {
  show('trail');
  renderTimeNote();
  guard(loadView)();
  guard(() => forwarding.refreshBadge())();
}

function bind() {
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const msg = signIn($('token-input').value);
    banner($('signin-error'), msg, 'error');
    if (!msg) {
      $('token-input').value = '';
      startSession();
    }
  });
  $('sign-out').addEventListener('click', () => signOut(''));
  $('workspace').addEventListener('change', () => {
    showWorkspace();
    app.state = emptyState($('workspace').value); // filters belong to the workspace left
    guard(loadView)({ push: true });
    guard(() => forwarding.refreshBadge())();
  });

  // The column headers stick under the top bar, whose height can change.
  new ResizeObserver(([entry]) => {
    document.documentElement.style.setProperty('--topbar-height', `${Math.round(entry.target.getBoundingClientRect().height)}px`);
  }).observe(document.querySelector('.topbar'));
  $('zone-utc').addEventListener('change', () => setZone($('zone-utc').checked ? 'utc' : 'local'));
  setInterval(refreshAgo, 60e3);
  setInterval(guard(checkNew), NEW_EVENTS_EVERY);
  document.addEventListener('visibilitychange', guard(checkNew));
  $('new-events').addEventListener('click', () => guard(loadView)({ push: false }));
  setFiltersOpen(!narrowScreen.matches);
  narrowScreen.addEventListener('change', () => setFiltersOpen(!narrowScreen.matches));
  touchScreen.addEventListener('change', renderTimeNote);
  $('filters-toggle').addEventListener('click', () => setFiltersOpen($('filters').hidden));
  $('filters').addEventListener('submit', (e) => {
    e.preventDefault();
    apply(readForm());
    // On a phone the panel covers the events: Apply closes it.
    if (narrowScreen.matches) {
      setFiltersOpen(false);
      $('filters-toggle').focus();
    }
  });
  for (const id of ['f-actor-type', 'f-resource-type']) $(id).addEventListener('change', () => apply(readForm()));
  for (const id of ['f-q', 'f-actor-id', 'f-resource-id', 'f-since', 'f-until']) $(id).addEventListener('change', () => apply(readForm()));
  $('f-range').addEventListener('change', () => {
    if ($('f-range').value === 'custom') {
      $('f-custom').hidden = false;
      $('f-custom-until').hidden = false;
      const b = app.bounds || bounds(app.state);
      if (!$('f-since').value) $('f-since').value = toLocalInput(b.start.toISOString());
      $('f-since').focus();
      return;
    }
    apply(readForm());
  });
  $('f-reset').addEventListener('click', () => apply(emptyState(app.state.ws)));
  $('empty-clear').addEventListener('click', () => apply(emptyState(app.state.ws)));

  $('f-events-toggle').addEventListener('click', () => {
    if ($('f-events-menu').hidden) openEventsMenu();
    else closeEventsMenu(true);
  });
  $('f-events-search').addEventListener('input', renderEventOptions);
  $('f-events-search').addEventListener('keydown', (e) => {
    if (e.key === 'Enter') e.preventDefault();
  });
  $('f-events-clear').addEventListener('click', () => {
    app.pendingEvents = [];
    renderEventOptions();
  });
  $('f-events-done').addEventListener('click', () => {
    closeEventsMenu(true);
    $('f-events-toggle').focus();
  });
  $('f-events-menu').addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      closeEventsMenu(false);
      $('f-events-toggle').focus();
    }
  });
  document.addEventListener('click', (e) => {
    if (!$('f-events-menu').hidden && !e.target.closest('.field-events')) closeEventsMenu(true);
  });

  $('load-more').addEventListener('click', guard(loadMore));
  if ('IntersectionObserver' in window) {
    new IntersectionObserver((entries) => {
      const scrolled = (document.scrollingElement || document.documentElement).scrollTop > 0;
      if (entries.some((x) => x.isIntersecting) && scrolled && app.next && !app.loading) guard(loadMore)();
    }, { rootMargin: '200px' }).observe($('sentinel'));
  }

  $('detail-close').addEventListener('click', closeDetail);
  $('detail').addEventListener('cancel', (e) => { // Esc
    e.preventDefault();
    closeDetail();
  });
  $('detail').addEventListener('close', onDetailClosed);
  $('detail').addEventListener('click', (e) => {
    if (e.target === $('detail')) closeDetail(); // the backdrop
  });

  $('export').addEventListener('click', guard(exportCSV));
  $('export-proven').addEventListener('click', guard(exportNDJSON));

  forwarding = initForwarding({ client: () => app.client, base, workspace: () => app.state.ws, features: () => app.features, onAuth: handleAuthError, errorText, banner, guard });
  initEditors({ client: () => app.client, base, features: () => app.features, catalogue: () => app.catalogue, onAuth: handleAuthError, errorText, guard });

  window.addEventListener('popstate', () => {
    if (!app.client) return;
    const s = readState(location.search);
    if ($('detail').open && !s.id) {
      app.lastFocus = null;
      $('detail').close();
    }
    app.state = { ...s, ws: s.ws || app.state.ws };
    if ($('workspace').value !== app.state.ws) {
      $('workspace').value = app.state.ws;
      showWorkspace();
    }
    guard(loadView)();
  });
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(drawChart, 120);
  });
}

async function boot() {
  // Views are rebuilt from the URL on back/forward; the browser restoring an
  // old scroll position over a new view only confuses.
  if ('scrollRestoration' in history) history.scrollRestoration = 'manual';
  bind();
  const [features, catalogue] = await Promise.all([
    publicJSON('/page/features.json').catch(() => ({})),
    publicJSON('/v1/catalogue').then((c) => (c && c.events) || []).catch(() => []),
  ]);
  app.features = features || {};
  $('export-proven').hidden = !app.features.ndjson;
  app.catalogue = catalogue;
  fillStaticFilters();
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    const msg = signIn(token);
    if (!msg) {
      startSession();
      return;
    }
    signOut(msg);
    return;
  }
  signOut('');
}

guard(boot)();
