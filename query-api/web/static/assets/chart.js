// The timeline: event counts per minute, 5 minutes, hour or day, drawn as
// SVG. Bars are buttons, one stop in the Tab order with the arrow keys
// moving between them: clicking one (or Enter/Space on it) narrows the
// time range to that bar's minutes, hour or day.

import { h, plural } from './format.js';
import { DAY, HOUR } from './state.js';

const MINUTE = 60e3;

// INTERVALS are the bucket sizes, finest first. The timeline endpoint
// counts per hour or day only; finer buckets are counted on the page.
export const INTERVALS = {
  minute: { ms: MINUTE, name: 'minute', these: 'this minute' },
  '5min': { ms: 5 * MINUTE, name: '5 minutes', these: 'these 5 minutes' },
  hour: { ms: HOUR, name: 'hour', these: 'this hour' },
  day: { ms: DAY, name: 'day', these: 'this day' },
};

// finerThanHour reports whether interval can only be counted on the page.
export function finerThanHour(interval) {
  return INTERVALS[interval].ms < HOUR;
}

// chooseInterval picks the bucket size for [start, end): at most about a
// hundred bars.
export function chooseInterval(start, end) {
  const span = end - start;
  if (span <= 90 * MINUTE) return 'minute';
  if (span <= 6 * HOUR) return '5min';
  if (span <= 4 * DAY) return 'hour';
  return 'day';
}

function floorTo(t, interval) {
  const d = new Date(t);
  d.setSeconds(0, 0);
  if (interval === '5min') d.setMinutes(d.getMinutes() - (d.getMinutes() % 5));
  if (interval === 'hour' || interval === 'day') d.setMinutes(0);
  if (interval === 'day') d.setHours(0);
  return d;
}

function next(d, interval) {
  const n = new Date(d);
  if (interval === 'day') n.setDate(n.getDate() + 1);
  else n.setTime(n.getTime() + INTERVALS[interval].ms);
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

// Tick labels: every k-th minute of the day, with k a multiple of the
// interval, chosen so that labels are at least 58 px apart.
const LABEL_MINUTES = {
  minute: [1, 2, 5, 10, 15, 30, 60],
  '5min': [5, 10, 15, 30, 60, 120],
  hour: [60, 120, 180, 240, 360, 720, 1440],
};

function describe(b, interval) {
  if (interval === 'day') return fullDayFmt.format(b.start);
  if (interval === '5min') return `${fullHourFmt.format(b.start)} – ${hourFmt.format(b.end)}`;
  return fullHourFmt.format(b.start);
}

// render draws buckets into el. onSelect(bucket) is called when a bar is
// chosen.
export function render(el, buckets, { interval, onSelect } = {}) {
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
  const { name, these } = INTERVALS[interval];

  const svg = h('svg:svg', {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    class: 'timeline',
    role: 'group',
    'aria-label': `Events per ${name}. Choose a bar to show only ${these}.`,
    dataset: { interval },
  });
  for (const v of [0, max / 2, max]) {
    svg.append(
      h('svg:line', { x1: m.left, x2: width - m.right, y1: y(v), y2: y(v), class: v === 0 ? 'axis' : 'gridline' }),
      h('svg:text', { x: m.left - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end', text: Number.isInteger(v) ? v : v.toFixed(1) }),
    );
  }
  // Label every k-th minute (midnight shows the date) or every stride-th day.
  const perBucket = INTERVALS[interval].ms / 60e3;
  const every = interval === 'day' ? 0 : LABEL_MINUTES[interval].find((k) => (k / perBucket) * slot >= 58) || 1440;
  const stride = Math.max(1, Math.ceil(48 / slot));
  const bars = []; // the bars with events, oldest first
  buckets.forEach((b, i) => {
    const x = m.left + i * slot;
    const minuteOfDay = b.start.getHours() * 60 + b.start.getMinutes();
    if (interval === 'day' ? i % stride === 0 : minuteOfDay % every === 0) {
      const label = interval !== 'day' && minuteOfDay !== 0 ? hourFmt.format(b.start) : dayFmt.format(b.start);
      // A label under the last bars ends at the chart's right edge.
      const atEdge = x + slot / 2 > width - m.right - 30;
      svg.append(h('svg:text', {
        x: atEdge ? width - m.right : x + slot / 2, y: height - 6, class: 'tick', 'text-anchor': atEdge ? 'end' : 'middle', text: label,
      }));
    }
    const label = `${describe(b, interval)}: ${plural(b.count, 'event', 'events')}`;
    const barH = b.count ? Math.max(2, m.top + ph - y(b.count)) : 0;
    const g = h('svg:g', {
      class: `bar${b.count ? '' : ' empty'}`,
      role: b.count ? 'button' : null,
      tabindex: b.count ? -1 : null, // one stop in the Tab order: see rove
      'aria-label': b.count ? `${label}. Show only ${these}.` : null,
      dataset: { start: b.start.toISOString(), end: b.end.toISOString(), count: String(b.count) },
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
    if (b.count) bars.push(g);
    svg.append(g);
  });
  rove(bars);
  el.replaceChildren(svg);
}

// rove makes the bars one stop in the Tab order (the newest bar), moved
// between with the arrow keys, Home and End (a roving tabindex).
function rove(bars) {
  if (!bars.length) return;
  bars[bars.length - 1].setAttribute('tabindex', '0');
  bars.forEach((g, i) => g.addEventListener('keydown', (e) => {
    const to = { ArrowLeft: i - 1, ArrowRight: i + 1, ArrowDown: i - 1, ArrowUp: i + 1, Home: 0, End: bars.length - 1 }[e.key];
    if (to === undefined || to < 0 || to >= bars.length) return;
    e.preventDefault();
    g.setAttribute('tabindex', '-1');
    bars[to].setAttribute('tabindex', '0');
    bars[to].focus();
  }));
}
