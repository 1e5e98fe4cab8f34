package api

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/encoding/json"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/httpserver"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/auth"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestEveryStoredRowIsServed inserts rows straight into ClickHouse that no
// valid event produces (rows stored before the contract's bounds, or by
// another tool): the list, the event by id and the CSV export answer 200
// with each row present, the unreadable parts passed through as a string.
func TestEveryStoredRowIsServed(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	now := time.Now().UTC().Truncate(time.Millisecond)
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	rows := []struct {
		id          string
		edit        func(r *migrations.Row)
		props, chgs string // what the API returns, as JSON ("" = absent)
	}{
		{"evt_plain", func(r *migrations.Row) {}, `{"reason":"cost"}`, `{"enabled":{"old":true,"new":false}}`},
		{"evt_deep_props", func(r *migrations.Row) { r.Properties = `{"a":` + deep + `}` }, mustString(`{"a":` + deep + `}`), ""},
		{"evt_33_props", func(r *migrations.Row) {
			r.Properties = strings.Repeat(`{"a":`, 32) + `1` + strings.Repeat(`}`, 32)
		}, mustString(strings.Repeat(`{"a":`, 32) + `1` + strings.Repeat(`}`, 32)), ""},
		{"evt_bad_props", func(r *migrations.Row) { r.Properties = `{not json` }, `"{not json"`, ""},
		{"evt_dup_props", func(r *migrations.Row) { r.Properties = `{"a":1,"a":2}` }, `"{\"a\":1,\"a\":2}"`, ""},
		{"evt_utf8_props", func(r *migrations.Row) { r.Properties = "{\"a\":\"\xff\xfe\"}" }, `"{\"a\":\"\uFFFD\"}"`, ""},
		{"evt_array_props", func(r *migrations.Row) { r.Properties = `[1,2]` }, `[1,2]`, ""},
		{"evt_bad_changes", func(r *migrations.Row) { r.Changes = `garbage` }, "", `{"":{"new":"garbage"}}`},
		{"evt_odd_changes", func(r *migrations.Row) { r.Changes = `{"a":5}` }, "", `{"":{"new":{"a":5}}}`},
		{"evt_unknown_change_key", func(r *migrations.Row) { r.Changes = `{"a":{"before":1}}` }, "", `{"":{"new":{"a":{"before":1}}}}`},
		{"evt_deep_changes", func(r *migrations.Row) { r.Changes = `{"a":{"new":` + deep + `}}` }, "", `{"":{"new":` + mustString(`{"a":{"new":`+deep+`}}`) + `}}`},
		{"evt_controls", func(r *migrations.Row) {
			r.ActorName, r.ResourceName, r.ContextUserAgent = "a\x00b\x1b[2J", "line one\nline\ttwo\r", "\xff\xfe"
			r.ActorType, r.Event, r.ContextIP = "robot", "", "not an ip"
		}, "", ""},
	}
	stored := make([]migrations.Row, len(rows))
	for i, tc := range rows {
		ts := now.Add(-time.Duration(i+1) * time.Minute)
		r := migrations.Row{
			WorkspaceID: "ws_1", Timestamp: ts.Truncate(time.Second), TimestampNs: ts.UnixNano(), ID: tc.id,
			Event: "Source Created", Category: "Sources", ActorType: "user", ActorID: "usr_1", ActorName: "Alice",
			ResourceType: "source", ResourceID: "src_1", ResourceName: "Snowflake",
			Changes: `{"enabled":{"old":true,"new":false}}`, Properties: `{"reason":"cost"}`,
			ReceivedAt: ts.Truncate(time.Second), ReceivedAtNs: ts.UnixNano(),
		}
		if tc.id != "evt_plain" {
			r.Changes, r.Properties = "{}", "{}"
		}
		tc.edit(&r)
		stored[i] = r
	}
	batch, err := conn.PrepareBatch(context.Background(), fmt.Sprintf("INSERT INTO %s.%s (%s)", cfg.Database, migrations.Table, strings.Join(migrations.InsertColumns, ", ")))
	require.NoError(t, err)
	for i := range stored {
		require.NoError(t, batch.Append(stored[i].Values()...))
	}
	require.NoError(t, batch.Send())

	e := httpserver.New(httpserver.Options{Name: "api"})
	New(Options{Events: store.New(conn, cfg.Database, 90, time.Now), Verifier: auth.NewHMAC(secret), Recorder: &fakeRecorder{},
		Reg: prometheus.NewRegistry()}).Register(e)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	tok := token(t, map[string]string{"ws_1": "owner"}, time.Hour)

	resp, body, err := fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events?limit=100", tok)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var list struct {
		Data []map[string]json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(body, &list))
	byID := map[string]map[string]json.RawMessage{}
	for _, ev := range list.Data {
		var id string
		require.NoError(t, json.Unmarshal(ev["id"], &id))
		byID[id] = ev
	}
	for _, tc := range rows {
		ev, ok := byID[tc.id]
		require.True(t, ok, "%s listed", tc.id)
		requireJSONField(t, tc.props, ev["properties"], tc.id+" properties")
		requireJSONField(t, tc.chgs, ev["changes"], tc.id+" changes")

		resp, body, err := fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events/"+tc.id, tok)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", tc.id, body)
		var one map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(body, &one))
		requireJSONField(t, tc.props, one["properties"], tc.id+" properties by id")
	}
	var controls map[string]any
	require.NoError(t, json.Unmarshal(byID["evt_controls"]["resource"], &controls))
	require.Equal(t, "line one\nline\ttwo\r", controls["name"], "tabs and line breaks served as stored")

	resp, body, err = fetch(t, srv.URL+"/v1/workspaces/ws_1/audit-events.csv", tok)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	records, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	require.NoError(t, err, "RFC 4180")
	require.Len(t, records, 1+len(rows), "every row exported")
	col := map[string]int{}
	for i, c := range records[0] {
		col[c] = i
	}
	for _, rec := range records[1:] {
		if rec[col["id"]] == "evt_controls" {
			require.Equal(t, "a\uFFFDb\uFFFD[2J", rec[col["actor_name"]])
			require.Equal(t, "line one\nline\ttwo\n", rec[col["resource_name"]])
			require.Equal(t, "\uFFFD\uFFFD", rec[col["user_agent"]])
		}
	}
}

func mustString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func requireJSONField(t *testing.T, want string, got json.RawMessage, msg string) {
	t.Helper()
	if want == "" {
		require.Empty(t, got, msg)
		return
	}
	require.JSONEq(t, want, string(got), msg)
}
