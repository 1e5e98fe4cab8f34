package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestAnalystCookbookOnTheRealServer runs every query of docs/analysts.md
// on 18.16 over the analysts' view and compares its answer with the API's
// (the store's) on the same events: replayed copies, a row past the window
// and another workspace's rows included.
func TestAnalystCookbookOnTheRealServer(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	testCookbook(t, conn, cfg.Database)
}

// TestAnalystCookbookOnCurrentClickHouse is the same on current
// ClickHouse (chdb), merges stopped so the copies stay on disk.
func TestAnalystCookbookOnCurrentClickHouse(t *testing.T) {
	srv := store.MigratedChdb(t, "audittrail", 90)
	srv.StopMerges(t, "audittrail", migrations.Table)
	testCookbook(t, srv, "audittrail")
}

var cookbookQuery = regexp.MustCompile("(?s)^([^\n]+)\n.*?```sql\n(.*?)```")

// cookbook returns the queries of docs/analysts.md by heading, on db.
func cookbook(t *testing.T, db string) map[string]string {
	b, err := os.ReadFile("../../docs/analysts.md")
	require.NoError(t, err)
	out := map[string]string{}
	for _, section := range strings.Split(string(b), "\n### ")[1:] {
		if m := cookbookQuery.FindStringSubmatch(section); m != nil {
			out[m[1]] = strings.ReplaceAll(m[2], "audittrail.", db+".")
		}
	}
	require.Len(t, out, 4, "the cookbook's queries")
	return out
}

func cookbookEvents(now time.Time) []event.Event {
	ev := func(id, name, actorType, actor, actorName, resource string, age time.Duration, changes map[string]event.Change) event.Event {
		ts := now.Add(-age)
		return event.Event{ID: id, WorkspaceID: "ws_1", Event: name, Category: "Sources", Timestamp: ts, ReceivedAt: ts,
			Actor:    event.Actor{Type: actorType, ID: actor, Name: actorName},
			Resource: event.Resource{Type: "source", ID: resource, Name: "Web"}, Changes: changes}
	}
	disabled := map[string]event.Change{"enabled": {Old: []byte("true"), New: []byte("false")}}
	renamed := map[string]event.Change{"name": {Old: []byte(`"a"`), New: []byte(`"b"`)}}
	other := ev("other", "Source Modified", "user", "usr_a", "Alice", "src_1", time.Hour, disabled)
	other.WorkspaceID = "ws_2"
	return []event.Event{
		ev("a", "Warehouses Disabled", "user", "usr_a", "Alice", "wh_1", time.Hour, nil),
		ev("b", "Source Modified", "user", "usr_b", "Bob", "src_1", 26*time.Hour, disabled),
		ev("c", "Source Modified", "user", "usr_a", "Alice A.", "src_1", 72*time.Hour, renamed),
		ev("d", "Source Created", "user", "usr_b", "Bob", "src_1", 72*time.Hour+time.Minute, nil),
		ev("e", "Source Created", "access_token", "tok_1", "CI", "src_2", 10*24*time.Hour, nil),
		ev("expired", "Source Modified", "user", "usr_a", "Alice", "src_1", 100*24*time.Hour, disabled),
		other,
	}
}

func testCookbook(t *testing.T, conn stacktest.Batcher, db string) {
	ctx := context.Background()
	q := conn.(migrations.Conn)
	now := time.Now().UTC()
	evs := cookbookEvents(now)
	stacktest.InsertEvents(t, conn, db, evs...)
	stacktest.InsertEvents(t, conn, db, evs[1], evs[3]) // replayed copies
	s := store.New(q, db, 90, time.Now)
	queries := cookbook(t, db)
	rows := func(sql string, scan func(func(...any) error) string) []string {
		r, err := q.Query(ctx, sql)
		require.NoError(t, err, sql)
		defer r.Close()
		var out []string
		for r.Next() {
			out = append(out, scan(r.Scan))
		}
		require.NoError(t, r.Err())
		return out
	}
	var all []event.Event
	require.NoError(t, s.Export(ctx, store.Filter{WorkspaceID: "ws_1"}, func(r *migrations.Row) error {
		all = append(all, event.Event{ID: r.ID, Event: r.Event, Timestamp: r.Timestamp, Properties: []byte(r.Changes)})
		return nil
	}))
	require.Len(t, all, 5, "the API serves a to e once each")

	// Top actors = the API's actor facets.
	facets, err := s.Facets(ctx, store.Filter{WorkspaceID: "ws_1"})
	require.NoError(t, err)
	var want []string
	for _, a := range facets.Actors {
		want = append(want, fmt.Sprintf("%s %s %s %d", a.Type, a.ID, a.Name, a.Count))
	}
	got := rows(queries["Top actors"], func(scan func(...any) error) string {
		var typ, id, name string
		var n uint64
		require.NoError(t, scan(&typ, &id, &name, &n))
		return fmt.Sprintf("%s %s %s %d", typ, id, name, n)
	})
	require.Equal(t, want, got)
	require.Equal(t, "user usr_a Alice 2", got[0], "Alice's newest name, her two events")

	// Changes to one resource = the API's pages filtered by resource_id.
	page, err := s.List(ctx, store.Filter{WorkspaceID: "ws_1", ResourceID: "src_1"}, nil, 100)
	require.NoError(t, err)
	want = nil
	for _, e := range page.Events {
		want = append(want, e.ID)
	}
	firstColumn := func(scan func(...any) error) string {
		var id, event, actor, changes string
		var ts time.Time
		require.NoError(t, scan(&id, &ts, &event, &actor, &changes))
		return id
	}
	require.Equal(t, want, rows(queries["Changes to one resource"], firstColumn))
	require.Equal(t, []string{"b", "c", "d"}, want)

	// Counts per event per day = the API's events counted by UTC day.
	perDay := map[string]int{}
	for _, e := range all {
		perDay[e.Timestamp.UTC().Format("2006-01-02")+" "+e.Event]++
	}
	want = nil
	for k, n := range perDay {
		want = append(want, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(want)
	got = rows("SELECT toString(day), event, events FROM ("+queries["Counts per event per day"]+")", func(scan func(...any) error) string {
		var day, event string
		var n uint64
		require.NoError(t, scan(&day, &event, &n))
		return fmt.Sprintf("%s %s %d", day, event, n)
	})
	require.Equal(t, want, got)

	// Who disabled what = the API's events named "... Disabled" or setting
	// enabled to false.
	want = nil
	for _, e := range all {
		var changes map[string]struct{ New json.RawMessage }
		require.NoError(t, json.Unmarshal(e.Properties, &changes))
		if strings.HasSuffix(e.Event, " Disabled") || string(changes["enabled"].New) == "false" {
			want = append(want, e.ID)
		}
	}
	require.Equal(t, []string{"a", "b"}, want)
	require.Equal(t, want, rows(queries["Who disabled what"], func(scan func(...any) error) string {
		var id, actor, name, event, rtype, rid, rname string
		var ts time.Time
		require.NoError(t, scan(&id, &ts, &actor, &name, &event, &rtype, &rid, &rname))
		return id
	}))
}
