// The tracking plan editor: which events are planned, each with the JSON
// Schema of its properties (checked by the server as it is typed), and what
// happens to unplanned events, unplanned properties and violations.

import { h } from './format.js';
import { liveCheck, parseJSON } from './checks.js';
import { previewControl } from './preview.js';

const MODES = [
  ['unplanned_events', 'Events not in the plan', [['allow', 'Forward them'], ['block', 'Block them']]],
  ['unplanned_properties', 'Properties not in an event’s schema', [['allow', 'Keep them'], ['omit', 'Remove them']]],
  ['on_violation', 'Events that violate their schema', [['allow', 'Forward them and report the violation'], ['block', 'Block them and report the violation']]],
];
let uid = 0;

// planEditor renders into form; ctx is the editors' context.
export function planEditor(form, ctx) {
  const selects = {};
  const modes = MODES.map(([key, text, options]) => {
    const sel = h('select', { id: `plan-${key}` }, options.map(([v, t]) => h('option', { value: v, text: t })));
    selects[key] = sel;
    return h('div', { class: 'field' }, h('label', { for: sel.id, text }), sel);
  });
  const list = h('ul', { class: 'rules', 'aria-label': 'Planned events' });
  const empty = h('p', { class: 'muted', text: 'No planned events yet.' });
  const names = h('datalist', { id: 'plan-names' });
  const newName = h('input', { type: 'text', id: 'plan-new', list: 'plan-names', autocomplete: 'off', maxlength: 200, placeholder: 'Source Created', 'aria-describedby': 'plan-new-status' });
  const newStatus = h('p', { class: 'check-status', id: 'plan-new-status', 'aria-live': 'polite', hidden: true });
  const add = h('button', { type: 'button', class: 'btn', id: 'plan-add', text: 'Add to the plan' });
  const preview = previewControl(ctx, 'plan');
  form.replaceChildren(
    h('p', { class: 'muted', text: 'The tracking plan runs on every forwarded event before the filters. Violations are reported in the trail as “Violations Detected” events.' }),
    h('div', { class: 'mode-grid' }, modes),
    h('h3', { text: 'Planned events' }), list, empty,
    h('div', { class: 'field' }, h('label', { for: newName.id, text: 'Event to plan' }),
      h('div', { class: 'joined-actions' }, newName, add), names, newStatus),
    h('div', { class: 'row-actions' }, preview.btn), preview.out,
  );
  let saved = null; // the form as filled; null until then (nothing to lose)
  const items = () => [...list.children];

  function card(name, schema) {
    const id = `plan-${++uid}`;
    const area = h('textarea', { id: `${id}-schema`, rows: 5, spellcheck: 'false', 'aria-describedby': `${id}-status`,
      placeholder: '{"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string"}}}' });
    area.value = schema === undefined || schema === null ? '' : JSON.stringify(schema, null, 2);
    const status = h('p', { class: 'check-status', id: `${id}-status`, 'aria-live': 'polite', hidden: true });
    const remove = h('button', { type: 'button', class: 'btn btn-small btn-danger', text: 'Remove', 'aria-label': `Remove “${name}” from the plan` });
    const li = h('li', { class: 'rule' },
      h('div', { class: 'rule-head' }, h('span', { class: 'rule-title', text: name })),
      h('div', { class: 'field' }, h('label', { for: area.id, text: `Property schema of “${name}” (JSON Schema; empty: any properties)` }), area, status),
      h('div', { class: 'row-actions' }, remove));
    const check = liveCheck({
      input: area, status, onAuth: ctx.onAuth, okText: 'Schema accepted.',
      local: (v) => parseJSON(v).error || '',
      remote: ctx.features().schema_check
        ? (v) => ctx.client().json(`${ctx.base()}/tracking-plan/validate`, { method: 'POST', body: { event: name, properties: parseJSON(v).value } })
        : null,
    });
    area.addEventListener('input', () => check(area.value));
    remove.addEventListener('click', () => {
      const next = li.nextElementSibling || li.previousElementSibling;
      li.remove();
      sync();
      (next ? next.querySelector('textarea') : newName).focus();
    });
    li.eventName = name;
    li.area = area;
    return li;
  }

  function sync() {
    empty.hidden = items().length > 0;
    const planned = new Set(items().map((li) => li.eventName));
    names.replaceChildren(...ctx.catalogue().filter((e) => !planned.has(e.name)).map((e) => h('option', { value: e.name })));
  }

  function showNew(text) {
    newStatus.textContent = text;
    newStatus.dataset.kind = text ? 'error' : '';
    newStatus.hidden = !text;
    if (text) newName.setAttribute('aria-invalid', 'true');
    else newName.removeAttribute('aria-invalid');
  }

  add.addEventListener('click', () => {
    const name = newName.value.trim();
    if (!name) return showNew('Type or pick an event name.');
    if (items().some((li) => li.eventName === name)) return showNew(`“${name}” is already planned.`);
    showNew('');
    const li = card(name, undefined);
    list.append(li);
    newName.value = '';
    sync();
    li.area.focus();
    return undefined;
  });
  newName.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      add.click();
    }
  });
  // snapshot is the form as typed, for the unsaved-changes check.
  const snapshot = () => JSON.stringify([MODES.map(([k]) => selects[k].value), items().map((li) => [li.eventName, li.area.value])]);

  // read returns the plan as typed; a schema that is not JSON throws
  // {field, message}.
  function read() {
    const out = { events: {} };
    for (const [k] of MODES) out[k] = selects[k].value;
    for (const li of items()) {
      const p = parseJSON(li.area.value);
      if (p.error) throw { field: `events.${li.eventName}.properties`, message: p.error };
      out.events[li.eventName] = p.value === undefined ? {} : { properties: p.value };
    }
    return out;
  }

  function focus(field) {
    const f = String(field || '').replace(/^tracking_plan\./, '');
    for (const [k] of MODES) {
      if (f === k) {
        selects[k].focus();
        return true;
      }
    }
    const li = items().find((x) => f === `events.${x.eventName}` || f.startsWith(`events.${x.eventName}.`));
    if (!li) return false;
    li.area.focus();
    return true;
  }

  return {
    kind: 'tracking-plan',
    fill(v) {
      const p = v || {};
      for (const [k] of MODES) selects[k].value = p[k] || 'allow';
      const events = Object.keys(p.events || {}).sort();
      list.replaceChildren(...events.map((n) => card(n, (p.events[n] || {}).properties)));
      preview.out.hidden = true;
      showNew('');
      sync();
      saved = snapshot();
    },
    read,
    dirty: () => saved !== null && snapshot() !== saved,
    focus,
  };
}
