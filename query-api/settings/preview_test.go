package settings

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/trackingplan"
)

// fakeLister serves a workspace's newest events from memory and records
// what it was asked.
type fakeLister struct {
	mu     sync.Mutex
	events map[string][]event.Event
	asked  []int
	block  chan struct{} // when set, List waits for it to close
	inList chan struct{} // when set, closed once List is entered
}

func (l *fakeLister) List(ctx context.Context, f store.Filter, _ *store.Cursor, limit int) (store.Page, error) {
	l.mu.Lock()
	l.asked = append(l.asked, limit)
	evs := l.events[f.WorkspaceID]
	block, in := l.block, l.inList
	l.mu.Unlock()
	if in != nil {
		close(in)
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return store.Page{}, ctx.Err()
		}
	}
	if len(evs) > limit {
		evs = evs[:limit]
	}
	return store.Page{Events: evs}, nil
}

// previewEvents are ten events of ws_1, newest first: four Source Created
// (two with a test property), three Source Deleted (one without kind), two
// Audience Run Failed (one a retry, one final) and a Destination Created.
func previewEvents() []event.Event {
	ev := func(i int, name, props string) event.Event {
		return event.Event{ID: fmt.Sprintf("evt_%02d", i), WorkspaceID: "ws_1", Event: name,
			Actor: event.Actor{Type: "user", ID: "usr_1"}, Properties: json.RawMessage(props)}
	}
	return []event.Event{
		ev(0, "Source Created", `{"test": true}`),
		ev(1, "Source Created", `{}`),
		ev(2, "Source Deleted", `{"kind": "web"}`),
		ev(3, "Source Deleted", `{}`),
		ev(4, "Audience Run Failed", `{"attempt": 1, "max_attempts": 3}`),
		ev(5, "Audience Run Failed", `{"attempt": 3, "max_attempts": 3}`),
		ev(6, "Source Created", `{"test": true}`),
		ev(7, "Source Deleted", `{"kind": 7}`),
		ev(8, "Destination Created", `{}`),
		ev(9, "Source Created", `{}`),
	}
}

func previewFixture(t *testing.T) (*fixture, *fakeLister) {
	l := &fakeLister{events: map[string][]event.Event{"ws_1": previewEvents()}}
	return newFixture(t, func(o *Options) { o.Recent = l }), l
}

func TestPreviewCountsWhatTheSavedSettingsWouldDrop(t *testing.T) {
	f, l := previewFixture(t)
	code, body := f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/preview", f.owner, `{}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, float64(10), body["events"])
	require.Equal(t, float64(10), body["kept"], "no settings saved: everything is kept")
	require.Equal(t, float64(0), body["dropped"])
	require.Equal(t, []int{MaxPreviewEvents}, l.asked, "the newest 500 by default")

	code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/destination-filters", f.owner,
		`{"filters": [{"name": "no tests", "enabled": true, "if": "event == 'Source Created' && has(properties.test)", "action": "drop"},
		              {"name": "off", "enabled": false, "if": "true", "action": "drop"}]}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/tracking-plan", f.owner,
		`{"events": {"Source Deleted": {"properties": {"type": "object", "required": ["kind"], "properties": {"kind": {"type": "string"}}}}},
		  "on_violation": "block"}`)
	require.Equal(t, http.StatusOK, code, body)
	code, body = f.do(t, "PUT", "/v1/workspaces/ws_1/forwarding", f.owner, `{"hard_failures_only": true}`)
	require.Equal(t, http.StatusOK, code, body)
	f.rec.mu.Lock()
	recorded := len(f.rec.events)
	f.rec.mu.Unlock()

	code, body = f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/preview", f.owner, `{}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, float64(10), body["events"])
	require.Equal(t, true, body["complete"])
	require.Equal(t, float64(5), body["dropped"], "2 tests, 2 violations blocked, 1 retried failure")
	require.Equal(t, float64(5), body["kept"])
	require.Equal(t, float64(2), body["violations"])
	require.Equal(t, map[string]any{"filter": float64(2), "violation": float64(2), "not_final_failure": float64(1)}, body["dropped_by"])
	require.Equal(t, []any{map[string]any{"name": "no tests", "dropped": float64(2)}}, body["filters"])
	ex := body["examples"].(map[string]any)
	dropped := ex["dropped"].([]any)
	require.Len(t, dropped, 5)
	require.Equal(t, map[string]any{"id": "evt_00", "event": "Source Created", "reason": "filter", "filter": "no tests"}, dropped[0])
	require.Equal(t, "evt_03", dropped[1].(map[string]any)["id"])
	require.Equal(t, "violation", dropped[1].(map[string]any)["reason"])
	require.Equal(t, "not_final_failure", dropped[2].(map[string]any)["reason"])
	viol := ex["violations"].([]any)
	require.Len(t, viol, 2)
	require.Equal(t, "evt_03", viol[0].(map[string]any)["id"])
	require.NotEmpty(t, viol[0].(map[string]any)["violation"])

	// Drafts replace the saved settings for the preview only.
	code, body = f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/preview", f.owner,
		`{"destination_filters": {"filters": [{"name": "deletes", "enabled": true, "if": "event == 'Source Deleted'", "action": "drop"}]},
		  "tracking_plan": {}, "hard_failures_only": false, "limit": 4}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, float64(4), body["events"])
	require.Equal(t, float64(2), body["dropped"])
	require.Equal(t, map[string]any{"filter": float64(2)}, body["dropped_by"])
	require.Equal(t, float64(0), body["violations"])
	require.Equal(t, 4, l.asked[len(l.asked)-1])

	f.rec.mu.Lock()
	require.Len(t, f.rec.events, recorded, "a preview records nothing")
	f.rec.mu.Unlock()
	var saved trackingplan.Filters
	_, err := Load(f.store, "ws_1", trackingplan.KindFilters, &saved)
	require.NoError(t, err)
	require.Equal(t, "no tests", saved.Filters[0].Name, "a draft is stored nowhere")
}

func TestPreviewRefusesBadRequestsNamingTheField(t *testing.T) {
	f, l := previewFixture(t)
	for _, tt := range []struct{ name, body, field string }{
		{"not an object", `[]`, ""},
		{"empty", ``, ""},
		{"unknown field", `{"filters": []}`, "filters"},
		{"limit zero", `{"limit": 0}`, "limit"},
		{"limit over 500", `{"limit": 501}`, "limit"},
		{"limit not a number", `{"limit": "5"}`, "limit"},
		{"limit fraction", `{"limit": 2.5}`, "limit"},
		{"plan null", `{"tracking_plan": null}`, "tracking_plan"},
		{"plan not an object", `{"tracking_plan": 3}`, "tracking_plan"},
		{"plan unknown event", `{"tracking_plan": {"events": {"No Such Thing Happened": {}}}}`, "tracking_plan.events.No Such Thing Happened"},
		{"plan bad mode", `{"tracking_plan": {"on_violation": "explode"}}`, "tracking_plan.on_violation"},
		{"filter bad condition", `{"destination_filters": {"filters": [{"name": "a", "enabled": true, "if": "event ==", "action": "drop"}]}}`, "destination_filters.filters[0].if"},
		{"filter blank condition", `{"destination_filters": {"filters": [{"name": "a", "enabled": true, "if": " ", "action": "drop"}]}}`, "destination_filters.filters[0].if"},
		{"filter null percent", `{"destination_filters": {"filters": [{"name": "a", "enabled": true, "if": "true", "action": "sample", "percent": null}]}}`, "destination_filters.filters[0].percent"},
		{"hard failures not a bool", `{"hard_failures_only": "yes"}`, "hard_failures_only"},
		{"limit null", `{"limit": null}`, "limit"},
		{"limit null, spaced", "{\"limit\" :\n null }", "limit"},
		{"hard failures null", `{"hard_failures_only": null, "limit": 5}`, "hard_failures_only"},
		{"filters null", `{"destination_filters": null}`, "destination_filters"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/preview", f.owner, tt.body)
			require.Equal(t, http.StatusBadRequest, code, body)
			require.Equal(t, tt.field, errField(body), body)
		})
	}
	require.Empty(t, l.asked, "no refused request reads events")
	code, _ := f.do(t, "POST", "/v1/workspaces/ws_2/forwarding/preview", f.owner, `{}`)
	require.Equal(t, http.StatusForbidden, code, "members may not")
	code, _ = f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/preview", "", `{}`)
	require.Equal(t, http.StatusUnauthorized, code)
}

func TestPreviewsAreOneAtATimePerWorkspace(t *testing.T) {
	f, l := previewFixture(t)
	l.block, l.inList = make(chan struct{}), make(chan struct{})
	done := make(chan int)
	go func() {
		code, _ := f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/preview", f.owner, `{}`)
		done <- code
	}()
	<-l.inList
	l.mu.Lock()
	l.inList = nil
	l.mu.Unlock()
	code, body := f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/preview", f.owner, `{}`)
	require.Equal(t, http.StatusTooManyRequests, code, body)
	require.Equal(t, "busy", body["error"].(map[string]any)["code"])
	// Drafts are checked (seconds of CPU for a large plan) only within a
	// slot: a busy workspace's draft is not looked at, even a wrong one.
	code, body = f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/preview", f.owner,
		`{"destination_filters": {"filters": [{"name": "a", "enabled": true, "if": "event ==", "action": "drop"}]}}`)
	require.Equal(t, http.StatusTooManyRequests, code, body)
	close(l.block)
	require.Equal(t, http.StatusOK, <-done)
	code, _ = f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/preview", f.owner, `{}`)
	require.Equal(t, http.StatusOK, code, "the slot is free again")
}

func TestPreviewStopsWhenItsTimeIsUp(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := runPreview(ctx, trackingplan.Pipeline{}, previewEvents())
	require.False(t, p.Complete)
	require.Zero(t, p.Events)

	p = runPreview(context.Background(), trackingplan.Pipeline{}, previewEvents())
	require.True(t, p.Complete)
	require.Equal(t, 10, p.Kept)
}

func TestNoPreviewRouteWithoutAnEventReader(t *testing.T) {
	f := newFixture(t)
	code, _ := f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/preview", f.owner, `{}`)
	require.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, code)
}

func TestClipKeepsCharactersWhole(t *testing.T) {
	require.Equal(t, "abc", clip("abc", 3))
	require.Equal(t, "ab…", clip("abcd", 2))
	require.Equal(t, "a…", clip("aé", 2), "é is two bytes: cut before it")
}

// A preview calls no URL: a draft plan whose schemas name a reachable
// server (an external reference, a meta-schema, an identifier) is refused
// with a 400 naming the schema, and the server never hears of it.
func TestPreviewCallsNoURLInADraft(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	f, _ := previewFixture(t)
	for _, schema := range []string{
		fmt.Sprintf(`{"$ref": %q}`, srv.URL+"/schema.json"),
		fmt.Sprintf(`{"$schema": %q}`, srv.URL+"/meta.json"),
		fmt.Sprintf(`{"properties": {"a": {"$ref": %q}}}`, srv.URL+"/a.json#/x"),
		fmt.Sprintf(`{"$id": %q, "properties": {"a": {"$ref": "other.json"}}}`, srv.URL+"/base.json"),
	} {
		body := `{"tracking_plan": {"events": {"Source Created": {"properties": ` + schema + `}}}}`
		code, answer := f.do(t, "POST", "/v1/workspaces/ws_1/forwarding/preview", f.owner, body)
		require.Equal(t, http.StatusBadRequest, code, "%s: %v", schema, answer)
		require.Contains(t, errField(answer), "tracking_plan.events.Source Created.properties", schema)
	}
	require.Zero(t, hits.Load(), "a draft made the API call a URL")
}
