package api

import (
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/proctest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/producers/emitter"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/event"
)

// stackServer serves the API over a fresh ClickHouse database holding evs.
func stackServer(t *testing.T, rec Recorder, evs ...event.Event) *httptest.Server {
	conn, cfg := stacktest.ClickHouse(t, 90)
	stacktest.InsertEvents(t, conn, cfg.Database, evs...)
	e := httpserver.New(httpserver.Options{Name: "api"})
	New(Options{Events: store.New(conn, cfg.Database, 90, time.Now), Verifier: auth.NewHMAC(secret), Recorder: rec,
		Reg: prometheus.NewRegistry()}).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv
}

func stored(id, name string, ts time.Time) event.Event {
	return event.Event{
		ID: id, WorkspaceID: "ws_1", Event: "Source Created", Category: "Sources", Timestamp: ts, ReceivedAt: ts,
		Actor:    event.Actor{Type: "user", ID: "usr_1", Name: name, Email: "alice@example.com"},
		Resource: event.Resource{Type: "source", ID: "src_1", Name: name},
		Changes:  map[string]event.Change{"name": {Old: []byte(`"a,b"`), New: []byte(`"=1+1"`)}},
		Context:  event.Context{IP: "2001:db8::1", UserAgent: "Mozilla/5.0 (X11; Linux)"},
	}
}

// TestCSVAndFacetsOverClickHouse reads back, through HTTP and a real
// ClickHouse, values that CSV must quote or neutralise, and checks the
// retention edge, facets and search on the same data.
func TestCSVAndFacetsOverClickHouse(t *testing.T) {
	proctest.Require(t)
	now := time.Now().UTC()
	names := []string{"Smith, Alice", `Alice "Al" Smith`, "two\nlines", "Zoë 日本語 🚀", "=cmd|' /C calc'!A0", "@SUM(1)", "+1", "-1", "plain"}
	var evs []event.Event
	for i, n := range names {
		evs = append(evs, stored("evt_"+string(rune('a'+i)), n, now.Add(-time.Duration(i+1)*time.Minute)))
	}
	tokenEvent := stored("evt_tok", "CI", now.Add(-time.Hour))
	tokenEvent.Event, tokenEvent.Category = "Warehouses Disabled", "Warehouses"
	tokenEvent.Actor = event.Actor{Type: "access_token", ID: "tok_1", Name: "CI"}
	evs = append(evs, tokenEvent,
		stored("inside", "edge", now.Add(-90*24*time.Hour+2*time.Minute)),
		stored("outside", "gone", now.Add(-90*24*time.Hour-2*time.Minute)))
	rec := &fakeRecorder{}
	srv := stackServer(t, rec, evs...)
	tok := token(t, map[string]string{"ws_1": "owner"}, time.Hour)

	resp, body, err := fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events.csv", tok)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	records, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	require.NoError(t, err)
	require.Equal(t, CSVColumns, records[0])
	require.Len(t, records, 1+len(names)+2, "every event in the window, not the one past it")
	for i, n := range names {
		want := n
		if strings.ContainsAny(n[:1], "=@+-") {
			want = "'" + n
		}
		require.Equal(t, "evt_"+string(rune('a'+i)), records[i+1][0])
		require.Equal(t, want, records[i+1][6], "actor_name")
		require.Equal(t, want, records[i+1][10], "resource_name")
		require.JSONEq(t, `{"name":{"new":"=1+1","old":"a,b"}}`, records[i+1][12])
		require.Equal(t, "2001:db8::1", records[i+1][11])
	}
	require.Equal(t, "evt_tok", records[len(names)+1][0])
	require.Equal(t, "inside", records[len(names)+2][0])
	require.Contains(t, string(body), `"Smith, Alice"`)
	require.Contains(t, string(body), `"Alice ""Al"" Smith"`)
	require.Contains(t, string(body), "\"two\r\nlines\"", "RFC 4180: line breaks are CRLF")
	require.NotRegexp(t, `[^\r]\n`, string(body), "every line break is CRLF")
	require.Len(t, rec.events, 1)

	// The list sees the same window.
	status, page := get(t, srv, "/v1/workspaces/ws_1/audit-events?limit=1000", tok)
	require.Equal(t, 200, status)
	require.Len(t, page["data"], len(names)+2)

	// Facets over the same window, and filtered.
	status, facets := get(t, srv, "/v1/workspaces/ws_1/audit-events/facets", tok)
	require.Equal(t, 200, status, facets)
	require.Equal(t, []any{
		map[string]any{"name": "Source Created", "count": float64(len(names) + 1)},
		map[string]any{"name": "Warehouses Disabled", "count": 1.0},
	}, facets["events"])
	require.Len(t, facets["actors"], 2)
	status, facets = get(t, srv, "/v1/workspaces/ws_1/audit-events/facets?q="+url.QueryEscape("actor_type:access_token"), tok)
	require.Equal(t, 200, status, facets)
	require.Equal(t, []any{map[string]any{"type": "access_token", "id": "tok_1", "name": "CI", "count": 1.0}}, facets["actors"])

	// Search qualifiers through HTTP.
	for q, want := range map[string][]string{
		`actor:"smith"`:               {"evt_a", "evt_b"},
		`event:"warehouses disabled"`: {"evt_tok"},
		`日本語`:                         {"evt_d"},
		`category:Warehouses`:         {"evt_tok"},
		`"alice ""al"`:                nil, // a syntax error, checked below
	} {
		status, body := get(t, srv, "/v1/workspaces/ws_1/audit-events?q="+url.QueryEscape(q), tok)
		if want == nil {
			require.Equal(t, 400, status)
			continue
		}
		require.Equal(t, 200, status, body)
		var got []string
		for _, e := range body["data"].([]any) {
			got = append(got, e.(map[string]any)["id"].(string))
		}
		require.Equal(t, want, got, q)
	}

	// A filtered CSV export holds only the matches.
	resp, body, err = fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events.csv?actor_type=access_token", tok)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	records, err = csv.NewReader(strings.NewReader(string(body))).ReadAll()
	require.NoError(t, err)
	require.Len(t, records, 2)
	require.Equal(t, "evt_tok", records[1][0])
}

// TestExportIsRecordedInKafka records an export with the real emitter on a
// test topic and reads the record back.
func TestExportIsRecordedInKafka(t *testing.T) {
	proctest.Require(t)
	topic := stacktest.Topics(t, 1, "api-exports")[0]
	em, err := emitter.New(emitter.Config{Topic: topic}, []kgo.Opt{kgo.SeedBrokers(stacktest.Brokers()...)}, time.Now)
	require.NoError(t, err)
	t.Cleanup(em.Close)
	srv := stackServer(t, em, stored("evt_a", "Alice", time.Now().Add(-time.Minute)))
	tok, err := auth.Mint(secret, "usr_9", "Owner Olga", "olga@example.com", map[string]string{"ws_1": "owner"}, time.Hour, time.Now())
	require.NoError(t, err)

	resp, body, err := fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events.csv?q="+url.QueryEscape("actor:alice"), tok)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))

	cl, err := kgo.NewClient(kgo.SeedBrokers(stacktest.Brokers()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rec *kgo.Record
	for rec == nil {
		fs := cl.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "the export's record never arrived")
		fs.EachRecord(func(r *kgo.Record) { rec = r })
	}
	require.Equal(t, "ws_1", string(rec.Key))
	got, err := event.Decode(rec.Value)
	require.NoError(t, err)
	require.Equal(t, resp.Header.Get("X-Audit-Event-Id"), got.ID)
	require.Equal(t, ExportEvent, got.Event)
	require.Equal(t, "Audit Trail", got.Category)
	require.Equal(t, event.Actor{Type: "user", ID: "usr_9", Name: "Owner Olga", Email: "olga@example.com"}, got.Actor)
	require.Equal(t, "audit_trail", got.Resource.Type)
	require.JSONEq(t, `{"format": "csv", "filename": "audit-trail-ws_1-`+time.Now().UTC().Format(time.DateOnly)+`.csv", "filters": {"q": "actor:alice"}}`, string(got.Properties))
}

// TestNoInputIsAServerError sends hostile values in every parameter to a
// real ClickHouse: each answer is a 200 or a 400, never a 5xx.
func TestNoInputIsAServerError(t *testing.T) {
	proctest.Require(t)
	srv := stackServer(t, &fakeRecorder{}, stored("evt_a", "Alice", time.Now().Add(-time.Minute)))
	tok := token(t, map[string]string{"ws_1": "owner"}, time.Hour)
	values := []string{
		"\x00", "a\x00b", "\xff\xfe", "'", `\`, `\'`, "?", "??", "%", "_", `"`, "' OR 1=1 --", "`", "\\N", "NULL",
		"é", "🚀", strings.Repeat("x", 256), "\t\r\n", "{", "$1", "@name", ":name", "{name:String}",
		"9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2262-04-12T00:00:00Z", "2106-02-08T00:00:00Z",
		"created:>9999-01-01", "created:2200-12-31", "created:1970-01-01..*",
	}
	params := []string{"event", "category", "actor_id", "resource_type", "resource_id", "q", "since", "until", "cursor", "limit", "actor_type"}
	for _, path := range []string{"/audit-events", "/audit-events/facets", "/audit-events.csv"} {
		for _, p := range params {
			for _, v := range values {
				if path != "/audit-events" && (p == "cursor" || p == "limit") {
					continue
				}
				u := srv.URL + "/v1/workspaces/ws_1" + path + "?" + url.Values{p: {v}}.Encode()
				resp, body, err := fetch(t, u, tok)
				require.NoError(t, err)
				require.Less(t, resp.StatusCode, 500, "%s %s=%q: %s", path, p, v, body)
			}
		}
	}
	// Far-off bounds do not wrap ClickHouse's 32-bit DateTime and lose events.
	for _, q := range []string{"until=2200-01-01T00:00:00Z", "until=9999-12-31T00:00:00Z", "q=created%3A%3C2200-01-01", "since=0001-01-01T00:00:00Z"} {
		status, body := get(t, srv, "/v1/workspaces/ws_1/audit-events?"+q, tok)
		require.Equal(t, 200, status)
		require.Len(t, body["data"], 1, q)
	}
	for _, v := range values {
		resp, body, err := fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events/"+url.PathEscape(v), tok)
		require.NoError(t, err)
		require.Less(t, resp.StatusCode, 500, "id %q: %s", v, body)
	}
}

// TestAuthorizationOverClickHouse serves a real ClickHouse holding events of
// two workspaces: tokens that are missing, malformed, badly signed, expired
// or lack exp get 401, a member 403, a workspace absent from the token 404,
// and none of those answers carries an event; an owner of one workspace
// cannot reach another's event by id.
func TestAuthorizationOverClickHouse(t *testing.T) {
	proctest.Require(t)
	a := stored("evt_secret_a", "Alice", time.Now().Add(-time.Minute))
	b := stored("evt_secret_b", "Bob", time.Now().Add(-time.Minute))
	b.WorkspaceID = "ws_2"
	rec := &fakeRecorder{}
	srv := stackServer(t, rec, a, b)

	mint := func(ws map[string]string, ttl time.Duration, key []byte) string {
		tok, err := auth.Mint(key, "usr_1", "Alice", "alice@example.com", ws, ttl, time.Now())
		require.NoError(t, err)
		return tok
	}
	noExp, err := jwt.NewWithClaims(jwt.SigningMethodHS256,
		jwt.MapClaims{"sub": "usr_1", "workspaces": map[string]string{"ws_1": "owner"}}).SignedString(secret)
	require.NoError(t, err)
	owner := mint(map[string]string{"ws_1": "owner"}, time.Hour, secret)
	tokens := []struct {
		name, tok string
		status    int
	}{
		{"missing", "", 401},
		{"malformed", "eyJhbGciOiJIUzI1NiJ9.e30", 401},
		{"badly signed", mint(map[string]string{"ws_1": "owner"}, time.Hour, []byte("not-the-secret-not-the-secret-1234")), 401},
		{"expired", mint(map[string]string{"ws_1": "owner"}, -time.Hour, secret), 401},
		{"no exp", noExp, 401},
		{"member", mint(map[string]string{"ws_1": "member", "ws_2": "owner"}, time.Hour, secret), 403},
		{"admin", mint(map[string]string{"ws_1": "admin"}, time.Hour, secret), 403},
		{"absent", mint(map[string]string{"ws_2": "owner"}, time.Hour, secret), 404},
		{"no workspaces", mint(nil, time.Hour, secret), 404},
	}
	for _, path := range []string{"/audit-events", "/audit-events/evt_secret_a", "/audit-events/facets", "/audit-events.csv"} {
		for _, tt := range tokens {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/workspaces/ws_1"+path, nil)
			require.NoError(t, err)
			if tt.tok != "" {
				req.Header.Set("Authorization", "Bearer "+tt.tok)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, tt.status, resp.StatusCode, "%s %s: %s", tt.name, path, body)
			require.NotContains(t, string(body), "evt_secret_a", "%s %s", tt.name, path)
			require.NotContains(t, string(body), "Source Created", "%s %s", tt.name, path)
			require.Empty(t, resp.Header.Get("Content-Disposition"), "%s %s", tt.name, path)
		}
	}
	require.Empty(t, rec.events, "a refused export is not recorded (nothing was exported)")

	// The owner reads ws_1, and not ws_2's event through ws_1's path.
	status, body := get(t, srv, "/v1/workspaces/ws_1/audit-events", owner)
	require.Equal(t, 200, status, body)
	require.Len(t, body["data"], 1)
	status, body = get(t, srv, "/v1/workspaces/ws_1/audit-events/evt_secret_b", owner)
	require.Equal(t, 404, status, body)
	require.Nil(t, body["data"])
}
