// The forwarding drawer: the saved target (a card with its name, URL and
// whether a write key is set), on/off, the target's fields, "hard failures
// only", Send a test event with its outcome in words, and the header
// button's On/Off badge. app.js only wires it: initForwarding(ctx).

import { APIError } from './api.js';
import { renderTarget, testOutcome } from './outcome.js';
import { initTargets, settingsBody } from './targets.js';

const $ = (id) => document.getElementById(id);

// initForwarding binds the drawer. ctx: client() (the API client), base()
// (the workspace's API path), workspace() (its id), features(), onAuth(err)
// (true when an authentication failure was handled), errorText(err),
// banner(el, text, kind), guard(fn). It returns refreshBadge(), which
// reads the settings again for the badge (at sign-in and on a change of
// workspace).
export function initForwarding(ctx) {
  const state = { forwarding: null, lastFocus: null };
  const targets = initTargets(ctx, {
    current: () => state.forwarding || {},
    dirty: () => fwdDirty(),
    async put(body) {
      fillForwarding(await ctx.client().json(`${ctx.base()}/forwarding`, { method: 'PUT', body }));
    },
  });

  function setBadge() {
    const badge = $('forwarding-badge');
    const f = state.forwarding;
    badge.hidden = !f;
    if (f) {
      badge.textContent = f.enabled ? 'On' : 'Off';
      badge.dataset.on = String(Boolean(f.enabled));
    }
  }

  function fwdUnavailable() {
    state.forwarding = null;
    setBadge();
    $('fwd-unavailable').hidden = false;
    $('fwd-test-hint').hidden = true;
    $('fwd-fields').disabled = true;
    $('fwd-save').disabled = true;
    $('fwd-test').disabled = true;
    targets.render(null);
  }

  function fillForwarding(f) {
    state.forwarding = f || { enabled: false, target: {}, hard_failures_only: false };
    $('fwd-discard').hidden = true;
    const t = state.forwarding.target || {};
    $('fwd-unavailable').hidden = true;
    $('fwd-fields').disabled = false;
    $('fwd-save').disabled = false;
    $('fwd-test').disabled = !ctx.features().forwarding_test;
    $('fwd-test-hint').hidden = Boolean(ctx.features().forwarding_test);
    $('fwd-enabled').checked = Boolean(state.forwarding.enabled);
    $('fwd-url').value = t.url || '';
    $('fwd-name').value = t.name || '';
    $('fwd-key').value = '';
    $('fwd-key').placeholder = t.write_key ? t.write_key : 'Not set';
    $('fwd-key-hint').textContent = t.write_key
      ? `A write key is set (${t.write_key}). Leave this empty to keep it; a new target URL needs the key again.`
      : 'The write key of the target source.';
    $('fwd-hard').checked = Boolean(state.forwarding.hard_failures_only);
    renderTarget($('fwd-target'), $('fwd-target-fields'), state.forwarding);
    targets.render(state.forwarding);
    setBadge();
  }

  async function loadForwarding() {
    if (!ctx.features().forwarding) {
      fwdUnavailable();
      return;
    }
    try {
      fillForwarding(await ctx.client().json(`${ctx.base()}/forwarding`));
    } catch (err) {
      if (err instanceof APIError && err.status === 404) {
        fwdUnavailable();
        return;
      }
      throw err;
    }
  }

  function fwdMessage(text, error) {
    ctx.banner($('fwd-error'), error ? text : '', 'error');
    ctx.banner($('fwd-message'), error ? '' : text, 'ok');
  }

  async function saveForwarding() {
    fwdMessage('');
    const body = settingsBody(state.forwarding || {}, {
      enabled: $('fwd-enabled').checked,
      target: { url: $('fwd-url').value.trim() },
      hard_failures_only: $('fwd-hard').checked,
    }); // the saved targets stay as they are
    const key = $('fwd-key').value;
    if (key) body.target.write_key = key;
    const name = $('fwd-name').value.trim();
    if (name) body.target.name = name; // omitted: no name
    $('fwd-save').disabled = true;
    try {
      const saved = await ctx.client().json(`${ctx.base()}/forwarding`, { method: 'PUT', body });
      if (saved && typeof saved === 'object' && 'enabled' in saved) fillForwarding(saved);
      else await loadForwarding();
      fwdMessage(state.forwarding && state.forwarding.enabled ? 'Saved. Forwarding is on.' : 'Saved. Forwarding is off.');
    } catch (err) {
      if (ctx.onAuth(err)) return;
      if (err instanceof APIError && err.status === 404) {
        fwdUnavailable();
        return;
      }
      fwdMessage(ctx.errorText(err), true);
      if (err instanceof APIError && err.field) {
        const el = { 'target.url': 'fwd-url', url: 'fwd-url', 'target.write_key': 'fwd-key', write_key: 'fwd-key', 'target.name': 'fwd-name' }[err.field];
        if (el) $(el).focus();
      }
    } finally {
      $('fwd-save').disabled = !state.forwarding;
    }
  }

  async function sendTest() {
    fwdMessage('');
    ctx.banner($('fwd-outcome'), '');
    $('fwd-test').disabled = true;
    $('fwd-test').textContent = 'Sending…';
    try {
      const r = testOutcome(await ctx.client().json(`${ctx.base()}/forwarding/test`, { method: 'POST', body: {} }));
      ctx.banner($('fwd-outcome'), r.text, r.ok ? 'ok' : 'error');
    } catch (err) {
      if (ctx.onAuth(err)) return;
      if (err instanceof APIError && err.status === 404) {
        ctx.features().forwarding_test = false;
        $('fwd-test-hint').hidden = false;
      } else {
        fwdMessage(ctx.errorText(err), true);
      }
    } finally {
      $('fwd-test').textContent = 'Send a test event';
      $('fwd-test').disabled = !ctx.features().forwarding_test || !state.forwarding;
    }
  }

  // fwdDirty reports whether the forwarding form differs from the settings
  // it was filled with.
  function fwdDirty() {
    if ($('fwd-fields').disabled || !state.forwarding) return false;
    const f = state.forwarding;
    return $('fwd-enabled').checked !== Boolean(f.enabled) || $('fwd-url').value.trim() !== ((f.target || {}).url || '') ||
      $('fwd-name').value.trim() !== ((f.target || {}).name || '') ||
      $('fwd-key').value !== '' || $('fwd-hard').checked !== Boolean(f.hard_failures_only);
  }

  // closeForwarding closes the drawer, asking first when it holds unsaved
  // changes.
  function closeForwarding() {
    if (fwdDirty() || targets.pending()) {
      $('fwd-discard').hidden = false;
      $('fwd-discard-no').focus();
      return;
    }
    $('forwarding').close();
  }

  async function openForwarding() {
    fwdMessage('');
    const dlg = $('forwarding');
    $('fwd-account').value = ctx.workspace();
    state.lastFocus = document.activeElement;
    dlg.showModal();
    await loadForwarding();
    if (!$('fwd-fields').disabled) $('fwd-enabled').focus();
    else $('fwd-close').focus();
  }

  async function refreshForwardingBadge() {
    state.forwarding = null;
    setBadge();
    if (!ctx.features().forwarding) return;
    try {
      state.forwarding = await ctx.client().json(`${ctx.base()}/forwarding`);
    } catch {
      state.forwarding = null; // the panel explains when opened
    }
    setBadge();
  }

  $('open-forwarding').addEventListener('click', ctx.guard(openForwarding));
  $('fwd-close').addEventListener('click', closeForwarding);
  $('forwarding').addEventListener('click', (e) => {
    if (e.target === $('forwarding')) closeForwarding(); // the backdrop
  });
  $('forwarding').addEventListener('cancel', (e) => { // Esc
    e.preventDefault();
    closeForwarding();
  });
  $('fwd-discard-yes').addEventListener('click', () => {
    $('fwd-discard').hidden = true;
    $('forwarding').close();
  });
  $('fwd-discard-no').addEventListener('click', () => {
    $('fwd-discard').hidden = true;
    $('fwd-url').focus();
  });
  $('forwarding').addEventListener('close', () => {
    if (state.lastFocus && document.contains(state.lastFocus)) state.lastFocus.focus();
    state.lastFocus = null;
  });
  $('fwd-form').addEventListener('submit', (e) => {
    e.preventDefault();
    // Enter in the add-a-target form adds a target (targets.js); it does
    // not save the current target's form.
    if ($('fwd-add').contains(document.activeElement)) return;
    ctx.guard(saveForwarding)();
  });
  $('fwd-test').addEventListener('click', ctx.guard(sendTest));

  return { refreshBadge: refreshForwardingBadge };
}
