// The alert webhook editor: on/off, the chat incoming-webhook URL (shown
// masked once saved; left empty it is kept) and the events that post an
// alert.

import { h } from './format.js';

// alertsEditor renders into form; ctx is the editors' context.
export function alertsEditor(form, ctx) {
  const enabled = h('input', { type: 'checkbox', role: 'switch', id: 'alert-enabled' });
  const url = h('input', { type: 'url', id: 'alert-url', autocomplete: 'off', inputmode: 'url', placeholder: 'https://hooks.example.com/services/…', 'aria-describedby': 'alert-url-hint' });
  const urlHint = h('p', { class: 'hint', id: 'alert-url-hint' });
  const remove = h('input', { type: 'checkbox', id: 'alert-remove' });
  const removeField = h('label', { class: 'check small', for: remove.id }, remove, 'Remove the saved webhook');
  const find = h('input', { type: 'search', id: 'alert-find', autocomplete: 'off', placeholder: 'Find an event', 'aria-controls': 'alert-events' });
  const count = h('p', { class: 'muted small', id: 'alert-count', 'aria-live': 'polite' });
  const box = h('div', { class: 'check-list', id: 'alert-events', role: 'group', 'aria-labelledby': 'alert-events-title' });
  form.replaceChildren(
    h('p', { class: 'muted', text: 'Post a message to a chat incoming webhook whenever one of the chosen events happens in this workspace.' }),
    h('label', { class: 'switch', for: enabled.id }, enabled, h('span', { class: 'switch-track', 'aria-hidden': 'true' }), h('span', { text: 'Send alerts' })),
    h('div', { class: 'field' }, h('label', { for: url.id, text: 'Webhook URL' }), url, urlHint, removeField),
    h('h3', { id: 'alert-events-title', text: 'Events that send an alert' }),
    h('div', { class: 'field' }, h('label', { for: find.id, text: 'Find an event' }), find),
    count, box,
  );
  let saved = null; // the form as filled; null until then (nothing to lose)
  let savedURL = '';
  const checks = () => [...box.querySelectorAll('input[type=checkbox]')];

  function render(selected) {
    // The chosen events first (custom names among them), then the rest of
    // the catalogue.
    const names = [...selected, ...ctx.catalogue().map((e) => e.name).filter((n) => !selected.includes(n))];
    box.replaceChildren(...names.map((n, i) => {
      const cb = h('input', { type: 'checkbox', id: `alert-ev-${i}`, value: n });
      cb.checked = selected.includes(n);
      return h('label', { class: 'check small', for: cb.id }, cb, n);
    }));
    filter();
    counted();
  }

  function filter() {
    const q = find.value.trim().toLowerCase();
    for (const cb of checks()) cb.closest('label').hidden = Boolean(q) && !cb.value.toLowerCase().includes(q);
  }

  function counted() {
    const n = checks().filter((c) => c.checked).length;
    count.textContent = n === 1 ? '1 event chosen.' : `${n} events chosen.`;
  }

  find.addEventListener('input', filter);
  box.addEventListener('change', counted);
  remove.addEventListener('change', () => {
    url.disabled = remove.checked;
    if (remove.checked) url.value = '';
  });

  function read() {
    const out = { enabled: enabled.checked, events: checks().filter((c) => c.checked).map((c) => c.value) };
    if (remove.checked) out.webhook_url = '';
    else if (url.value.trim()) out.webhook_url = url.value.trim();
    return out; // no webhook_url: the saved one is kept
  }

  return {
    kind: 'alerts',
    fill(v) {
      const a = v || {};
      enabled.checked = Boolean(a.enabled);
      savedURL = a.webhook_url || '';
      url.value = '';
      url.disabled = false;
      remove.checked = false;
      removeField.hidden = !savedURL;
      urlHint.textContent = savedURL
        ? `A webhook is saved (${savedURL}). Leave this empty to keep it.`
        : 'The incoming-webhook URL your chat tool gave you. It is kept secret: only its host is shown once saved.';
      find.value = '';
      render(a.events || []);
      saved = JSON.stringify(read());
    },
    read,
    dirty: () => saved !== null && JSON.stringify(read()) !== saved,
    focus(field) {
      const f = String(field || '');
      if (f === 'webhook_url') url.focus();
      else if (f === 'enabled') enabled.focus();
      else if (f.startsWith('events')) find.focus();
      else return false;
      return true;
    },
  };
}
