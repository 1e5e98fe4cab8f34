// The "Rules" drawer: the tracking plan, destination filters and alert
// webhook editors in three tabs, with one Save for the tab shown and a
// question before closing over unsaved changes. app.js only wires it:
// initEditors(ctx) with the page's client, workspace and features.

import { APIError } from './api.js';
import { alertsEditor } from './alerts-editor.js';
import { filtersEditor } from './filters-editor.js';
import { planEditor } from './plan-editor.js';

const $ = (id) => document.getElementById(id);

const TABS = [
  ['plan', 'tracking_plan'],
  ['filters', 'destination_filters'],
  ['alerts', 'alerts'],
];

function capitalize(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

// initEditors binds the drawer. page: client() (the API client), base()
// (the workspace's API path), features(), catalogue() (the event
// catalogue), onAuth(err) (true when an authentication failure was
// handled), errorText(err), guard(fn) (reports a failed handler on the
// page).
export function initEditors(page) {
  const dlg = $('editors');
  const message = $('ed-message');
  let current = 'plan';
  let lastFocus = null;
  let pending = null; // what to do once the owner chose to discard

  const say = (text, kind) => {
    message.textContent = text || '';
    message.dataset.kind = kind || '';
  };
  const ctx = {
    ...page,
    fail(err, focus) {
      const field = err && err.field;
      const text = err instanceof APIError ? capitalize(err.message) : (err && err.message) || 'Something went wrong. Try again.';
      say(field ? `${text} (${field})` : text, 'error');
      if (field && focus) focus(field);
    },
  };
  // drafts is the body of a preview: the settings of every editor with
  // unsaved changes, read as typed (a local error names its field with
  // the body's prefix).
  ctx.drafts = () => {
    const body = {};
    for (const [t, key] of TABS) {
      if (t === 'alerts' || !available[t] || !editors[t].dirty()) continue;
      try {
        body[key] = editors[t].read();
      } catch (err) {
        throw { field: `${key}.${err.field}`, message: err.message };
      }
    }
    return body;
  };
  // focusField shows the tab a preview's refused field belongs to and
  // focuses the field.
  ctx.focusField = (field) => {
    const f = String(field || '');
    for (const [t, key] of TABS) {
      if (f === key || f.startsWith(`${key}.`)) {
        select(t, false, true);
        return editors[t].focus(f.slice(key.length + 1));
      }
    }
    return false;
  };
  const editors = {
    plan: planEditor($('ed-plan'), ctx),
    filters: filtersEditor($('ed-filters'), ctx),
    alerts: alertsEditor($('ed-alerts'), ctx),
  };
  const available = {};

  // select shows tab name; keep leaves the message as it is (a refusal
  // that moved the owner to its tab).
  function select(name, focusTab, keep) {
    current = name;
    for (const [t] of TABS) {
      const tab = $(`ed-tab-${t}`);
      const on = t === name;
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
      $(`ed-${t}`).hidden = !on;
      if (on && focusTab) tab.focus();
    }
    $('ed-save').disabled = !available[name];
    if (!keep) say('');
  }

  async function load() {
    const f = page.features();
    await Promise.all(TABS.map(async ([t, feature]) => {
      const ed = editors[t];
      available[t] = Boolean(f[feature]);
      if (!available[t]) {
        unavailable(t);
        return;
      }
      try {
        ed.fill(await page.client().json(`${page.base()}/${ed.kind}`));
      } catch (err) {
        available[t] = false;
        if (page.onAuth(err)) return; // signed out or denied: the drawer is closed
        if (err instanceof APIError && err.status === 404) unavailable(t);
        else unavailable(t, `This setting could not be loaded: ${ctx.errorText(err)} Close the drawer and open it again to retry.`);
      }
    }));
  }

  // unavailable replaces tab t's editor with a note: the server does not
  // have the setting, or it could not be loaded.
  function unavailable(t, text) {
    const p = document.createElement('p');
    p.className = 'banner';
    p.dataset.kind = text ? 'error' : 'info';
    p.textContent = text || 'This setting is not available on this server yet.';
    $(`ed-${t}`).replaceChildren(p);
  }

  async function save() {
    const ed = editors[current];
    say('');
    let body;
    try {
      body = ed.read();
    } catch (err) {
      ctx.fail(err, ed.focus);
      return;
    }
    $('ed-save').disabled = true;
    try {
      ed.fill(await page.client().json(`${page.base()}/${ed.kind}`, { method: 'PUT', body }));
      say('Saved. The change is recorded in the audit trail.', 'ok');
    } catch (err) {
      if (page.onAuth(err)) return;
      ctx.fail(err, ed.focus);
    } finally {
      $('ed-save').disabled = !available[current];
    }
  }

  function dirty() {
    return TABS.some(([t]) => available[t] && editors[t].dirty());
  }

  function close() {
    if (dirty()) {
      pending = () => dlg.close();
      $('ed-discard').hidden = false;
      $('ed-discard-no').focus();
      return;
    }
    dlg.close();
  }

  async function open() {
    lastFocus = document.activeElement;
    say('');
    $('ed-discard').hidden = true;
    // Fresh panels for this workspace: an earlier one may say unavailable.
    editors.plan = planEditor($('ed-plan'), ctx);
    editors.filters = filtersEditor($('ed-filters'), ctx);
    editors.alerts = alertsEditor($('ed-alerts'), ctx);
    select('plan');
    dlg.showModal();
    $('ed-tab-plan').focus();
    await load();
    select(current);
  }

  $('open-editors').addEventListener('click', page.guard(open));
  $('ed-close').addEventListener('click', close);
  $('ed-save').addEventListener('click', page.guard(save));
  dlg.addEventListener('cancel', (e) => { // Esc
    e.preventDefault();
    close();
  });
  dlg.addEventListener('click', (e) => {
    if (e.target === dlg) close(); // the backdrop
  });
  dlg.addEventListener('close', () => {
    if (lastFocus && document.contains(lastFocus)) lastFocus.focus();
    lastFocus = null;
  });
  for (const form of dlg.querySelectorAll('form')) form.addEventListener('submit', (e) => e.preventDefault());
  $('ed-discard-yes').addEventListener('click', () => {
    $('ed-discard').hidden = true;
    const p = pending;
    pending = null;
    if (p) p();
  });
  $('ed-discard-no').addEventListener('click', () => {
    $('ed-discard').hidden = true;
    pending = null;
    $(`ed-tab-${current}`).focus();
  });
  const tabs = TABS.map(([t]) => t);
  for (const t of tabs) {
    const tab = $(`ed-tab-${t}`);
    tab.addEventListener('click', () => select(t));
    tab.addEventListener('keydown', (e) => {
      const i = tabs.indexOf(t);
      const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
      if (to === undefined) return;
      e.preventDefault();
      select(tabs[(to + tabs.length) % tabs.length], true);
    });
  }
}
