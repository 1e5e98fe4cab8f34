// The forwarding drawer's saved targets: other event-streams sources the
// owner keeps next to the current target, each with its name, URL and
// whether a write key is set, to switch to ("Use this target"), test or
// remove, and a small form to add one. Every change is one PUT of the
// forwarding settings; keys are never sent back: the server keeps each key
// with its URL.

import { h } from './format.js';
import { testOutcome } from './outcome.js';

const $ = (id) => document.getElementById(id);
const MAX_SAVED = 10;

// bare is a target as a PUT sends it: no key (the stored one is kept).
function bare(t) {
  const out = { url: t.url || '' };
  if (t.name) out.name = t.name;
  return out;
}

// settingsBody is the PUT body that keeps the saved settings f as they
// are, with changes applied. No saved targets: the field is left out (a
// PUT without it has none).
export function settingsBody(f, changes = {}) {
  const body = {
    enabled: Boolean(f.enabled),
    hard_failures_only: Boolean(f.hard_failures_only),
    target: bare(f.target || {}),
    saved_targets: (f.saved_targets || []).map(bare),
    ...changes,
  };
  if (!body.saved_targets.length) delete body.saved_targets;
  return body;
}

// freeName is a name for the current target when it moves to the saved
// list without one: its host, made unique.
function freeName(t, taken) {
  let base = 'Previous target';
  try {
    base = new URL(t.url).host || base;
  } catch {
    // keep the default
  }
  let name = base;
  for (let i = 2; taken.has(name); i++) name = `${base} (${i})`;
  return name;
}

// initTargets binds the saved-targets section. ctx: client(), base(),
// onAuth(err), errorText(err), guard(fn), banner(el, text, kind);
// drawer: current() (the saved settings), dirty() (the current target's
// form has unsaved changes), put(body) (saves and refills the drawer).
export function initTargets(ctx, drawer) {
  const list = $('fwd-saved');
  const error = $('fwd-saved-error');
  const say = (text) => ctx.banner(error, text, 'error');

  // change runs one PUT, unless the form holds unsaved edits it would lose.
  async function change(body, focusAfter) {
    say('');
    if (drawer.dirty()) {
      say('Save or discard your changes to the current target first.');
      return false;
    }
    try {
      await drawer.put(body);
      if (focusAfter) focusAfter();
      return true;
    } catch (err) {
      if (ctx.onAuth(err)) return false;
      say(ctx.errorText(err));
      return false;
    }
  }

  function use(i) {
    const f = drawer.current();
    const saved = [...(f.saved_targets || [])];
    const [next] = saved.splice(i, 1);
    const cur = f.target || {};
    if (cur.url) {
      const taken = new Set([next.name, ...saved.map((t) => t.name)]);
      saved.push({ ...cur, name: cur.name && !taken.has(cur.name) ? cur.name : freeName(cur, taken) });
    }
    return change(settingsBody(f, { target: bare(next), saved_targets: saved.map(bare) }), () => $('fwd-target-title').focus());
  }

  function remove(i) {
    const f = drawer.current();
    const saved = (f.saved_targets || []).filter((_, j) => j !== i);
    return change(settingsBody(f, { saved_targets: saved.map(bare) }), () => $('fwd-saved-title').focus());
  }

  async function test(name, out, btn) {
    ctx.banner(out, '');
    btn.disabled = true;
    try {
      const r = testOutcome(await ctx.client().json(`${ctx.base()}/forwarding/test`, { method: 'POST', body: { target: name } }));
      ctx.banner(out, r.text, r.ok ? 'ok' : 'error');
    } catch (err) {
      if (!ctx.onAuth(err)) ctx.banner(out, ctx.errorText(err), 'error');
    } finally {
      btn.disabled = false;
    }
  }

  async function add() {
    const name = $('fwd-add-name').value.trim();
    const url = $('fwd-add-url').value.trim();
    const key = $('fwd-add-key').value;
    if (!name || !url) {
      say('A saved target needs a name and a URL.');
      $(name ? 'fwd-add-url' : 'fwd-add-name').focus();
      return;
    }
    const f = drawer.current();
    const t = { name, url };
    if (key) t.write_key = key;
    const ok = await change(settingsBody(f, { saved_targets: [...(f.saved_targets || []).map(bare), t] }));
    if (ok) {
      for (const id of ['fwd-add-name', 'fwd-add-url', 'fwd-add-key']) $(id).value = '';
      $('fwd-saved-title').focus();
    }
  }

  function item(t, i) {
    const out = h('p', { class: 'banner test-outcome', role: 'status', hidden: true });
    const testBtn = h('button', { type: 'button', class: 'btn btn-small', text: 'Send test event', 'aria-label': `Send test event to “${t.name}”` });
    testBtn.disabled = !t.write_key;
    testBtn.addEventListener('click', ctx.guard(() => test(t.name, out, testBtn)));
    const useBtn = h('button', { type: 'button', class: 'btn btn-small', text: 'Use this target', 'aria-label': `Use this target: “${t.name}”` });
    useBtn.addEventListener('click', ctx.guard(() => use(i)));
    const removeBtn = h('button', { type: 'button', class: 'btn btn-small btn-danger', text: 'Remove', 'aria-label': `Remove “${t.name}”` });
    removeBtn.addEventListener('click', ctx.guard(() => remove(i)));
    return h('li', { class: 'rule' },
      h('span', { class: 'rule-title', text: t.name }),
      h('dl', { class: 'fields' },
        h('dt', { text: 'URL' }), h('dd', {}, h('code', { text: t.url })),
        h('dt', { text: 'Write key' }), h('dd', { text: t.write_key ? `Set (${t.write_key})` : 'Not set: a test event needs one' })),
      h('div', { class: 'row-actions' }, useBtn, testBtn, removeBtn),
      out);
  }

  const keyEnter = (e) => {
    if (e.key !== 'Enter') return;
    e.preventDefault(); // not the drawer's Save
    ctx.guard(add)();
  };
  for (const id of ['fwd-add-name', 'fwd-add-url', 'fwd-add-key']) $(id).addEventListener('keydown', keyEnter);
  $('fwd-add-save').addEventListener('click', ctx.guard(add));

  return {
    // render shows the saved targets of f (null: none known).
    render(f) {
      say('');
      const saved = (f && f.saved_targets) || [];
      $('fwd-saved-section').hidden = !f;
      list.replaceChildren(...saved.map(item));
      $('fwd-saved-empty').hidden = saved.length > 0;
      $('fwd-add').hidden = saved.length >= MAX_SAVED;
    },
    // pending reports whether the add form holds text.
    pending: () => ['fwd-add-name', 'fwd-add-url', 'fwd-add-key'].some((id) => $(id).value !== ''),
  };
}
