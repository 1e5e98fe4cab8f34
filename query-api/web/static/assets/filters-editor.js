// The destination filters editor: add, edit, reorder, enable and remove
// filters; each condition is checked by the server as it is typed, and the
// preview says what the settings being edited would drop.

import { h } from './format.js';
import { liveCheck } from './checks.js';
import { previewControl } from './preview.js';

const ACTIONS = [
  ['drop', 'Drop the event'],
  ['sample', 'Keep a sample'],
  ['drop_properties', 'Remove properties'],
  ['allow_properties', 'Keep only properties'],
];
const MAX_FILTERS = 50;
let uid = 0;

// filtersEditor renders into form; ctx is the editors' context.
export function filtersEditor(form, ctx) {
  const list = h('ol', { class: 'rules', 'aria-label': 'Filters, applied in order' });
  const empty = h('p', { class: 'muted', text: 'No filters: every event is forwarded as it is.' });
  const add = h('button', { type: 'button', class: 'btn', id: 'flt-add', text: 'Add a filter' });
  const preview = previewControl(ctx, 'flt');
  form.replaceChildren(
    h('p', { class: 'muted', text: 'Filters run in order on every forwarded event, after the tracking plan. A condition is a CEL expression over event, category, actor, resource, context and properties, e.g. event == \'Source Created\' && properties.kind == \'web\'.' }),
    list, empty, h('div', { class: 'row-actions' }, add, preview.btn), preview.out,
  );
  let saved = null; // the form as filled; null until then (nothing to lose)
  const items = () => [...list.children];

  function card(f) {
    const id = `flt-${++uid}`;
    const name = h('input', { type: 'text', id: `${id}-name`, maxlength: 200, autocomplete: 'off', value: f.name || '' });
    const enabled = h('input', { type: 'checkbox', id: `${id}-enabled` });
    enabled.checked = f.enabled !== false;
    const cond = h('textarea', { id: `${id}-if`, rows: 2, maxlength: 4096, spellcheck: 'false', 'aria-describedby': `${id}-if-status` });
    cond.value = f.if || '';
    const status = h('p', { class: 'check-status', id: `${id}-if-status`, 'aria-live': 'polite', hidden: true });
    const action = h('select', { id: `${id}-action` }, ACTIONS.map(([v, t]) => h('option', { value: v, text: t })));
    action.value = f.action || 'drop';
    const percent = h('input', { type: 'number', id: `${id}-percent`, min: 0, max: 100, step: 'any', value: f.percent ?? '' });
    const props = h('input', { type: 'text', id: `${id}-props`, autocomplete: 'off', placeholder: 'email, address.city', value: (f.properties || []).join(', ') });
    const percentField = h('div', { class: 'field' }, h('label', { for: percent.id, text: 'Percent of matching events kept' }), percent);
    const propsField = h('div', { class: 'field' }, h('label', { for: props.id, text: 'Properties (comma-separated; dotted paths reach nested ones)' }), props);
    const title = h('span', { class: 'rule-title' });
    const up = h('button', { type: 'button', class: 'btn btn-small', text: 'Move up' });
    const down = h('button', { type: 'button', class: 'btn btn-small', text: 'Move down' });
    const remove = h('button', { type: 'button', class: 'btn btn-small btn-danger', text: 'Remove' });
    const li = h('li', { class: 'rule' },
      h('div', { class: 'rule-head' }, title,
        h('label', { class: 'check small', for: enabled.id }, enabled, 'Enabled')),
      h('div', { class: 'field' }, h('label', { for: name.id, text: 'Name' }), name),
      h('div', { class: 'field' }, h('label', { for: cond.id, text: 'Condition' }), cond, status),
      h('div', { class: 'field' }, h('label', { for: action.id, text: 'Action' }), action),
      percentField, propsField,
      h('div', { class: 'row-actions' }, up, down, remove));
    const check = liveCheck({
      input: cond, status, onAuth: ctx.onAuth, okText: 'Condition accepted.',
      local: (v) => (v.trim() ? '' : 'Write a condition (true matches every event).'),
      remote: ctx.features().condition_check
        ? (v) => ctx.client().json(`${ctx.base()}/destination-filters/validate`, { method: 'POST', body: { if: v } })
        : null,
    });
    const sync = () => {
      const n = items().indexOf(li) + 1;
      const label = name.value.trim() || `Filter ${n}`;
      title.textContent = `${n}. ${label}`;
      up.setAttribute('aria-label', `Move up “${label}”`);
      down.setAttribute('aria-label', `Move down “${label}”`);
      remove.setAttribute('aria-label', `Remove “${label}”`);
      percentField.hidden = action.value !== 'sample';
      propsField.hidden = !action.value.endsWith('_properties');
    };
    li.sync = sync;
    li.read = () => {
      const out = { name: name.value.trim(), enabled: enabled.checked, if: cond.value, action: action.value };
      if (action.value === 'sample') out.percent = percent.value === '' ? undefined : Number(percent.value);
      if (action.value.endsWith('_properties')) out.properties = props.value.split(',').map((s) => s.trim()).filter(Boolean);
      return out;
    };
    li.fields = { name, if: cond, action, percent, properties: props, enabled };
    name.addEventListener('input', syncAll);
    action.addEventListener('change', sync);
    cond.addEventListener('input', () => check(cond.value));
    up.addEventListener('click', () => move(li, -1, up));
    down.addEventListener('click', () => move(li, 1, down));
    remove.addEventListener('click', () => {
      const next = li.nextElementSibling || li.previousElementSibling;
      li.remove();
      syncAll();
      (next ? next.querySelector('input[type=text]') : add).focus();
    });
    if (cond.value) check(cond.value);
    return li;
  }

  function move(li, by, btn) {
    const sib = by < 0 ? li.previousElementSibling : li.nextElementSibling;
    if (!sib) return;
    if (by < 0) list.insertBefore(li, sib);
    else list.insertBefore(sib, li);
    syncAll();
    // At the top or bottom the button is disabled: keep the focus on the
    // card's other move button.
    const [up, down] = li.querySelectorAll('.row-actions button');
    (btn.disabled ? (btn === up ? down : up) : btn).focus();
  }

  function syncAll() {
    const all = items();
    all.forEach((li, i) => {
      li.sync();
      const [up, down] = li.querySelectorAll('.row-actions button');
      up.disabled = i === 0;
      down.disabled = i === all.length - 1;
    });
    empty.hidden = all.length > 0;
    add.disabled = all.length >= MAX_FILTERS;
  }

  add.addEventListener('click', () => {
    const li = card({ name: '', enabled: true, if: '', action: 'drop' });
    list.append(li);
    syncAll();
    li.fields.name.focus();
  });
  function read() {
    return { filters: items().map((li) => li.read()) };
  }

  function focus(field) {
    const m = /^(?:destination_filters\.)?filters\[(\d+)\]\.(\w+)/.exec(field || '');
    if (!m) return false;
    const li = items()[Number(m[1])];
    const el = li && li.fields[m[2]];
    if (!el) return false;
    el.focus();
    return true;
  }

  return {
    kind: 'destination-filters',
    fill(v) {
      list.replaceChildren(...((v && v.filters) || []).map(card));
      preview.out.hidden = true;
      syncAll();
      saved = JSON.stringify(read());
    },
    read,
    dirty: () => saved !== null && JSON.stringify(read()) !== saved,
    focus,
  };
}
