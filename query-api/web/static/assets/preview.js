// The preview of forwarding settings: what the saved settings, or the
// drafts being edited, would do to the workspace's newest events, as the
// server's forwarding pipeline decides it (POST .../forwarding/preview).
// previewControl is the button and its result, shared by the editors.

import { h } from './format.js';

const REASONS = {
  filter: 'dropped by a filter',
  violation: 'blocked for violating the tracking plan',
  unplanned_event: 'blocked as unplanned events',
  not_final_failure: 'left out as retried failures (hard failures only)',
};

function plural(n, one, many) {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

// previewSummary is the preview's first sentence, e.g. "Of the last 500
// events, these settings would drop 37 and forward 463."
export function previewSummary(p) {
  if (!p.events) return 'There are no stored events to preview yet.';
  const of = `Of the last ${plural(p.events, 'event', 'events')}`;
  const partial = p.complete ? '' : ' (the preview stopped early: it took too long)';
  return `${of}${partial}, these settings would drop ${p.dropped.toLocaleString('en-US')} and forward ${p.kept.toLocaleString('en-US')}.`;
}

// renderPreview fills el with the preview p.
export function renderPreview(el, p) {
  const lines = [];
  for (const [reason, n] of Object.entries(p.dropped_by || {})) {
    if (reason !== 'filter') lines.push(h('li', { text: `${plural(n, 'event', 'events')} ${REASONS[reason] || reason}` }));
  }
  for (const f of p.filters || []) {
    lines.push(h('li', { text: `${plural(f.dropped, 'event', 'events')} dropped by the filter “${f.name}”` }));
  }
  if (p.violations) lines.push(h('li', { text: `${plural(p.violations, 'event violates', 'events violate')} the tracking plan` }));
  if (p.filter_errors) lines.push(h('li', { text: `${plural(p.filter_errors, 'condition', 'conditions')} could not be evaluated (taken as not matching)` }));
  const examples = [];
  for (const x of (p.examples && p.examples.dropped) || []) {
    examples.push(h('li', {}, h('code', { text: x.id }), ` ${x.event}: ${x.filter ? `filter “${x.filter}”` : REASONS[x.reason] || x.reason}`));
  }
  for (const x of (p.examples && p.examples.violations) || []) {
    examples.push(h('li', {}, h('code', { text: x.id }), ` ${x.event}: ${x.violation}`));
  }
  el.replaceChildren(
    h('p', { class: 'preview-summary', text: previewSummary(p) }),
    lines.length ? h('ul', { class: 'preview-lines' }, lines) : null,
    examples.length ? h('details', { class: 'preview-examples' }, h('summary', { text: 'Example events' }), h('ul', {}, examples)) : null,
  );
  el.hidden = false;
}

const LABEL = 'Preview on recent events';

// previewControl returns the Preview button and its result area, with ids
// <id>-preview and <id>-preview-result. A click sends the drafts of every
// editor with unsaved changes (ctx.drafts(); the others are the saved
// settings) and shows the answer; a refusal names its field, which
// ctx.focusField focuses.
export function previewControl(ctx, id) {
  const btn = h('button', { type: 'button', class: 'btn', id: `${id}-preview`, text: LABEL });
  const out = h('div', { class: 'preview', id: `${id}-preview-result`, role: 'status', hidden: true });
  btn.hidden = !ctx.features().preview;
  btn.addEventListener('click', ctx.guard(async () => {
    let body;
    try {
      body = ctx.drafts();
    } catch (err) {
      ctx.fail(err, ctx.focusField);
      return;
    }
    btn.disabled = true;
    btn.textContent = 'Previewing…';
    try {
      renderPreview(out, await ctx.client().json(`${ctx.base()}/forwarding/preview`, { method: 'POST', body }));
    } catch (err) {
      if (!ctx.onAuth(err)) ctx.fail(err, ctx.focusField);
    } finally {
      btn.disabled = false;
      btn.textContent = LABEL;
    }
  }));
  return { btn, out };
}
