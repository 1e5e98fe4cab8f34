// Package store_test tests the ClickHouse reads on the real server
// (integration tests, run when AUDITTRAIL_INTEGRATION=1): exact newest-first
// pagination, combined filters, the retention window's edge, search and
// facets.
package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/search"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/event"
)

func mkEvent(ws, id, name string, ts time.Time) event.Event {
	return event.Event{
		ID: id, WorkspaceID: ws, Event: name, Category: "Sources", Timestamp: ts, ReceivedAt: ts,
		Actor:    event.Actor{Type: "user", ID: "usr_" + id, Name: "Alice", Email: "alice@example.com"},
		Resource: event.Resource{Type: "source", ID: "src_1", Name: "Web"},
		Changes:  map[string]event.Change{"enabled": {Old: []byte("true"), New: []byte("false")}},
		Context:  event.Context{IP: "203.0.113.1"},
	}
}

func TestListPaginatesExactlyNewestFirst(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	now := time.Now().UTC()
	var evs []event.Event
	base := now.Add(-time.Hour)
	for i := range 57 {
		// Pairs share a timestamp so the id tie-break is exercised.
		evs = append(evs, mkEvent("ws_a", fmt.Sprintf("evt_%03d", i), "Source Created", base.Add(time.Duration(i/2)*time.Second+time.Duration(i%2))))
	}
	evs = append(evs, mkEvent("ws_b", "other_ws", "Source Created", base))
	stacktest.InsertEvents(t, conn, cfg.Database, evs[:30]...)
	stacktest.InsertEvents(t, conn, cfg.Database, evs[30:]...)
	// A replay of already stored events must not show twice.
	stacktest.InsertEvents(t, conn, cfg.Database, evs[10:20]...)

	s := store.New(conn, cfg.Database, 90, time.Now)
	ctx := context.Background()
	var got []string
	var after *store.Cursor
	for pages := 0; ; pages++ {
		require.Less(t, pages, 20)
		p, err := s.List(ctx, store.Filter{WorkspaceID: "ws_a"}, after, 10)
		require.NoError(t, err)
		for _, e := range p.Events {
			got = append(got, e.ID)
		}
		if p.Next == nil {
			break
		}
		// New events arriving while paging do not disturb the walk: one
		// newer than the cursor is not returned (its place was walked), one
		// older (ingested late) is returned once, in its place.
		if pages == 1 {
			stacktest.InsertEvents(t, conn, cfg.Database, mkEvent("ws_a", "late", "Source Created", now),
				mkEvent("ws_a", "evt_000_delayed", "Source Created", base.Add(-time.Second)))
		}
		next, err := store.DecodeCursor(p.Next.Encode())
		require.NoError(t, err)
		after = &next
	}
	var want []string
	for i := 56; i >= 0; i-- {
		want = append(want, fmt.Sprintf("evt_%03d", i))
	}
	want = append(want, "evt_000_delayed")
	require.Equal(t, want, got, "each event exactly once, newest first")

	one, err := s.Get(ctx, "ws_a", "evt_005")
	require.NoError(t, err)
	require.Equal(t, evs[5].Timestamp.UnixNano(), one.Timestamp.UnixNano())
	require.Equal(t, evs[5].Actor, one.Actor)
	require.JSONEq(t, "false", string(one.Changes["enabled"].New))
	_, err = s.Get(ctx, "ws_b", "evt_005")
	require.ErrorIs(t, err, store.ErrNotFound, "never across workspaces")
}

func TestFiltersCombine(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	now := time.Now().UTC().Add(-time.Minute)
	a := mkEvent("ws", "a", "Source Created", now)
	b := mkEvent("ws", "b", "Source Deleted", now.Add(time.Second))
	c := mkEvent("ws", "c", "Warehouses Disabled", now.Add(2*time.Second))
	c.Category, c.Resource = "Warehouses", event.Resource{Type: "warehouse", ID: "wh_1"}
	c.Actor = event.Actor{Type: "access_token", ID: "tok_1"}
	stacktest.InsertEvents(t, conn, cfg.Database, a, b, c)
	s := store.New(conn, cfg.Database, 90, time.Now)

	ids := func(f store.Filter) []string {
		f.WorkspaceID = "ws"
		p, err := s.List(context.Background(), f, nil, 100)
		require.NoError(t, err)
		var out []string
		for _, e := range p.Events {
			out = append(out, e.ID)
		}
		return out
	}
	require.Equal(t, []string{"c", "b", "a"}, ids(store.Filter{}))
	require.Equal(t, []string{"b", "a"}, ids(store.Filter{Events: []string{"Source Created", "Source Deleted"}}))
	require.Equal(t, []string{"c"}, ids(store.Filter{Category: "Warehouses"}))
	require.Equal(t, []string{"c"}, ids(store.Filter{ActorType: "access_token"}))
	require.Equal(t, []string{"a"}, ids(store.Filter{ActorID: "usr_a"}))
	require.Equal(t, []string{"b", "a"}, ids(store.Filter{ResourceType: "source", ResourceID: "src_1"}))
	require.Equal(t, []string{"b"}, ids(store.Filter{Since: now.Add(time.Second), Until: now.Add(2 * time.Second)}))
	require.Empty(t, ids(store.Filter{Events: []string{"Source Created"}, ActorType: "access_token"}))
	require.Empty(t, ids(store.Filter{ActorID: "' OR 1=1 --"}), "values are bound, not concatenated")
}

func TestRetentionWindowEdge(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	now := time.Now().UTC()
	window := 90 * 24 * time.Hour
	inside := mkEvent("ws", "inside", "Source Created", now.Add(-window+time.Minute))
	outside := mkEvent("ws", "outside", "Source Created", now.Add(-window-time.Minute))
	stacktest.InsertEvents(t, conn, cfg.Database, inside, outside)
	s := store.New(conn, cfg.Database, 90, time.Now)

	p, err := s.List(context.Background(), store.Filter{WorkspaceID: "ws"}, nil, 10)
	require.NoError(t, err)
	require.Len(t, p.Events, 1)
	require.Equal(t, "inside", p.Events[0].ID)

	// Asking for older data explicitly does not widen the window.
	p, err = s.List(context.Background(), store.Filter{WorkspaceID: "ws", Since: now.Add(-2 * window)}, nil, 10)
	require.NoError(t, err)
	require.Len(t, p.Events, 1)
	_, err = s.Get(context.Background(), "ws", "outside")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestSearch(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	now := time.Now().UTC().Add(-time.Hour)
	a := mkEvent("ws", "a", "Source Created", now)
	a.Actor = event.Actor{Type: "user", ID: "usr_alice", Name: "Alice Ängström", Email: "alice@example.com"}
	a.Resource = event.Resource{Type: "source", ID: "src_1", Name: "Web 100% live"}
	b := mkEvent("ws", "b", "Warehouses Disabled", now.Add(time.Second))
	b.Category = "Warehouses"
	b.Actor = event.Actor{Type: "access_token", ID: "tok_ci", Name: "CI token"}
	b.Resource = event.Resource{Type: "warehouse", ID: "wh_1", Name: "Snowflake_prod"}
	c := mkEvent("ws", "c", "Source Deleted", now.Add(2*time.Second))
	c.Actor = event.Actor{Type: "user", ID: "usr_bob", Name: `Bob "the builder" O'Neil`, Email: "bob@example.com"}
	c.Resource = event.Resource{Type: "source", ID: "wh_10", Name: "Web1 00"}
	old := mkEvent("ws", "old", "Source Created", now.Add(-72*time.Hour))
	old.Actor = event.Actor{Type: "user", ID: "usr_olga", Name: "Olga", Email: "olga@example.com"}
	stacktest.InsertEvents(t, conn, cfg.Database, a, b, c, old)
	s := store.New(conn, cfg.Database, 90, time.Now)

	ids := func(q string) []string {
		t.Helper()
		sq, err := search.Parse(q)
		require.NoError(t, err, q)
		f := store.Filter{WorkspaceID: "ws", Search: sq.Clauses, Since: sq.Since, Until: sq.Until}
		p, err := s.List(context.Background(), f, nil, 100)
		require.NoError(t, err)
		out := []string{}
		for _, e := range p.Events {
			out = append(out, e.ID)
		}
		return out
	}
	tests := []struct {
		q    string
		want []string
	}{
		{"", []string{"c", "b", "a", "old"}},
		{"alice", []string{"a"}},
		{"ALICE", []string{"a"}},
		{"ängström", []string{"a"}}, // case-insensitive beyond ASCII
		{"example.com", []string{"c", "a", "old"}},
		{"source", []string{"c", "a", "old"}},      // event name
		{`"Source Created"`, []string{"a", "old"}}, // phrase
		{"snowflake_prod", []string{"b"}},          // resource name
		{"wh_1", []string{"c", "b"}},               // resource ids contain it
		{"100%", []string{"a"}},                    // % is literal
		{"%", []string{"a"}},                       // not a wildcard
		{"b_prod", []string{}},                     // _ is literal, not any character
		{"eb1_00", []string{}},                     // would match "Web1 00" if _ were a wildcard
		{`"\"the builder\""`, []string{"c"}},       // quotes are literal
		{"o'neil", []string{"c"}},                  // so is an apostrophe
		{`"' OR 1=1 --"`, []string{}},              // bound, not SQL
		{`event:"source created"`, []string{"a", "old"}},
		{`event:"Source Created" event:"Source Deleted"`, []string{"c", "a", "old"}},
		{`event:Source`, []string{}}, // event: is the whole name
		{"actor:alice", []string{"a"}},
		{"actor:bob@example", []string{"c"}},
		{"actor:tok_ci", []string{"b"}},
		{"resource:wh_1", []string{"c", "b"}},
		{"resource:snowflake", []string{"b"}},
		{"category:warehouses", []string{"b"}},
		{"actor_type:access_token", []string{"b"}},
		{"actor_type:USER", []string{"c", "a", "old"}},
		{"resource_type:warehouse", []string{"b"}},
		{"-event:\"Source Created\"", []string{"c", "b"}},
		{"-alice -bob", []string{"b", "old"}},
		{"actor_type:user source", []string{"c", "a", "old"}},
		{"created:>" + now.Add(-time.Hour).Format(time.RFC3339), []string{"c", "b", "a"}},
		{"created:<" + now.Add(time.Second).Format(time.RFC3339Nano), []string{"a", "old"}},
		{"created:" + now.Add(-72*time.Hour).Format(time.DateOnly), []string{"old"}},
		{"created:" + now.Add(-96*time.Hour).Format(time.DateOnly) + ".." + now.Add(-48*time.Hour).Format(time.DateOnly), []string{"old"}},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, ids(tt.q), "q=%s", tt.q)
	}
}

func TestFacetsCountEachEventOnce(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	now := time.Now().UTC().Add(-time.Hour)
	var evs []event.Event
	for i := range 5 {
		e := mkEvent("ws", fmt.Sprintf("a%d", i), "Source Created", now.Add(time.Duration(i)*time.Second))
		e.Actor = event.Actor{Type: "user", ID: "usr_alice", Name: "Alice"}
		if i == 4 {
			e.Actor.Name = "Alice Renamed" // the newest name wins
		}
		evs = append(evs, e)
	}
	for i := range 3 {
		e := mkEvent("ws", fmt.Sprintf("b%d", i), "Warehouses Disabled", now.Add(time.Duration(i)*time.Second))
		e.Category = "Warehouses"
		e.Actor = event.Actor{Type: "access_token", ID: "tok_1", Name: "CI"}
		evs = append(evs, e)
	}
	outside := mkEvent("ws", "outside", "Source Created", time.Now().Add(-91*24*time.Hour))
	other := mkEvent("ws_other", "x", "Source Created", now)
	stacktest.InsertEvents(t, conn, cfg.Database, append(evs, outside, other)...)
	stacktest.InsertEvents(t, conn, cfg.Database, evs...) // unmerged copies
	s := store.New(conn, cfg.Database, 90, time.Now)

	got, err := s.Facets(context.Background(), store.Filter{WorkspaceID: "ws"})
	require.NoError(t, err)
	require.Equal(t, store.Facets{
		Events: []store.EventCount{{Name: "Source Created", Count: 5}, {Name: "Warehouses Disabled", Count: 3}},
		Actors: []store.ActorCount{{Type: "user", ID: "usr_alice", Name: "Alice Renamed", Count: 5}, {Type: "access_token", ID: "tok_1", Name: "CI", Count: 3}},
	}, got)

	got, err = s.Facets(context.Background(), store.Filter{WorkspaceID: "ws", ActorType: "access_token"})
	require.NoError(t, err)
	require.Equal(t, []store.EventCount{{Name: "Warehouses Disabled", Count: 3}}, got.Events)
	require.Len(t, got.Actors, 1)

	sq, err := search.Parse("nobody-matches-this")
	require.NoError(t, err)
	got, err = s.Facets(context.Background(), store.Filter{WorkspaceID: "ws", Search: sq.Clauses})
	require.NoError(t, err)
	require.Equal(t, store.Facets{Events: []store.EventCount{}, Actors: []store.ActorCount{}}, got)
}
