package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

var secret = []byte("test-secret-test-secret-test-secret!")

type fakeReader struct {
	filter store.Filter
	after  *store.Cursor
	limit  int
	page   store.Page
	facets store.Facets
	// buckets are what Histogram returns; interval and zone what it got.
	buckets  []store.Bucket
	interval store.Interval
	zone     *time.Location
	// rows are what Export yields; exportErr is returned after them.
	rows      []migrations.Row
	exportErr error
	exported  bool
}

func (f *fakeReader) List(_ context.Context, fl store.Filter, after *store.Cursor, limit int) (store.Page, error) {
	f.filter, f.after, f.limit = fl, after, limit
	return f.page, nil
}

func (f *fakeReader) Get(_ context.Context, ws, id string) (event.Event, error) {
	if id == "evt_1" {
		return event.Event{ID: id, WorkspaceID: ws, Event: "Source Created"}, nil
	}
	return event.Event{}, store.ErrNotFound
}

func (f *fakeReader) Facets(_ context.Context, fl store.Filter) (store.Facets, error) {
	f.filter = fl
	return f.facets, nil
}

func (f *fakeReader) Histogram(_ context.Context, fl store.Filter, iv store.Interval, zone *time.Location) ([]store.Bucket, error) {
	f.filter, f.interval, f.zone = fl, iv, zone
	return f.buckets, nil
}

// Count counts the rows Export yields.
func (f *fakeReader) Count(_ context.Context, fl store.Filter) (uint64, error) {
	f.filter = fl
	return uint64(len(f.rows)), nil
}

// RowsByKeys yields the rows of the keys.
func (f *fakeReader) RowsByKeys(_ context.Context, ws string, keys []store.Key, fn func(r *migrations.Row) error) error {
	for i := range f.rows {
		r := f.rows[i]
		if r.WorkspaceID == ws && slices.Contains(keys, store.Key{TimestampNs: r.TimestampNs, ID: r.ID}) {
			if err := fn(&r); err != nil {
				return err
			}
		}
	}
	return nil
}

func (f *fakeReader) Export(_ context.Context, fl store.Filter, fn func(r *migrations.Row) error) error {
	f.filter, f.exported = fl, true
	for i := range f.rows {
		r := f.rows[i]
		if err := fn(&r); err != nil {
			return err
		}
	}
	return f.exportErr
}

// fakeRecorder records emitted events, or fails with err.
type fakeRecorder struct {
	mu     sync.Mutex
	events []event.Event
	err    error
}

func (r *fakeRecorder) Emit(_ context.Context, e event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	// What the emitter checks before publishing.
	if err := (event.Policy{}).Validate(&e); err != nil {
		return err
	}
	r.events = append(r.events, e)
	return nil
}

func newServer(t *testing.T, r EventReader) *httptest.Server {
	return newServerWith(t, r, &fakeRecorder{})
}

func newServerWith(t *testing.T, r EventReader, rec Recorder) *httptest.Server {
	e := httpserver.New(httpserver.Options{Name: "api"})
	New(Options{Events: r, Verifier: auth.NewHMAC(secret), Recorder: rec, Reg: prometheus.NewRegistry()}).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

func token(t *testing.T, ws map[string]string, ttl time.Duration) string {
	tok, err := auth.Mint(secret, "usr_1", "Alice", "alice@example.com", ws, ttl, time.Now())
	require.NoError(t, err)
	return tok
}

func get(t *testing.T, srv *httptest.Server, path, tok string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	require.NoError(t, err)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out), string(b))
	return resp.StatusCode, out
}

func TestAuthorization(t *testing.T) {
	srv := newServer(t, &fakeReader{})
	owner := token(t, map[string]string{"ws_1": "owner", "ws_2": "member"}, time.Hour)
	expired := token(t, map[string]string{"ws_1": "owner"}, -time.Hour)
	otherSecret, err := auth.Mint([]byte("another-secret-another-secret-12345"), "u", "", "", map[string]string{"ws_1": "owner"}, time.Hour, time.Now())
	require.NoError(t, err)
	noSub, err := auth.Mint(secret, "", "", "", map[string]string{"ws_1": "owner"}, time.Hour, time.Now())
	require.NoError(t, err)
	signed := func(method jwt.SigningMethod, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(secret)
		require.NoError(t, err)
		return s
	}
	exp := time.Now().Add(time.Hour).Unix()
	ownsWS1 := map[string]string{"ws_1": "owner"}
	noExp := signed(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "usr_1", "workspaces": ownsWS1})
	workspacesNotObject := signed(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "usr_1", "exp": exp, "workspaces": []string{"ws_1"}})
	hs384 := signed(jwt.SigningMethodHS384, jwt.MapClaims{"sub": "usr_1", "exp": exp, "workspaces": ownsWS1})

	tests := []struct {
		name, path, tok string
		status          int
	}{
		{"owner", "/v1/workspaces/ws_1/audit-events", owner, 200},
		{"missing token", "/v1/workspaces/ws_1/audit-events", "", 401},
		{"malformed token", "/v1/workspaces/ws_1/audit-events", "not.a.jwt", 401},
		{"wrong signature", "/v1/workspaces/ws_1/audit-events", otherSecret, 401},
		{"expired", "/v1/workspaces/ws_1/audit-events", expired, 401},
		{"no sub", "/v1/workspaces/ws_1/audit-events", noSub, 401},
		{"no exp", "/v1/workspaces/ws_1/audit-events", noExp, 401},
		{"workspaces not an object", "/v1/workspaces/ws_1/audit-events", workspacesNotObject, 401},
		{"HS384", "/v1/workspaces/ws_1/audit-events", hs384, 401},
		{"member", "/v1/workspaces/ws_2/audit-events", owner, 403},
		{"absent workspace", "/v1/workspaces/ws_3/audit-events", owner, 404},
		{"member single event", "/v1/workspaces/ws_2/audit-events/evt_1", owner, 403},
		{"owner single event", "/v1/workspaces/ws_1/audit-events/evt_1", owner, 200},
		{"missing event", "/v1/workspaces/ws_1/audit-events/evt_2", owner, 404},
		{"owner facets", "/v1/workspaces/ws_1/audit-events/facets", owner, 200},
		{"member facets", "/v1/workspaces/ws_2/audit-events/facets", owner, 403},
		{"absent workspace facets", "/v1/workspaces/ws_3/audit-events/facets", owner, 404},
		{"facets without token", "/v1/workspaces/ws_1/audit-events/facets", "", 401},
		{"member export", "/v1/workspaces/ws_2/audit-events.csv", owner, 403},
		{"absent workspace export", "/v1/workspaces/ws_3/audit-events.csv", owner, 404},
		{"export without token", "/v1/workspaces/ws_1/audit-events.csv", "", 401},
		{"export expired", "/v1/workspaces/ws_1/audit-events.csv", expired, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := get(t, srv, tt.path, tt.tok)
			require.Equal(t, tt.status, status, body)
			if status != 200 {
				require.NotEmpty(t, body["error"].(map[string]any)["message"])
				require.Nil(t, body["data"])
			}
		})
	}
	_, body := get(t, srv, "/v1/workspaces/ws_2/audit-events", owner)
	require.Equal(t, "only workspace owners can view the audit trail", body["error"].(map[string]any)["message"])

	// The scheme is case-insensitive; anything but Bearer is refused.
	for header, status := range map[string]int{
		"bearer " + owner: 200, "BEARER " + owner: 200, "Bearer " + owner: 200,
		"Basic " + owner: 401, "Bearer" + owner: 401, "Bearer ": 401, owner: 401,
	} {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/workspaces/ws_1/audit-events", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", header)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, status, resp.StatusCode, "%.20s", header)
	}
}

func TestListParsesFilters(t *testing.T) {
	cur := store.Cursor{TimestampNs: 1764000000000000000, ID: "evt_9"}
	r := &fakeReader{page: store.Page{Events: []event.Event{{ID: "evt_1"}}, Next: &store.Cursor{TimestampNs: 5, ID: "evt_1"}}}
	srv := newServer(t, r)
	tok := token(t, map[string]string{"ws_1": "owner"}, time.Hour)
	q := url.Values{
		"event": {"Source Created", "Source Deleted"}, "category": {"Sources"}, "actor_type": {"user"},
		"actor_id": {"usr_1"}, "resource_type": {"source"}, "resource_id": {"src_1"},
		"since": {"2026-11-01T00:00:00Z"}, "until": {"2026-11-02T00:00:00.5+01:00"}, "limit": {"10"},
		"cursor": {cur.Encode()},
	}
	status, body := get(t, srv, "/v1/workspaces/ws_1/audit-events?"+q.Encode(), tok)
	require.Equal(t, 200, status, body)
	require.Equal(t, store.Filter{
		WorkspaceID: "ws_1", Events: []string{"Source Created", "Source Deleted"}, Category: "Sources",
		ActorType: "user", ActorID: "usr_1", ResourceType: "source", ResourceID: "src_1",
		Since: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 11, 1, 23, 0, 0, 5e8, time.UTC),
	}, r.filter)
	require.Equal(t, &cur, r.after)
	require.Equal(t, 10, r.limit)
	require.Equal(t, (&store.Cursor{TimestampNs: 5, ID: "evt_1"}).Encode(), body["next_cursor"])
	require.Len(t, body["data"], 1)
}

func TestListDefaultsAndEmptyPage(t *testing.T) {
	r := &fakeReader{}
	srv := newServer(t, r)
	status, body := get(t, srv, "/v1/workspaces/ws_1/audit-events", token(t, map[string]string{"ws_1": "owner"}, time.Hour))
	require.Equal(t, 200, status)
	require.Equal(t, DefaultLimit, r.limit)
	require.Equal(t, []any{}, body["data"])
	require.Contains(t, body, "next_cursor")
	require.Nil(t, body["next_cursor"])
}

func TestBadParametersNameTheField(t *testing.T) {
	srv := newServer(t, &fakeReader{})
	tok := token(t, map[string]string{"ws_1": "owner", "bad ws": "owner"}, time.Hour)
	tests := []struct{ query, field string }{
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=-5", "limit"},
		{"limit=ten", "limit"},
		{"limit=1&limit=2", "limit"},
		{"since=yesterday", "since"},
		{"until=2026-13-01T00:00:00Z", "until"},
		{"cursor=%27%3B+DROP+TABLE", "cursor"},
		{"cursor=eyJ0IjotMX0", "cursor"},
		{"actor_type=robot", "actor_type"},
		{"colour=red", "colour"},
		{"event=", "event"},
		{"q=foo:bar", "q"},
		{"q=%22unterminated", "q"},
		{"q=created:tomorrow", "q"},
		{"q=actor_type:robot", "q"},
		{"q=a&q=b", "q"},
		{"actor_id=" + strings.Repeat("x", 257), "actor_id"},
		{"actor_id=usr%1E1", "actor_id"},
		{"event=a%1Fb", "event"},
		{"resource_type=%C2%85", "resource_type"},
		{"category=%FF", "category"},
		{"q=%7F", "q"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			status, body := get(t, srv, "/v1/workspaces/ws_1/audit-events?"+tt.query, tok)
			require.Equal(t, 400, status, body)
			errObj := body["error"].(map[string]any)
			require.Equal(t, tt.field, errObj["field"])
			require.NotEmpty(t, errObj["code"])
			require.NotEmpty(t, errObj["message"])
		})
	}
	status, body := get(t, srv, "/v1/workspaces/bad%20ws/audit-events", tok)
	require.Equal(t, 400, status, body)
	require.Equal(t, "workspace_id", body["error"].(map[string]any)["field"])
}

// An until at or before since is an empty window: a 200 whose reads get
// the window as given (the store answers it with no events).
func TestAnEmptyWindowIsNoEventsNotAnError(t *testing.T) {
	r := &fakeReader{}
	srv := newServer(t, r)
	tok := token(t, map[string]string{"ws_1": "owner"}, time.Hour)
	status, body := get(t, srv, "/v1/workspaces/ws_1/audit-events?since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z", tok)
	require.Equal(t, 200, status, body)
	require.Equal(t, time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), r.filter.Since.UTC())
	require.Equal(t, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), r.filter.Until.UTC())
}

func TestCatalogue(t *testing.T) {
	srv := newServer(t, &fakeReader{})
	status, body := get(t, srv, "/v1/catalogue", "")
	require.Equal(t, 200, status)
	events := body["events"].([]any)
	names := map[string]string{}
	for _, e := range events {
		m := e.(map[string]any)
		names[m["name"].(string)] = m["category"].(string)
	}
	require.Equal(t, "Warehouses", names["Warehouses Disabled"])
	require.Equal(t, "Engage Warehouse Sources", names["Engage Warehouse Source Created"])
}

// FuzzListParams checks that no query string makes the list endpoint fail
// with anything but a 400 naming a field, or succeed.
func FuzzListParams(f *testing.F) {
	f.Add("limit=10&event=Source+Created")
	f.Add("cursor=eyJ0IjoxLCJpIjoiYSJ9")
	f.Add("since=2026-11-01T00:00:00Z&until=2026-11-01T00:00:00Z")
	f.Add("%zz")
	f.Add("q=event%3A%22Source+Created%22+actor%3Aalice+created%3A%3E2026-11-01&since=2026-10-01T00:00:00Z")
	f.Add("q=created%3A2026-11-01..2026-11-05+-bot&until=2026-11-03T00:00:00Z")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		f, _, limit, err := parseList("ws_1", q)
		if err != nil {
			var apiErr *httpserver.Error
			require.ErrorAs(t, err, &apiErr)
			require.Equal(t, http.StatusBadRequest, apiErr.Status)
			return
		}
		require.GreaterOrEqual(t, limit, 1)
		require.LessOrEqual(t, limit, MaxLimit)
		require.Equal(t, "ws_1", f.WorkspaceID)
		if q.Get("q") == "" && q.Get("since") != "" {
			require.False(t, f.Since.IsZero(), "a valid since is applied")
		}
	})
}
