package browsertest

import "encoding/json"

// Probes of the Audit Trail page that both of its browser tests use.

// Timeline is the page's "Events over time" chart as drawn.
type Timeline struct {
	Interval string `json:"interval"` // minute, 5min, hour or day
	Bars     int    `json:"bars"`     // empty ones included
	First    int    `json:"first"`    // index of the first bar with events, -1 when none
	Last     int    `json:"last"`     // index of the last bar with events, -1 when none
	Total    int    `json:"total"`    // events counted
	Start    string `json:"start"`    // the first bar's start (RFC 3339)
	End      string `json:"end"`      // the last bar's end (RFC 3339)
}

// Spread reports whether the bars with events reach into both the first
// and the last quarter of the chart, rather than sitting at one edge.
func (c Timeline) Spread() bool {
	return c.First >= 0 && 4*c.First <= c.Bars-1 && 4*c.Last >= 3*(c.Bars-1)
}

// ChartOf reads the page's timeline chart.
func ChartOf(b *Browser) Timeline {
	b.t.Helper()
	return Eval[Timeline](b, `(() => {
		const svg = document.querySelector('#chart svg');
		const bars = [...document.querySelectorAll('#chart .bar')];
		const full = bars.map((g, i) => (Number(g.dataset.count) > 0 ? i : -1)).filter((i) => i >= 0);
		return {
			interval: svg ? svg.dataset.interval : '',
			bars: bars.length,
			first: full.length ? full[0] : -1,
			last: full.length ? full[full.length - 1] : -1,
			total: bars.reduce((n, g) => n + Number(g.dataset.count), 0),
			start: bars.length ? bars[0].dataset.start : '',
			end: bars.length ? bars[bars.length - 1].dataset.end : '',
		};
	})()`)
}

// InFirstScreen is a condition for Check and Eval: the element that
// selector matches is wholly inside the viewport of a page that has not
// been scrolled.
func InFirstScreen(selector string) string {
	return `(() => { const e = document.querySelector(` + jsString(selector) + `); if (!e) return false;
		const r = e.getBoundingClientRect();
		return window.scrollY === 0 && r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; })()`
}

// TextFits is a condition for Check and Eval: the element that selector
// matches shows its whole text (nothing cut off at its right edge).
func TextFits(selector string) string {
	return `(() => { const e = document.querySelector(` + jsString(selector) + `);
		return Boolean(e) && e.clientWidth > 0 && e.textContent.trim() !== '' && e.scrollWidth <= e.clientWidth; })()`
}

// jsString quotes s as a JavaScript string literal (JSON's is one).
func jsString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}
