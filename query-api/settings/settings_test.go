package settings

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/egress"
	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

var secret = []byte("test-secret-test-secret-test-secret!")

type memStore struct {
	mu   sync.Mutex
	data map[string][]byte
	fail error
}

func (m *memStore) Get(k string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.data[k]
	return v, ok
}

func (m *memStore) Put(_ context.Context, k string, v []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.data[k] = v
	return nil
}

var loaded = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (m *memStore) Ready() <-chan struct{} { return loaded }

type recorder struct {
	mu     sync.Mutex
	events []event.Event
	fail   error
}

func (r *recorder) Emit(_ context.Context, ev event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	if err := (event.Policy{}).Validate(&ev); err != nil {
		return err
	}
	r.events = append(r.events, ev)
	return nil
}

type fixture struct {
	srv   *httptest.Server
	store *memStore
	rec   *recorder
	owner string
}

// newFixture serves the settings routes over a memory store; opts adjust
// the options (allow sets the outbound allow-list).
func newFixture(t *testing.T, opts ...func(*Options)) *fixture {
	f := &fixture{store: &memStore{data: map[string][]byte{}}, rec: &recorder{}}
	e := httpserver.New(httpserver.Options{Name: "api"})
	o := Options{Store: f.store, Emitter: f.rec, Verifier: auth.NewHMAC(secret),
		Now: func() time.Time { return time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) }}
	for _, opt := range opts {
		opt(&o)
	}
	Register(e, o)
	f.srv = httptest.NewServer(e)
	t.Cleanup(f.srv.Close)
	f.owner = token(t, map[string]string{"ws_1": "owner", "ws_2": "member"})
	return f
}

func token(t *testing.T, ws map[string]string) string {
	tok, err := auth.Mint(secret, "usr_1", "Alice", "alice@example.com", ws, time.Hour, time.Now())
	require.NoError(t, err)
	return tok
}

func (f *fixture) do(t *testing.T, method, path, tok, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), string(b))
	return resp.StatusCode, m
}

func errField(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	s, _ := e["field"].(string)
	return s
}

func TestForwardingIsOffByDefaultAndNeverShowsTheKey(t *testing.T) {
	f := newFixture(t)
	code, body := f.do(t, "GET", "/v1/workspaces/ws_1/forwarding", f.owner, "")
	require.Equal(t, 200, code)
	require.Equal(t, false, body["enabled"])

	code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
		`{"enabled": true, "target": {"url": "https://api.example.com", "write_key": "wk_secret_abcd"}, "hard_failures_only": true}`)
	require.Equal(t, 200, code, body)
	require.Equal(t, "****abcd", body["target"].(map[string]any)["write_key"])

	code, body = f.do(t, "GET", "/v1/workspaces/ws_1/forwarding", f.owner, "")
	require.Equal(t, 200, code)
	require.Equal(t, "****abcd", body["target"].(map[string]any)["write_key"])
	require.NotContains(t, mustJSON(body), "wk_secret")

	var stored trackingplan.Forwarding
	ok, err := Load(f.store, "ws_1", trackingplan.KindForwarding, &stored)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "wk_secret_abcd", stored.Target.WriteKey, "the forwarder needs the real key")

	require.Len(t, f.rec.events, 1)
	ev := f.rec.events[0]
	require.Equal(t, "Audit Forwarding Enabled", ev.Event)
	require.Equal(t, "usr_1", ev.Actor.ID)
	require.Equal(t, "audit_forwarding", ev.Resource.Type)
	require.JSONEq(t, `"****abcd"`, string(ev.Changes["target.write_key"].New))
	require.JSONEq(t, `false`, string(ev.Changes["enabled"].Old))
	require.NotContains(t, mustJSON(ev), "wk_secret")

	// Round-tripping the masked key keeps the key; disabling is its own event.
	code, _ = f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
		`{"enabled": false, "target": {"url": "https://api.example.com", "write_key": "****abcd"}, "hard_failures_only": true}`)
	require.Equal(t, 200, code)
	_, _ = Load(f.store, "ws_1", trackingplan.KindForwarding, &stored)
	require.Equal(t, "wk_secret_abcd", stored.Target.WriteKey)
	require.Equal(t, "Audit Forwarding Disabled", f.rec.events[1].Event)
	require.NotContains(t, f.rec.events[1].Changes, "target.write_key")

	// Unchanged: no audit event.
	code, _ = f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
		`{"enabled": false, "target": {"url": "https://api.example.com"}, "hard_failures_only": true}`)
	require.Equal(t, 200, code)
	require.Len(t, f.rec.events, 2)

	code, _ = f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
		`{"enabled": false, "target": {"url": "https://api.example.com"}, "hard_failures_only": false}`)
	require.Equal(t, 200, code)
	require.Equal(t, "Audit Forwarding Modified", f.rec.events[2].Event)
}

// A saved write key is only ever sent to the URL it was saved with: an
// owner who points the target elsewhere must enter the key again, so the
// key cannot be obtained by redirecting it to a server of one's own.
func TestANewTargetURLNeedsTheWriteKeyAgain(t *testing.T) {
	f := newFixture(t)
	code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
		`{"enabled": true, "target": {"url": "https://api.example.com", "write_key": "wk_secret_abcd"}}`)
	require.Equal(t, 200, code, body)
	stored := func() trackingplan.Forwarding {
		var s trackingplan.Forwarding
		_, err := Load(f.store, "ws_1", trackingplan.KindForwarding, &s)
		require.NoError(t, err)
		return s
	}

	for _, key := range []string{``, `, "write_key": "****abcd"`} {
		code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
			`{"enabled": true, "target": {"url": "https://elsewhere.example.net"`+key+`}}`)
		require.Equal(t, 400, code, body)
		require.Equal(t, "target.write_key", errField(body))
		require.Equal(t, "https://api.example.com", stored().Target.URL, "nothing changed")
	}
	require.Len(t, f.rec.events, 1, "a refused change is not recorded")

	// A trailing slash is the same target; the key is kept.
	code, _ = f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
		`{"enabled": true, "target": {"url": "https://api.example.com/"}}`)
	require.Equal(t, 200, code)
	require.Equal(t, "wk_secret_abcd", stored().Target.WriteKey)

	// With the key entered again, the new URL is accepted.
	code, _ = f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
		`{"enabled": true, "target": {"url": "https://elsewhere.example.net", "write_key": "wk_other_9876"}}`)
	require.Equal(t, 200, code)
	require.Equal(t, "wk_other_9876", stored().Target.WriteKey)

	// Disabled, a new URL without a key drops the stored key.
	code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
		`{"enabled": false, "target": {"url": "https://third.example.org"}}`)
	require.Equal(t, 200, code, body)
	require.Empty(t, stored().Target.WriteKey)
	last := f.rec.events[len(f.rec.events)-1]
	require.JSONEq(t, `"****9876"`, string(last.Changes["target.write_key"].Old))
	require.JSONEq(t, `""`, string(last.Changes["target.write_key"].New))
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestBadSettingsAre400NamingTheField(t *testing.T) {
	f := newFixture(t)
	cases := []struct{ path, body, field string }{
		{"forwarding", `{"enabled": true, "target": {"url": "ftp://x", "write_key": "k"}}`, "target.url"},
		{"forwarding", `{"enabled": true, "target": {"url": "https://x"}}`, "target.write_key"},
		{"forwarding", `{"enabled": "yes"}`, "enabled"},
		{"forwarding", `{"enabled": true, "colour": 1}`, "colour"},
		{"forwarding", `{"enabled": tr`, ""},
		{"tracking-plan", `{"events": {"Source Created": {"properties": {"type": 12}}}}`, "events.Source Created.properties"},
		{"tracking-plan", `{"unplanned_events": "drop"}`, "unplanned_events"},
		{"destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "event == ", "action": "drop"}]}`, "filters[0].if"},
		{"destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "event", "action": "drop"}]}`, "filters[0].if"},
		{"destination-filters", `{"filters": [{"name": "x", "action": "sample", "percent": -1}]}`, "filters[0].percent"},
		{"alerts", `{"enabled": true, "webhook_url": "https://hooks.example.com/T/B/x"}`, "events"},
		{"alerts", `{"enabled": true, "webhook_url": "hooks", "events": ["Source Created"]}`, "webhook_url"},
		// A null would read as the default and reset the field unseen.
		{"tracking-plan", `{"on_violation": null}`, "on_violation"},
		{"tracking-plan", `{"events": null}`, "events"},
		{"destination-filters", `{"filters": null}`, "filters"},
		{"destination-filters", `{"filters": [{"name": "x", "enabled": true, "if": "true", "action": "sample", "percent": null}]}`, "filters[0].percent"},
		{"forwarding", `{"target": {"url": null}}`, "target.url"},
		{"alerts", `{"events": [null]}`, "events[0]"},
	}
	for _, c := range cases {
		code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/"+c.path, f.owner, c.body)
		require.Equal(t, 400, code, "%s %s: %v", c.path, c.body, body)
		require.Equal(t, c.field, errField(body), "%s %s: %v", c.path, c.body, body)
		require.NotEmpty(t, body["error"].(map[string]any)["message"])
	}
	code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/destination-filters", f.owner,
		`{"filters": [{"name": "x", "enabled": true, "if": "nope == 1", "action": "drop"}]}`)
	require.Equal(t, 400, code)
	require.Contains(t, body["error"].(map[string]any)["message"], "undeclared reference to 'nope'", "the compiler's message")
	require.Empty(t, f.rec.events, "nothing invalid is recorded")
	require.Empty(t, f.store.data, "nothing invalid is stored")
}

func TestOnlyOwnersOfTheWorkspace(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"forwarding", "tracking-plan", "destination-filters", "alerts"} {
		code, _ := f.do(t, "GET", "/v1/workspaces/ws_1/"+path, "", "")
		require.Equal(t, 401, code)
		code, _ = f.do(t, "PUT", "/v1/workspaces/ws_2/"+path, f.owner, `{}`)
		require.Equal(t, 403, code, "a member may not change settings")
		code, _ = f.do(t, "GET", "/v1/workspaces/ws_3/"+path, f.owner, "")
		require.Equal(t, 404, code)
	}
	require.Empty(t, f.store.data)
}

func TestPlanFiltersAndAlertsRoundTripAndAreAudited(t *testing.T) {
	f := newFixture(t)
	code, body := f.do(t, "GET", "/v1/workspaces/ws_1/tracking-plan", f.owner, "")
	require.Equal(t, 200, code)
	require.Equal(t, "allow", body["unplanned_events"])

	plan := `{"events": {"Source Created": {"properties": {"type": "object", "properties": {"kind": {"type": "string"}}}}}, "unplanned_events": "block", "unplanned_properties": "omit"}`
	code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/tracking-plan", f.owner, plan)
	require.Equal(t, 200, code, body)
	require.Equal(t, "allow", body["on_violation"])
	code, body = f.do(t, "GET", "/v1/workspaces/ws_1/tracking-plan", f.owner, "")
	require.Equal(t, 200, code)
	require.Equal(t, "block", body["unplanned_events"])
	require.Contains(t, body["events"], "Source Created")
	ev := f.rec.events[0]
	require.Equal(t, "Tracking Plan Modified", ev.Event)
	require.Contains(t, ev.Changes, "events.Source Created")
	require.Contains(t, ev.Changes, "unplanned_events")

	code, _ = f.do(t, "PUT", "/v1/workspaces/ws_1/destination-filters", f.owner,
		`{"filters": [{"name": "no tokens", "enabled": true, "if": "actor.type == 'access_token'", "action": "drop"}]}`)
	require.Equal(t, 200, code)
	require.Equal(t, "Destination Filters Modified", f.rec.events[1].Event)
	require.Contains(t, f.rec.events[1].Changes, "filters.no tokens")

	code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/alerts", f.owner,
		`{"enabled": true, "webhook_url": "https://hooks.example.com/services/T0/B0/secretpath", "events": ["Warehouses Disabled"]}`)
	require.Equal(t, 200, code, body)
	require.Equal(t, "https://hooks.example.com/****path", body["webhook_url"])
	require.Equal(t, "Alert Webhook Modified", f.rec.events[2].Event)
	require.NotContains(t, mustJSON(f.rec.events[2]), "secretpath")
}

func TestFailuresAreServiceUnavailableAndChangeNothing(t *testing.T) {
	f := newFixture(t)
	f.rec.fail = errors.New("kafka down")
	code, body := f.do(t, "PUT", "/v1/workspaces/ws_1/alerts", f.owner, `{"enabled": false}`)
	require.Equal(t, 200, code, "no change, nothing to record: %v", body)
	code, _ = f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner,
		`{"enabled": true, "target": {"url": "https://x.example.com", "write_key": "key"}}`)
	require.Equal(t, 503, code)
	require.Empty(t, f.store.data, "a change is never stored without its audit event")
}

type loadingStore struct{ memStore }

func (*loadingStore) Ready() <-chan struct{} { return make(chan struct{}) }

func TestUnavailableUntilSettingsAreLoaded(t *testing.T) {
	e := httpserver.New(httpserver.Options{Name: "api"})
	Register(e, Options{Store: &loadingStore{memStore{data: map[string][]byte{}}}, Emitter: &recorder{}, Verifier: auth.NewHMAC(secret)})
	srv := httptest.NewServer(e)
	defer srv.Close()
	f := &fixture{srv: srv}
	code, body := f.do(t, "GET", "/v1/workspaces/ws_1/forwarding", token(t, map[string]string{"ws_1": "owner"}), "")
	require.Equal(t, 503, code, "never answer defaults for settings not loaded yet: %v", body)
}

// allow sets the outbound allow-list (exact ip:port of a test's local
// targets).
func allow(addrs ...string) func(*Options) {
	return func(o *Options) { o.Egress = egress.Config{AllowedTargets: addrs} }
}
