package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/stacktest"
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
		// New events arriving while paging land before the cursor and do
		// not disturb the walk.
		if pages == 1 {
			stacktest.InsertEvents(t, conn, cfg.Database, mkEvent("ws_a", "late", "Source Created", now))
		}
		next, err := store.DecodeCursor(p.Next.Encode())
		require.NoError(t, err)
		after = &next
	}
	var want []string
	for i := 56; i >= 0; i-- {
		want = append(want, fmt.Sprintf("evt_%03d", i))
	}
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
