// The timeline: event counts per hour or per day over the selected range,
// drawn as SVG. Bars are buttons: clicking one (or Enter/Space on it)
// narrows the time range to that hour or day.

import { h, plural } from './format.js';
import { DAY, HOUR } from './state.js';

export function chooseInterval(start, end) {
  return end - start <= 4 * DAY ? 'hour' : 'day';
}

function floorTo(t, interval) {
  const d = new Date(t);
  d.setMinutes(0, 0, 0);
  if (interval === 'day') d.setHours(0);
  return d;
}

function next(d, interval) {
  const n = new Date(d);
  if (interval === 'day') n.setDate(n.getDate() + 1);
  else n.setTime(n.getTime() + HOUR);
  return n;
}

// grid lists the empty buckets covering [start, end) in local time.
export function grid(start, end, interval) {
  const out = [];
  for (let t = floorTo(start, interval); t < end && out.length < 2000; t = next(t, interval)) {
    out.push({ start: t, end: next(t, interval), count: 0 });
  }
  return out;
}

// add counts n events at time t into the bucket holding it.
export function add(buckets, t, n = 1) {
  const ms = t instanceof Date ? t.getTime() : new Date(t).getTime();
  let lo = 0;
  let hi = buckets.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const b = buckets[mid];
    if (ms < b.start.getTime()) hi = mid - 1;
    else if (ms >= b.end.getTime()) lo = mid + 1;
    else {
      b.count += n;
      return true;
    }
  }
  return false;
}

const hourFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const fullHourFmt = new Intl.DateTimeFormat(undefined, {
  weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
});
const fullDayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric' });

// niceMax is the top of the y axis: a round even number >= n, so that the
// middle gridline is a whole number too.
function niceMax(n) {
  if (n <= 4) return 4;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10]) {
    const v = Math.round(m * p);
    if (v >= n && v % 2 === 0) return v;
  }
  return 20 * p;
}

// render draws buckets into el. onSelect(bucket) is called when a bar is
// chosen; selected (optional {start, end}) highlights the matching bar.
export function render(el, buckets, { interval, onSelect, selected } = {}) {
  const width = Math.max(280, Math.floor(el.clientWidth || 800));
  const height = width < 560 ? 130 : 160;
  const m = { top: 10, right: 8, bottom: 24, left: 36 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;
  const max = niceMax(Math.max(0, ...buckets.map((b) => b.count)));
  const n = Math.max(1, buckets.length);
  const slot = pw / n;
  const gap = Math.min(3, slot * 0.25);
  const barW = Math.max(1, Math.min(40, slot - gap));
  const y = (v) => m.top + ph - (v / max) * ph;

  const svg = h('svg:svg', {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    class: 'timeline',
    role: 'group',
    'aria-label': `Events per ${interval}. Choose a bar to show only that ${interval}.`,
  });
  for (const v of [0, max / 2, max]) {
    svg.append(
      h('svg:line', { x1: m.left, x2: width - m.right, y1: y(v), y2: y(v), class: v === 0 ? 'axis' : 'gridline' }),
      h('svg:text', { x: m.left - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end', text: Number.isInteger(v) ? v : v.toFixed(1) }),
    );
  }
  // Label every k-th hour (midnight shows the date) or every stride-th day.
  const hourStep = [1, 2, 3, 4, 6, 12, 24].find((k) => k * slot >= 58) || 24;
  const stride = Math.max(1, Math.ceil(48 / slot));
  buckets.forEach((b, i) => {
    const x = m.left + i * slot;
    if (interval === 'hour' ? b.start.getHours() % hourStep === 0 : i % stride === 0) {
      const label = interval === 'hour' && b.start.getHours() !== 0 ? hourFmt.format(b.start) : dayFmt.format(b.start);
      svg.append(h('svg:text', { x: x + slot / 2, y: height - 6, class: 'tick', 'text-anchor': 'middle', text: label }));
    }
    const when = interval === 'hour' ? fullHourFmt.format(b.start) : fullDayFmt.format(b.start);
    const label = `${when}: ${plural(b.count, 'event', 'events')}`;
    const isSelected = selected && selected.start && selected.end &&
      selected.start.getTime() === b.start.getTime() && selected.end.getTime() === b.end.getTime();
    const barH = b.count ? Math.max(2, m.top + ph - y(b.count)) : 0;
    const g = h('svg:g', {
      class: `bar${b.count ? '' : ' empty'}${isSelected ? ' selected' : ''}`,
      role: b.count ? 'button' : null,
      tabindex: b.count ? 0 : null,
      'aria-label': b.count ? `${label}. Show only this ${interval}.` : null,
      dataset: { start: b.start.toISOString(), count: String(b.count) },
    },
    h('svg:title', { text: label }),
    h('svg:rect', { class: 'hit', x, y: m.top, width: slot, height: ph }),
    h('svg:rect', { class: 'fill', x: x + (slot - barW) / 2, y: m.top + ph - barH, width: barW, height: barH, rx: Math.min(2, slot / 4) }));
    if (b.count && onSelect) {
      g.addEventListener('click', () => onSelect(b));
      g.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
          e.preventDefault();
          onSelect(b);
        }
      });
    }
    svg.append(g);
  });
  el.replaceChildren(svg);
}
