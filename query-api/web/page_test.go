package web_test

import (
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/labstack/echo/v4"
	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/browsertest"
	"github.com/audittrail/audittrail/query-api/web"
	"github.com/audittrail/audittrail/schemas/catalogue"
)

// contractAPI answers the endpoints the page uses exactly as their
// contracts say (list, event, catalogue, facets, CSV, timeline, forwarding
// settings and test event), from memory, and records what the page sent.
type contractAPI struct {
	events map[string][]map[string]any // by workspace, newest first

	mu         sync.Mutex
	queries    map[string][]url.Values // path suffix -> query of each request
	forwarding map[string]any
	puts       []map[string]any
	tests      int
	// testTargets are the saved targets named by test calls ("": the
	// current target).
	testTargets []string
}

// retentionOf is what GET .../retention answers per workspace (90 days,
// no hold, for the others).
var retentionOf = map[string]map[string]any{
	"ws_held":  {"days": 30, "legal_hold": true},
	"ws_burst": {"days": 400, "legal_hold": false},
}

// customEvent is an event name that is not in the catalogue.
const customEvent = "Custom Report Shared"

// burstEvents is how many events workspace ws_burst has, all within eight
// minutes three days ago: more than a page of the table.
const burstEvents = 120

func newContractAPI(now time.Time) *contractAPI {
	c := &contractAPI{events: map[string][]map[string]any{}, queries: map[string][]url.Values{}, forwarding: map[string]any{
		"enabled": false, "target": map[string]any{"url": "https://api.example.com", "write_key": "••••••3xyz"}, "hard_failures_only": false,
	}}
	names := []string{"Source Created", "Warehouses Disabled", "Audience Run Failed"}
	for i := range 12 {
		ev := map[string]any{
			"id": fmt.Sprintf("c-%02d", i), "workspace_id": "ws_1", "event": names[i%3],
			"timestamp": now.Add(-time.Duration(i) * time.Hour).Format(time.RFC3339Nano),
			"actor":     map[string]any{"type": "user", "id": "usr_1", "name": "Alice", "email": "alice@example.com"},
			"resource":  map[string]any{"type": "source", "id": fmt.Sprintf("src_%d", i), "name": "Web"},
			"changes":   map[string]any{"enabled": map[string]any{"old": true, "new": false}},
			"sender":    map[string]any{"credential_id": "legacy-0123456789ab", "producer": "billing"},
		}
		c.events["ws_1"] = append(c.events["ws_1"], ev)
	}
	burst := now.Add(-72 * time.Hour)
	for i := range burstEvents {
		c.events["ws_burst"] = append(c.events["ws_burst"], map[string]any{
			"id": fmt.Sprintf("b-%03d", i), "workspace_id": "ws_burst", "event": names[i%3],
			"timestamp": burst.Add(-time.Duration(i) * 4 * time.Second).Format(time.RFC3339Nano),
			"actor":     map[string]any{"type": "user", "id": "usr_1", "name": "Alice", "email": "alice@example.com"},
			"resource":  map[string]any{"type": "source", "id": fmt.Sprintf("src_%d", i), "name": "Web"},
		})
	}
	// The oldest event has a name outside the catalogue (a custom event).
	c.events["ws_1"] = append(c.events["ws_1"], map[string]any{
		"id": "c-12", "workspace_id": "ws_1", "event": customEvent,
		"timestamp": now.Add(-12 * time.Hour).Format(time.RFC3339Nano),
		"actor":     map[string]any{"type": "user", "id": "usr_1", "name": "Alice", "email": "alice@example.com"},
		"resource":  map[string]any{"type": "source", "id": "src_12", "name": "Web"},
	})
	return c
}

func (c *contractAPI) record(suffix string, q url.Values) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queries[suffix] = append(c.queries[suffix], q)
}

// count returns how many requests of a kind the page sent.
func (c *contractAPI) count(suffix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queries[suffix])
}

func (c *contractAPI) lastQuery(suffix string) url.Values {
	c.mu.Lock()
	defer c.mu.Unlock()
	qs := c.queries[suffix]
	if len(qs) == 0 {
		return nil
	}
	return qs[len(qs)-1]
}

func (c *contractAPI) matching(ws string, q url.Values) []map[string]any {
	var out []map[string]any
	for _, e := range c.events[ws] {
		if evs := q["event"]; len(evs) > 0 && !slices.Contains(evs, e["event"].(string)) {
			continue
		}
		ts, _ := time.Parse(time.RFC3339Nano, e["timestamp"].(string))
		if s := q.Get("since"); s != "" {
			if since, _ := time.Parse(time.RFC3339Nano, s); ts.Before(since) {
				continue
			}
		}
		if s := q.Get("until"); s != "" {
			if until, _ := time.Parse(time.RFC3339Nano, s); !ts.Before(until) {
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

func envelope(c echo.Context, status int, code, msg string) error {
	return c.JSON(status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func (c *contractAPI) register(e *echo.Echo) {
	e.GET("/v1/catalogue", func(ctx echo.Context) error {
		return ctx.JSON(http.StatusOK, map[string]any{"events": catalogue.All(), "categories": catalogue.Categories()})
	})
	ws := e.Group("/v1/workspaces/:workspace_id", func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ctx echo.Context) error {
			if !strings.HasPrefix(ctx.Request().Header.Get("Authorization"), "Bearer ") {
				return envelope(ctx, http.StatusUnauthorized, "unauthorized", "missing bearer token")
			}
			if _, ok := c.events[ctx.Param("workspace_id")]; !ok {
				return envelope(ctx, http.StatusForbidden, "forbidden", "only workspace owners can view the audit trail")
			}
			return next(ctx)
		}
	})
	ws.GET("/audit-events", func(ctx echo.Context) error {
		q := ctx.QueryParams()
		c.record("list", q)
		all := c.matching(ctx.Param("workspace_id"), q)
		off, _ := strconv.Atoi(q.Get("cursor"))
		limit, _ := strconv.Atoi(q.Get("limit"))
		end := min(len(all), off+limit)
		var next *string
		if end < len(all) {
			s := strconv.Itoa(end)
			next = &s
		}
		return ctx.JSON(http.StatusOK, map[string]any{"data": all[off:end], "next_cursor": next})
	})
	ws.GET("/audit-events/facets", func(ctx echo.Context) error {
		q := ctx.QueryParams()
		c.record("facets", q)
		counts := map[string]int{}
		for _, e := range c.matching(ctx.Param("workspace_id"), q) {
			counts[e["event"].(string)]++
		}
		var evs []map[string]any
		for n, k := range counts {
			evs = append(evs, map[string]any{"name": n, "count": k})
		}
		return ctx.JSON(http.StatusOK, map[string]any{"events": evs,
			"actors": []map[string]any{{"type": "user", "id": "usr_1", "name": "Alice", "count": len(c.events[ctx.Param("workspace_id")])}}})
	})
	ws.GET("/audit-events/timeline", func(ctx echo.Context) error {
		q := ctx.QueryParams()
		c.record("timeline", q)
		step := map[string]time.Duration{"minute": time.Minute, "5m": 5 * time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[q.Get("interval")]
		if step == 0 {
			return echo.NewHTTPError(http.StatusBadRequest, "interval")
		}
		counts := map[time.Time]int{}
		for _, e := range c.matching(ctx.Param("workspace_id"), q) {
			ts, _ := time.Parse(time.RFC3339Nano, e["timestamp"].(string))
			counts[ts.Truncate(step)]++
		}
		var buckets []map[string]any
		for t, n := range counts {
			buckets = append(buckets, map[string]any{"start": t.Format(time.RFC3339), "count": n})
		}
		return ctx.JSON(http.StatusOK, map[string]any{"interval": q.Get("interval"), "buckets": buckets})
	})
	ws.GET("/audit-events.csv", func(ctx echo.Context) error {
		q := ctx.QueryParams()
		c.record("csv", q)
		ctx.Response().Header().Set("Content-Disposition", `attachment; filename="audit-trail-ws_1.csv"`)
		ctx.Response().Header().Set("Content-Type", "text/csv; charset=utf-8")
		ctx.Response().WriteHeader(http.StatusOK)
		w := csv.NewWriter(ctx.Response())
		_ = w.Write([]string{"id", "timestamp", "event"})
		for _, e := range c.matching(ctx.Param("workspace_id"), q) {
			_ = w.Write([]string{e["id"].(string), e["timestamp"].(string), e["event"].(string)})
		}
		w.Flush()
		return w.Error()
	})
	ws.GET("/audit-events/:id", func(ctx echo.Context) error {
		for _, e := range c.events[ctx.Param("workspace_id")] {
			if e["id"] == ctx.Param("id") {
				return ctx.JSON(http.StatusOK, e)
			}
		}
		return envelope(ctx, http.StatusNotFound, "not_found", "no event with this id in the retention window")
	})
	ws.GET("/retention", func(ctx echo.Context) error {
		if len(ctx.QueryParams()) > 0 {
			return envelope(ctx, http.StatusBadRequest, "invalid_parameter", "unknown query parameter")
		}
		c.record("retention", nil)
		r, ok := retentionOf[ctx.Param("workspace_id")]
		if !ok {
			r = map[string]any{"days": 90, "legal_hold": false}
		}
		out := map[string]any{"workspace_id": ctx.Param("workspace_id"), "expires_before": nil}
		for k, v := range r {
			out[k] = v
		}
		if out["legal_hold"] == false {
			out["expires_before"] = time.Now().UTC().AddDate(0, 0, -out["days"].(int)).Format(time.RFC3339)
		}
		return ctx.JSON(http.StatusOK, out)
	})
	ws.GET("/forwarding", func(ctx echo.Context) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		return ctx.JSON(http.StatusOK, c.forwarding)
	})
	ws.PUT("/forwarding", func(ctx echo.Context) error {
		var body map[string]any
		if err := json.NewDecoder(ctx.Request().Body).Decode(&body); err != nil {
			return envelope(ctx, http.StatusBadRequest, "invalid_body", err.Error())
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		c.puts = append(c.puts, body)
		// Keys as GET shows them, by URL: an omitted key is the one stored
		// with the same URL (the current target's or a saved one's).
		keys := map[string]any{}
		prev := []any{c.forwarding["target"]}
		if s, ok := c.forwarding["saved_targets"].([]any); ok {
			prev = append(prev, s...)
		}
		for _, p := range prev {
			if m, ok := p.(map[string]any); ok && m["write_key"] != nil && m["write_key"] != "" {
				keys[m["url"].(string)] = m["write_key"]
			}
		}
		shown := func(t map[string]any) map[string]any {
			out := map[string]any{"url": t["url"], "write_key": keys[t["url"].(string)]}
			if out["write_key"] == nil {
				out["write_key"] = ""
			}
			if n, _ := t["name"].(string); n != "" {
				out["name"] = n
			}
			if k, ok := t["write_key"].(string); ok {
				out["write_key"] = "••••••" + k[len(k)-4:]
			}
			return out
		}
		c.forwarding = map[string]any{"enabled": body["enabled"], "target": shown(body["target"].(map[string]any)), "hard_failures_only": body["hard_failures_only"]}
		if s, ok := body["saved_targets"].([]any); ok {
			var saved []any
			for _, t := range s {
				saved = append(saved, shown(t.(map[string]any)))
			}
			c.forwarding["saved_targets"] = saved
		}
		return ctx.JSON(http.StatusOK, c.forwarding)
	})
	ws.POST("/forwarding/test", func(ctx echo.Context) error {
		var body struct{ Target string }
		_ = json.NewDecoder(ctx.Request().Body).Decode(&body)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.tests++
		c.testTargets = append(c.testTargets, body.Target)
		return ctx.JSON(http.StatusOK, map[string]any{"ok": true, "status": 200, "message": "delivered"})
	})
}

// fakeToken is a JWT-shaped token; the page reads its claims for display
// only, and the contract API checks nothing but its presence.
func fakeToken(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(claims)) + "." + enc([]byte("signature"))
}

// TestPageAgainstTheEndpointContracts drives the page in headless Chromium
// against an API that answers the optional endpoints (facets, CSV export,
// timeline, forwarding settings and test event) as their contracts say,
// and checks what the page shows and what it sends.
func TestPageAgainstTheEndpointContracts(t *testing.T) {
	browsertest.Require(t)
	api := newContractAPI(time.Now().UTC())
	e := echo.New()
	web.Register(e)
	api.register(e)
	e.GET("/openapi.json", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]any{"paths": map[string]any{"/v1/workspaces/{workspace_id}/audit-events": map[string]any{
			"get": map[string]any{"parameters": []any{map[string]any{"name": "q", "in": "query"}}}}}})
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)

	b := browsertest.New(t, 1366, 900)
	token := fakeToken(fmt.Sprintf(`{"sub":"usr_1","email":"alice@example.com","exp":%d,"workspaces":{"ws_1":"owner","ws_burst":"owner"}}`, time.Now().Add(time.Hour).Unix()))
	rows := `document.querySelectorAll('#rows tr').length`
	waitJS := func(expr, msg string) {
		t.Helper()
		require.Eventually(t, func() bool { return b.Check(expr) }, 20*time.Second, 50*time.Millisecond, msg)
	}
	const shots = "page-contracts"

	b.Do(chromedp.EmulateViewport(1366, 900), chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("token-input")),
		chromedp.SetValue(chromedp.ID("token-input"), token),
		chromedp.Click(chromedp.CSS(`#signin-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#rows tr`)))
	waitJS(rows+` === 13`, "all events listed")

	// The timeline comes from the timeline endpoint with the view's filters.
	b.Do(chromedp.WaitVisible(chromedp.CSS(`#chart .bar[role=button]`)))
	tq := api.lastQuery("timeline")
	require.Contains(t, []string{"hour", "day"}, tq.Get("interval"))
	require.NotEmpty(t, tq.Get("tz"))
	// Without a chosen range the chart spans the events (12 hours), per hour.
	c := browsertest.ChartOf(b)
	require.Equal(t, 13, c.Total)
	require.Equal(t, "hour", c.Interval)
	require.True(t, c.Spread(), "the bars spread over the chart: %+v", c)
	require.LessOrEqual(t, c.Bars, 14, "no empty day before or after the events: %+v", c)

	// Keyboard: Tab moves between rows with a visible focus ring, Enter on an event name opens it, Esc closes and gives the
	// focus back; Enter on a timeline bar narrows the time range.
	b.Do(chromedp.Focus(chromedp.CSS(`#rows tr:nth-child(1) .open-event`)), chromedp.KeyEvent(kb.Tab))
	require.True(t, browsertest.Eval[bool](b, `document.activeElement === document.querySelector('#rows tr:nth-child(2) .open-event')`), "Tab moves row to row")
	require.True(t, browsertest.Eval[bool](b, `(() => { const e = document.activeElement;
		return e.matches(':focus-visible') && getComputedStyle(e).outlineStyle === 'solid'; })()`), "a visible focus ring")
	b.Do(chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#detail .diff`)))
	require.Equal(t, "c-01", browsertest.Eval[string](b, `new URLSearchParams(location.search).get('id')`))
	// The drawer shows who sent the event.
	require.Equal(t, "Producer billing Credential legacy-0123456789ab", browsertest.Eval[string](b, `(() => {
		const s = [...document.querySelectorAll('#detail .detail-section')].find((x) => x.querySelector('h3').textContent === 'Sent by');
		return s ? [...s.querySelectorAll('dt, dd')].map((x) => x.textContent).join(' ') : 'no Sent by section'; })()`))
	b.Do(chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.ID("detail")))
	require.True(t, browsertest.Eval[bool](b, `document.activeElement === document.querySelector('#rows tr:nth-child(2) .open-event')`))
	b.Do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#chart .bar[role=button]').focus()`))
	require.True(t, browsertest.Eval[bool](b, `document.activeElement === document.querySelector('#chart .bar[role=button]')`), "focus on a bar")
	hour := browsertest.Eval[map[string]string](b, `({...document.activeElement.dataset})`)
	b.Do(chromedp.KeyEvent(kb.Enter))
	waitJS(`location.search.includes('since=') && location.search.includes('until=') && document.querySelector('#chart svg').dataset.interval === 'minute'`,
		"the bar's hour is the new range, and the chart shows it per minute")
	waitJS(rows+` === `+hour["count"], "the rows of the chosen hour")
	c = browsertest.ChartOf(b)
	require.Equal(t, hour["start"], c.Start, "the chart follows the chosen range")
	require.Equal(t, hour["end"], c.End, "the chart follows the chosen range")
	require.Equal(t, 60, c.Bars)
	require.Equal(t, hour["count"], strconv.Itoa(c.Total))
	b.Do(chromedp.NavigateBack())
	waitJS(`!location.search.includes('since=') && `+rows+` === 13`, "back returns to the previous view")

	// The Events dropdown shows the facet counts.
	b.Do(chromedp.Click(chromedp.ID("f-events-toggle")))
	waitJS(`!document.getElementById('f-events-menu').hidden`, "the Events dropdown opens")
	waitJS(`(() => { const i = document.querySelector('#f-events-list input[value="Warehouses Disabled"]');
		const c = i && i.closest('label').querySelector('.count'); return c && c.textContent === '4'; })()`, "facet count shown")
	require.Equal(t, "0", browsertest.Eval[string](b, `document.querySelector('#f-events-list input[value="Source Deleted"]').closest('label').querySelector('.count').textContent`))
	// Every catalogue name and every name in the facets, each once.
	names := []string{customEvent}
	for _, e := range catalogue.All() {
		names = append(names, e.Name)
	}
	require.ElementsMatch(t, names, browsertest.Eval[[]string](b, `[...document.querySelectorAll('#f-events-list input')].map(i => i.value)`))
	require.Equal(t, "1", browsertest.Eval[string](b, fmt.Sprintf(`document.querySelector('#f-events-list input[value=%q]').closest('label').querySelector('.count').textContent`, customEvent)))
	b.Screenshot(shots, "desktop-events-menu")
	b.Do(chromedp.Click(chromedp.CSS(`#f-events-list input[value="Warehouses Disabled"]`)), chromedp.Click(chromedp.ID("f-events-done")))
	waitJS(rows+` === 4`, "filtered")
	require.Equal(t, []string{"Warehouses Disabled"}, api.lastQuery("list")["event"])
	require.Empty(t, api.lastQuery("facets")["event"], "the facets leave out the event filter, to count the other names too")

	// Search goes to the API as q and into the URL.
	b.Do(chromedp.SendKeys(chromedp.ID("f-q"), "alice\n"))
	waitJS(`new URLSearchParams(location.search).get('q') === 'alice'`, "search in the URL")
	require.Eventually(t, func() bool { return api.lastQuery("list").Get("q") == "alice" }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"Warehouses Disabled"}, api.lastQuery("list")["event"], "search combines with the other filters")

	// Export CSV asks for exactly the filtered view and saves the answer.
	name, content := b.Download(chromedp.Click(chromedp.ID("export")))
	require.Equal(t, "audit-trail-ws_1.csv", name)
	records, err := csv.NewReader(strings.NewReader(string(content))).ReadAll()
	require.NoError(t, err)
	require.Len(t, records, 5)
	list, exported := api.lastQuery("list"), api.lastQuery("csv")
	list.Del("limit")
	list.Del("cursor")
	require.Equal(t, list, exported, "the export has the table's filters")

	// Forwarding: the masked key is shown, not sent back; saving without a
	// new key keeps it; the test event reports the target's answer.
	b.Do(chromedp.Click(chromedp.ID("open-forwarding")), chromedp.WaitVisible(chromedp.ID("fwd-url")))
	waitJS(`!document.getElementById('fwd-fields').disabled`, "settings loaded")
	require.Equal(t, "https://api.example.com", browsertest.Eval[string](b, `document.getElementById('fwd-url').value`))
	require.Equal(t, "", browsertest.Eval[string](b, `document.getElementById('fwd-key').value`))
	require.Contains(t, browsertest.Eval[string](b, `document.getElementById('fwd-key-hint').textContent`), "••••••3xyz")
	b.Do(chromedp.Click(chromedp.CSS(`label.switch`)), chromedp.Click(chromedp.CSS(`label.check[for="fwd-hard"]`)), chromedp.Click(chromedp.ID("fwd-save")))
	waitJS(`document.getElementById('fwd-message').textContent === 'Saved. Forwarding is on.'`, "saved")
	api.mu.Lock()
	put := api.puts[len(api.puts)-1]
	api.mu.Unlock()
	require.Equal(t, map[string]any{"enabled": true, "hard_failures_only": true, "target": map[string]any{"url": "https://api.example.com"}}, put,
		"an empty write key field keeps the stored key")
	require.Equal(t, "On", browsertest.Eval[string](b, `document.getElementById('forwarding-badge').textContent`))

	b.Do(chromedp.SetValue(chromedp.ID("fwd-key"), "wk_new_key_9876"), chromedp.Click(chromedp.ID("fwd-save")))
	waitJS(`document.getElementById('fwd-key-hint').textContent.includes('••••••9876')`, "new key masked")
	api.mu.Lock()
	require.Equal(t, "wk_new_key_9876", api.puts[len(api.puts)-1]["target"].(map[string]any)["write_key"])
	api.mu.Unlock()

	b.Do(chromedp.Click(chromedp.ID("fwd-test")))
	waitJS(`document.getElementById('fwd-outcome').textContent === 'Delivered: the target accepted the test event (HTTP 200).'`, "test event sent")
	b.Screenshot(shots, "desktop-forwarding")
	b.Do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.Screenshot(shots, "phone-forwarding")
	b.Do(chromedp.KeyEvent(kb.Escape), chromedp.WaitNotVisible(chromedp.ID("forwarding")), chromedp.EmulateViewport(1366, 900))
	api.mu.Lock()
	require.Equal(t, 1, api.tests)
	api.mu.Unlock()

	// Events packed into eight minutes, three days ago: the chart spans
	// them per minute, counted by the timeline endpoint, not a day with the
	// bars at one edge.
	b.Do(chromedp.Navigate(srv.URL+"/?ws=ws_burst"), chromedp.WaitVisible(chromedp.CSS(`#rows tr`)))
	waitJS(`document.querySelector('#chart svg') && document.querySelector('#chart svg').dataset.interval === 'minute'`, "a per-minute chart")
	c = browsertest.ChartOf(b)
	require.Equal(t, burstEvents, c.Total, "every event counted, beyond the first page")
	require.True(t, c.Spread(), "the bars spread over the chart: %+v", c)
	require.LessOrEqual(t, c.Bars, 12, "the chart spans the events: %+v", c)
	api.mu.Lock()
	timelineQueries := slices.Clone(api.queries["timeline"])
	api.mu.Unlock()
	asked := map[string]bool{}
	for _, q := range timelineQueries {
		asked[q.Get("interval")] = true
	}
	require.True(t, asked["minute"], "the minutes are counted by the endpoint: %v", asked)
	require.Contains(t, browsertest.Eval[string](b, `document.getElementById('chart-note').textContent`), "per minute")
	b.Screenshot(shots, "desktop-burst")

	// Phone width: the filters fold away behind a button that counts the
	// active ones, so that the first event shows without scrolling.
	b.Do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(srv.URL+"/?ws=ws_1&event=Warehouses+Disabled&q=alice"),
		chromedp.WaitVisible(chromedp.CSS(`#rows tr`)), chromedp.WaitVisible(chromedp.CSS(`#chart svg`)))
	waitJS(rows+` === 4`, "the filtered view")
	require.True(t, browsertest.Eval[bool](b, `document.getElementById('filters').hidden`), "the filters are folded away")
	toggle := browsertest.Eval[map[string]string](b, `(() => { const t = document.getElementById('filters-toggle');
		return {tag: t.tagName, expanded: t.getAttribute('aria-expanded'), controls: t.getAttribute('aria-controls'), text: t.textContent.replace(/\s+/g, ' ').trim()}; })()`)
	require.Equal(t, map[string]string{"tag": "BUTTON", "expanded": "false", "controls": "filters", "text": "Filters 2 active"}, toggle)
	require.True(t, browsertest.Eval[bool](b, browsertest.InFirstScreen(`#rows tr`)), "the first event card is on the first screen")
	require.True(t, browsertest.Eval[bool](b, browsertest.TextFits(`#workspace-value`)), "the workspace picker shows its whole text")
	require.Equal(t, "ws_1 · owner", browsertest.Eval[string](b, `document.getElementById('workspace-value').textContent`))
	note := browsertest.Eval[string](b, `document.getElementById('tz-note').textContent`)
	require.Contains(t, note, "Tap an event for its exact UTC time")
	require.NotContains(t, note, "hover", "no hover on a touch screen")
	b.Screenshot(shots, "phone-trail")
	b.Do(chromedp.Focus(chromedp.ID("filters-toggle")), chromedp.KeyEvent(kb.Enter))
	waitJS(`!document.getElementById('filters').hidden && document.getElementById('filters-toggle').getAttribute('aria-expanded') === 'true'`,
		"Enter on the button opens the filters")
	require.Equal(t, "Warehouses Disabled", browsertest.Eval[string](b, `document.getElementById('f-events-toggle').textContent`))
	b.Screenshot(shots, "phone-filters")
	b.Do(chromedp.KeyEvent(kb.Enter))
	waitJS(`document.getElementById('filters').hidden`, "and closes them again")
	b.Do(chromedp.EmulateViewport(1366, 900))
	waitJS(`!document.getElementById('filters').hidden && document.getElementById('filters-toggle').getAttribute('aria-expanded') === 'true'`,
		"open on a desktop screen")
	require.Contains(t, browsertest.Eval[string](b, `document.getElementById('tz-note').textContent`), "hover a time")

	b.RequireNoConsoleErrors()
}
