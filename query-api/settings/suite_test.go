package settings

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/httpserver/httpservertest"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// The hostile-input suite drives the settings handlers in process with a
// memory store and a recording emitter. For every request it asserts: no
// 5xx; an answer within stallLimit; a refused request changes no stored
// setting and records nothing; an accepted one changes only the settings of
// the workspace in the URL, records its audit event in that workspace, and
// stores what the forwarder can load; no error message shows Go internals.

// stallLimit bounds one settings request; the server's write timeout is
// longer, so a handler this slow would already be a stall.
const stallLimit = 5 * time.Second

// harness serves the settings routes in process (no sockets), fast enough
// for fuzzing.
type harness struct {
	e     *echo.Echo
	store *memStore
	rec   *recorder
	owner string
	// seeded is the store after every kind was set for ws_1 and ws_2.
	seeded map[string][]byte
}

func newHarness(tb testing.TB) *harness {
	h := &harness{store: &memStore{data: map[string][]byte{}}, rec: &recorder{}}
	h.e = httpserver.New(httpserver.Options{Name: "api"})
	Register(h.e, Options{Store: h.store, Emitter: h.rec, Verifier: auth.NewHMAC(secret),
		Now:    func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) },
		Recent: &fakeLister{events: map[string][]event.Event{"ws_1": previewEvents()}}})
	tok, err := auth.Mint(secret, "usr_1", "Alice", "alice@example.com",
		map[string]string{"ws_1": "owner", "ws_2": "owner", "ws_m": "member"}, time.Hour, time.Now())
	require.NoError(tb, err)
	h.owner = tok
	for _, ws := range []string{"ws_1", "ws_2", "ws_m"} {
		for _, kind := range trackingplan.Kinds {
			tok := h.owner
			if ws == "ws_m" {
				// Seed the member's workspace directly: the member may not.
				h.store.data[trackingplan.Key(ws, kind)] = h.store.data[trackingplan.Key("ws_1", kind)]
				continue
			}
			code, body := h.serve(tb, http.MethodPut, "/v1/workspaces/"+ws+"/"+kind, tok, seeds[kind], nil)
			require.Equal(tb, 200, code, "%s %s: %s", ws, kind, body)
		}
	}
	h.seeded = h.snapshot()
	return h
}

func (h *harness) snapshot() map[string][]byte {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	out := make(map[string][]byte, len(h.store.data))
	for k, v := range h.store.data {
		out[k] = v
	}
	return out
}

// reset restores the seeded settings and forgets recorded events.
func (h *harness) reset() {
	h.store.mu.Lock()
	h.store.data = make(map[string][]byte, len(h.seeded))
	for k, v := range h.seeded {
		h.store.data[k] = v
	}
	h.store.mu.Unlock()
	h.rec.mu.Lock()
	h.rec.events = nil
	h.rec.mu.Unlock()
}

// serve sends one request and returns its status and body, failing when
// the handler does not answer within stallLimit.
func (h *harness) serve(tb testing.TB, method, target, tok, body string, header http.Header) (int, []byte) {
	tb.Helper()
	req := httptest.NewRequestWithContext(context.Background(), method, "/", strings.NewReader(body))
	req.URL.RawQuery = ""
	req.RequestURI = target
	if u, err := req.URL.Parse(target); err == nil {
		req.URL = u
	} else {
		req.URL.Path, req.URL.RawPath = target, target
	}
	rr := httpservertest.ServeWithin(tb, h.e, req, tok, header, stallLimit)
	return rr.Code, rr.Body.Bytes()
}

// check sends one request and asserts the suite's invariants; ws is the
// workspace in the URL ("" when the URL names none that may change).
func (h *harness) check(tb testing.TB, method, target, ws, kind, tok, body string, header http.Header) int {
	tb.Helper()
	h.reset()
	code, out := h.serve(tb, method, target, tok, body, header)
	require.Less(tb, code, 500, "%s %s %q: %s", method, target, body, out)
	if len(out) > 0 {
		var m map[string]any
		require.NoError(tb, json.Unmarshal(out, &m), "answers are JSON: %s", out)
		if e, ok := m["error"].(map[string]any); ok {
			msg, _ := e["message"].(string)
			// A message may quote the request (a CEL compiler error shows
			// the condition): only what the request did not hold counts.
			for _, m := range goInternals.FindAllString(msg, -1) {
				require.Contains(tb, body+target, m, "the message shows Go internals: %s", msg)
			}
		}
	}
	after := h.snapshot()
	h.rec.mu.Lock()
	events := append(h.rec.events[:0:0], h.rec.events...)
	h.rec.mu.Unlock()
	if code != http.StatusOK || method != http.MethodPut {
		require.Equal(tb, h.seeded, after, "%s %s %q answered %d: nothing may change", method, target, body, code)
		require.Empty(tb, events, "%s %s: nothing is recorded", method, target)
		return code
	}
	for k, v := range after {
		if !bytes.Equal(h.seeded[k], v) {
			require.Equal(tb, trackingplan.Key(ws, kind), k, "only the settings in the URL change")
			requireLoadable(tb, kind, v)
		}
	}
	for _, ev := range events {
		require.Equal(tb, ws, ev.WorkspaceID, "the change is recorded in its own workspace")
	}
	return code
}

// requireLoadable asserts that the forwarder can load a stored record.
func requireLoadable(tb testing.TB, kind string, raw []byte) {
	tb.Helper()
	var rec trackingplan.Record
	require.NoError(tb, json.Unmarshal(raw, &rec))
	switch kind {
	case trackingplan.KindForwarding:
		var f trackingplan.Forwarding
		require.NoError(tb, trackingplan.Decode(rec.Settings, &f))
		require.NoError(tb, f.Validate())
	case trackingplan.KindPlan:
		var p trackingplan.Plan
		require.NoError(tb, trackingplan.Decode(rec.Settings, &p))
		_, err := p.Compile()
		require.NoError(tb, err)
	case trackingplan.KindFilters:
		var f trackingplan.Filters
		require.NoError(tb, trackingplan.Decode(rec.Settings, &f))
		_, err := f.Compile()
		require.NoError(tb, err)
	case trackingplan.KindAlerts:
		var a trackingplan.Alerts
		require.NoError(tb, trackingplan.Decode(rec.Settings, &a))
		require.NoError(tb, a.Validate())
	}
}

func nested(open, leaf, close string, n int) string {
	return strings.Repeat(open, n) + leaf + strings.Repeat(close, n)
}

func TestSettingsHostileInputs(t *testing.T) {
	h := newHarness(t)
	owner := h.owner
	member, err := auth.Mint(secret, "usr_2", "Bob", "bob@example.com", map[string]string{"ws_1": "member"}, time.Hour, time.Now())
	require.NoError(t, err)
	other, err := auth.Mint(secret, "usr_3", "Eve", "eve@example.com", map[string]string{"ws_9": "owner"}, time.Hour, time.Now())
	require.NoError(t, err)
	expired, err := auth.Mint(secret, "usr_1", "Alice", "alice@example.com", map[string]string{"ws_1": "owner"}, time.Hour, time.Now().Add(-2*time.Hour))
	require.NoError(t, err)
	forged, err := auth.Mint([]byte("another-secret-another-secret-1234"), "usr_1", "Alice", "alice@example.com", map[string]string{"ws_1": "owner"}, time.Hour, time.Now())
	require.NoError(t, err)

	type tc struct {
		name, method, path, ws, kind, tok, body string
		header                                  http.Header
		want                                    int // 0: any status below 500
	}
	put := func(name, kind, body string, want int) tc {
		return tc{name: name, method: http.MethodPut, path: "/v1/workspaces/ws_1/" + kind, ws: "ws_1", kind: kind, tok: h.owner, body: body, want: want}
	}
	post := func(name, route, body string, want int) tc {
		return tc{name: name, method: http.MethodPost, path: "/v1/workspaces/ws_1/" + route, tok: h.owner, body: body, want: want}
	}
	cases := []tc{
		// Reaching another tenant's settings.
		{name: "workspace not in the token", method: "PUT", path: "/v1/workspaces/ws_9/forwarding", tok: h.owner, body: seeds["forwarding"], want: 404},
		{name: "member of the workspace", method: "PUT", path: "/v1/workspaces/ws_1/alerts", tok: member, body: `{"enabled": false}`, want: 403},
		{name: "member role in the token", method: "PUT", path: "/v1/workspaces/ws_m/alerts", tok: h.owner, body: `{"enabled": false}`, want: 403},
		{name: "owner of another workspace", method: "PUT", path: "/v1/workspaces/ws_1/forwarding", tok: other, body: `{}`, want: 404},
		{name: "expired token", method: "PUT", path: "/v1/workspaces/ws_1/forwarding", tok: expired, body: `{}`, want: 401},
		{name: "token signed with another key", method: "PUT", path: "/v1/workspaces/ws_1/forwarding", tok: forged, body: `{}`, want: 401},
		{name: "no token", method: "PUT", path: "/v1/workspaces/ws_1/forwarding", body: `{}`, want: 401},
		{name: "encoded slash in the workspace", method: "PUT", path: "/v1/workspaces/ws_1%2F..%2Fws_2/forwarding", tok: h.owner, body: `{}`},
		{name: "dot segments", method: "PUT", path: "/v1/workspaces/ws_1/../ws_9/forwarding", tok: h.owner, body: `{}`},
		{name: "control character in the workspace", method: "PUT", path: "/v1/workspaces/ws_1%00/forwarding", tok: h.owner, body: `{}`},
		{name: "workspace in the body", method: "PUT", path: "/v1/workspaces/ws_1/alerts", ws: "ws_1", kind: "alerts", tok: h.owner, body: `{"workspace_id": "ws_2", "enabled": false}`, want: 400},
		{name: "settings of another kind", method: "PUT", path: "/v1/workspaces/ws_1/alerts", ws: "ws_1", kind: "alerts", tok: h.owner, body: seeds["forwarding"], want: 400},
		{name: "test call for another workspace", method: "POST", path: "/v1/workspaces/ws_9/forwarding/test", tok: h.owner, want: 404},
		// Bodies.
		put("null", "forwarding", `null`, 400),
		put("empty", "alerts", ``, 400),
		put("array", "destination-filters", `[{"filters": []}]`, 400),
		put("two objects", "tracking-plan", `{} {}`, 400),
		put("trailing garbage", "alerts", `{"enabled": false}x`, 400),
		put("invalid UTF-8", "alerts", "{\"enabled\": false, \"events\": [\"Source \xff Created\"]}", 400),
		put("BOM", "alerts", "\ufeff{\"enabled\": false}", 400),
		put("deep JSON", "alerts", `{"enabled": false, "x": `+nested(`[`, `1`, `]`, 100_000)+`}`, 400),
		put("deep schema", "tracking-plan", `{"events": {"Source Created": {"properties": `+nested(`{"type": "object", "properties": {"a": `, `{}`, `}}`, 1500)+`}}}`, 400),
		put("deep condition", "destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "`+nested("(", "true", ")", 5000)+`", "action": "drop"}]}`, 400),
		put("long condition", "destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "`+strings.Repeat("true && ", 2000)+`true", "action": "drop"}]}`, 400),
		put("costly condition", "destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, a+b+c+d > 0))))", "action": "drop"}]}`, 0),
		put("many filters", "destination-filters", `{"filters": [`+strings.TrimSuffix(strings.Repeat(`{"name": "x", "enabled": true, "if": "true", "action": "drop"},`, 5000), ",")+`]}`, 400),
		put("many plan events", "tracking-plan", func() string {
			var b strings.Builder
			b.WriteString(`{"events": {`)
			for i := range 5000 {
				fmt.Fprintf(&b, `"Event %d Created": {},`, i)
			}
			return strings.TrimSuffix(b.String(), ",") + `}}`
		}(), 400),
		put("many alert events", "alerts", `{"enabled": false, "events": [`+strings.TrimSuffix(strings.Repeat(`"Source Created",`, 5000), ",")+`]}`, 400),
		put("huge number", "destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "true", "action": "sample", "percent": 1e999999999}]}`, 400),
		put("NaN percent", "destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "true", "action": "sample", "percent": "NaN"}]}`, 400),
		put("write key of NULs", "forwarding", `{"enabled": true, "target": {"url": "https://api.example.com", "write_key": "\u0000\u0000"}}`, 400),
		put("header injection in the key", "forwarding", `{"enabled": true, "target": {"url": "https://api.example.com", "write_key": "k\r\nX-Evil: 1"}}`, 400),
		put("long write key", "forwarding", `{"enabled": true, "target": {"url": "https://api.example.com", "write_key": "`+strings.Repeat("k", 100_000)+`"}}`, 400),
		put("unknown event in the plan", "tracking-plan", `{"events": {"<script>alert(1)</script>": {}}}`, 400),
		put("unknown event in a filter", "destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "event == 'DROP TABLE events'", "action": "drop"}]}`, 400),
		put("empty condition", "destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "", "action": "drop"}]}`, 400),
		put("properties on drop", "destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "true", "action": "drop", "properties": ["a"]}]}`, 400),
		put("schema with a remote reference", "tracking-plan", `{"events": {"Source Created": {"properties": {"$ref": "http://169.254.169.254/latest/meta-data"}}}}`, 400),
		put("valid change", "alerts", `{"enabled": false, "events": ["Source Created"]}`, 200),
		// The checks and the preview store and record nothing, whatever
		// they are sent.
		post("condition check: deep", "destination-filters/validate", `{"if": "`+nested("(", "true", ")", 2000)+`"}`, 200),
		post("condition check: too long", "destination-filters/validate", `{"if": "`+nested("(", "true", ")", 5000)+`"}`, 400),
		post("condition check: costly", "destination-filters/validate", `{"if": "[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, a+b+c+d > 0))))"}`, 200),
		post("condition check: regex from the event", "destination-filters/validate", `{"if": "properties.a.matches(properties.b)"}`, 200),
		post("condition check: NUL", "destination-filters/validate", `{"if": "event == '\u0000'"}`, 400),
		post("condition check: null", "destination-filters/validate", `null`, 400),
		post("condition check: deep JSON", "destination-filters/validate", `{"if": "true", "x": `+nested(`[`, `1`, `]`, 100_000)+`}`, 0),
		post("schema check: deep", "tracking-plan/validate", `{"event": "Source Created", "properties": `+nested(`{"type": "object", "properties": {"a": `, `{}`, `}}`, 1500)+`}`, 200),
		post("schema check: remote reference", "tracking-plan/validate", `{"event": "Source Created", "properties": {"$ref": "http://169.254.169.254/latest/meta-data"}}`, 200),
		post("schema check: costly regex", "tracking-plan/validate", `{"event": "Source Created", "properties": {"pattern": "(.*){1000}b"}}`, 200),
		post("schema check: script as the event", "tracking-plan/validate", `{"event": "<script>alert(1)</script>", "properties": {}}`, 200),
		post("preview: costly filters", "forwarding/preview", `{"destination_filters": {"filters": [{"name": "x", "enabled": true, "if": "[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, a+b+c+d > 0))))", "action": "drop"}]}}`, 0),
		post("preview: deep schema", "forwarding/preview", `{"tracking_plan": {"events": {"Source Created": {"properties": `+nested(`{"type": "object", "properties": {"a": `, `{}`, `}}`, 1500)+`}}}}`, 400),
		post("preview: many filters", "forwarding/preview", `{"destination_filters": {"filters": [`+strings.TrimSuffix(strings.Repeat(`{"name": "x", "enabled": true, "if": "true", "action": "drop"},`, 5000), ",")+`]}}`, 400),
		post("preview: huge limit", "forwarding/preview", `{"limit": 1e999999999}`, 400),
		post("preview: negative limit", "forwarding/preview", `{"limit": -1}`, 400),
		post("preview: valid", "forwarding/preview", `{"limit": 3}`, 200),
		{name: "preview of another workspace", method: "POST", path: "/v1/workspaces/ws_9/forwarding/preview", tok: h.owner, body: `{}`, want: 404},
		{name: "preview by a member", method: "POST", path: "/v1/workspaces/ws_1/forwarding/preview", tok: member, body: `{}`, want: 403},
		{name: "condition check by a member", method: "POST", path: "/v1/workspaces/ws_m/destination-filters/validate", tok: h.owner, body: `{"if": "true"}`, want: 403},
		// Methods and headers.
		{name: "DELETE", method: "DELETE", path: "/v1/workspaces/ws_1/forwarding", tok: h.owner},
		{name: "PATCH", method: "PATCH", path: "/v1/workspaces/ws_1/forwarding", tok: h.owner, body: `{"enabled": false}`},
		{name: "override header", method: "POST", path: "/v1/workspaces/ws_1/forwarding", tok: h.owner, body: `{}`, header: http.Header{"X-Http-Method-Override": {"PUT"}}},
		{name: "bearer in lower case", method: "GET", path: "/v1/workspaces/ws_1/forwarding", header: http.Header{"Authorization": {"bearer " + h.owner}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Each case has its own harness: a handler that overran
			// stallLimit cannot change what the next case sees.
			h := h
			if c.name != "valid change" {
				h = newHarness(t)
				h.owner = owner
			}
			ws, kind := c.ws, c.kind
			if ws == "" {
				ws, kind = "-", "-" // nothing may change
			}
			if c.method == http.MethodPost {
				// Allowed to answer 200: the suite asserts that nothing changed.
				ws, kind = "-", "-"
			}
			code := h.check(t, c.method, c.path, ws, kind, c.tok, c.body, c.header)
			if c.want != 0 {
				require.Equal(t, c.want, code)
			}
		})
	}
}

// FuzzSettingsChecks sends arbitrary bodies to the condition and schema
// checks and the preview and asserts the suite's invariants: no 5xx, no
// stall, nothing stored or recorded.
func FuzzSettingsChecks(f *testing.F) {
	routes := []string{"destination-filters/validate", "tracking-plan/validate", "forwarding/preview"}
	f.Add(uint8(0), []byte(`{"if": "event == 'Source Created' && has(properties.kind)"}`))
	f.Add(uint8(0), []byte(`{"if": "properties.a.matches('^x+$')"}`))
	f.Add(uint8(1), []byte(`{"event": "Source Created", "properties": {"type": "object", "patternProperties": {"^a": {"type": "string"}}}}`))
	f.Add(uint8(1), []byte(`{"event": "Source Created", "properties": {"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}}`))
	f.Add(uint8(2), []byte(`{"destination_filters": {"filters": [{"name": "a", "enabled": true, "if": "true", "action": "allow_properties", "properties": ["a.b"]}]}, "limit": 2}`))
	f.Add(uint8(2), []byte(`{"tracking_plan": {"events": {"Source Deleted": {"properties": {"required": ["kind"]}}}, "on_violation": "block"}, "hard_failures_only": true}`))
	h := newHarness(f)
	f.Fuzz(func(t *testing.T, r uint8, body []byte) {
		route := routes[int(r)%len(routes)]
		code := h.check(t, http.MethodPost, "/v1/workspaces/ws_1/"+route, "-", "-", h.owner, string(body), nil)
		require.Contains(t, []int{200, 400, 413}, code)
	})
}

// FuzzSettingsPut sends arbitrary bodies to every settings kind and
// asserts the suite's invariants.
func FuzzSettingsPut(f *testing.F) {
	for i, kind := range trackingplan.Kinds {
		f.Add(uint8(i), []byte(seeds[kind]))
		f.Add(uint8(i), []byte(`null`))
		f.Add(uint8(i), []byte(`{}`))
	}
	f.Add(uint8(1), []byte(`{"events": {"Source Created": {"properties": {"type": "object", "properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"type": "string"}}}}}}`))
	f.Add(uint8(2), []byte(`{"filters": [{"name": "a", "enabled": true, "if": "event in ['Source Created'] && properties.x > 1", "action": "allow_properties", "properties": ["a.b"]}]}`))
	f.Add(uint8(2), []byte(`{"filters": [{"name": "a", "enabled": true, "if": "event == 'Nope'", "action": "sample", "percent": 5}]}`))
	f.Add(uint8(3), []byte(`{"enabled": false, "webhook_url": "", "events": ["Source Created"]}`))
	f.Add(uint8(0), []byte(`{"enabled": true, "target": {"url": "https://api.example.com", "write_key": "****abcd"}}`))
	f.Add(uint8(0), []byte(`{"enabled": true, "target": {"name": "B", "url": "https://b.example.com"}, "saved_targets": [{"name": "A", "url": "https://api.example.com", "write_key": "****abcd"}]}`))
	h := newHarness(f)
	f.Fuzz(func(t *testing.T, k uint8, body []byte) {
		kind := trackingplan.Kinds[int(k)%len(trackingplan.Kinds)]
		code := h.check(t, http.MethodPut, "/v1/workspaces/ws_1/"+kind, "ws_1", kind, h.owner, string(body), nil)
		require.Contains(t, []int{200, 400, 413}, code)
		if code == http.StatusOK {
			code, out := h.serve(t, http.MethodGet, "/v1/workspaces/ws_1/"+kind, h.owner, "", nil)
			require.Equal(t, http.StatusOK, code, "what was saved can be shown: %s", out)
		}
	})
}
