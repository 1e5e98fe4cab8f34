package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/search"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestReadsOnCurrentClickHouse runs the read queries on current ClickHouse
// (26.9, in process through chdb), on the schema the migrations create
// there: pages newest first with and without a cursor and filters (search
// values with quotes and backslashes included), facets, the export (in one
// chunk and in chunks of a day) and single events. Merges are stopped, so an
// unmerged copy of an event and a row past the retention window are on
// disk: neither may show.
func TestReadsOnCurrentClickHouse(t *testing.T) {
	ctx := context.Background()
	const db, days = "audittrail", 30
	srv := MigratedChdb(t, db, days)
	srv.StopMerges(t, db, migrations.Table)

	now := time.Now().UTC()
	ev := func(ws, id, name string, age time.Duration) event.Event {
		ts := now.Add(-age)
		return event.Event{ID: id, WorkspaceID: ws, Event: name, Category: "Sources", Timestamp: ts, ReceivedAt: ts,
			Actor:    event.Actor{Type: "user", ID: "usr_" + id, Name: "User " + id, Email: id + "@example.com"},
			Resource: event.Resource{Type: "source", ID: "src_1", Name: "Web"},
			Changes:  map[string]event.Change{"enabled": {Old: []byte("true"), New: []byte("false")}},
			Context:  event.Context{IP: "203.0.113.1"}}
	}
	a := ev("ws", "a", "Source Created", time.Hour)
	b := ev("ws", "b", "Source Deleted", 2*time.Hour)
	c := ev("ws", "c", "Source Created", 3*24*time.Hour)
	c.Actor.Name = `O'Brien \ "?"`
	d := ev("ws", "d", "Source Created", 10*24*time.Hour) // past the first two probes (a day, 8 days)
	expired := ev("ws", "expired", "Source Created", (days+10)*24*time.Hour)
	other := ev("ws_other", "other", "Source Created", time.Hour)
	stacktest.InsertEvents(t, srv, db, a, b, c, d, expired, other)
	stacktest.InsertEvents(t, srv, db, c) // an unmerged copy
	var stored uint64
	require.NoError(t, srv.QueryRow(ctx, "SELECT count() FROM "+db+"."+migrations.Table+" WHERE id IN (?, ?)", "c", "expired").Scan(&stored))
	require.EqualValues(t, 3, stored, "the copy and the expired row are on disk")

	s := New(srv, db, days, func() time.Time { return now })
	ids := func(p Page) []string {
		out := []string{}
		for _, e := range p.Events {
			out = append(out, e.ID)
		}
		return out
	}

	// Pages, newest first, the cursor continuing where the last page ended.
	p, err := s.List(ctx, Filter{WorkspaceID: "ws"}, nil, 2)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, ids(p))
	require.NotNil(t, p.Next)
	require.Equal(t, a.Timestamp.UnixNano(), p.Events[0].Timestamp.UnixNano())
	require.Equal(t, a.Actor, p.Events[0].Actor)
	require.JSONEq(t, "false", string(p.Events[0].Changes["enabled"].New))
	cur, err := DecodeCursor(p.Next.Encode())
	require.NoError(t, err)
	p, err = s.List(ctx, Filter{WorkspaceID: "ws"}, &cur, 2)
	require.NoError(t, err)
	require.Equal(t, []string{"c", "d"}, ids(p), "the copy once, the expired row never")
	require.Nil(t, p.Next)
	require.Equal(t, c.Actor.Name, p.Events[0].Actor.Name)

	// Filters, search and the time range.
	for _, tc := range []struct {
		f    Filter
		want []string
	}{
		{Filter{Events: []string{"Source Created", "Warehouses Disabled"}}, []string{"a", "c", "d"}},
		{Filter{Category: "Sources", ActorType: "user", ActorID: "usr_c", ResourceType: "source", ResourceID: "src_1"}, []string{"c"}},
		{Filter{Search: []search.Clause{{Field: search.Text, Values: []string{`o'brien \ "?`}}}}, []string{"c"}},
		{Filter{Search: []search.Clause{{Field: search.Actor, Values: []string{"USER A", "user b"}}}}, []string{"a", "b"}},
		{Filter{Search: []search.Clause{{Field: search.Event, Values: []string{"source created"}, Negate: true}}}, []string{"b"}},
		{Filter{ActorID: "' OR 1=1 --"}, []string{}},
		{Filter{Since: now.Add(-5 * 24 * time.Hour), Until: now.Add(-90 * time.Minute)}, []string{"b", "c"}},
		{Filter{Since: now.Add(-100 * 24 * time.Hour)}, []string{"a", "b", "c", "d"}},
	} {
		tc.f.WorkspaceID = "ws"
		p, err := s.List(ctx, tc.f, nil, 10)
		require.NoError(t, err, "%+v", tc.f)
		require.Equal(t, tc.want, ids(p), "%+v", tc.f)
	}

	// Facets count each event once, in the window only.
	fc, err := s.Facets(ctx, Filter{WorkspaceID: "ws"})
	require.NoError(t, err)
	require.Equal(t, []EventCount{{"Source Created", 3}, {"Source Deleted", 1}}, fc.Events)
	require.Equal(t, []ActorCount{
		{"user", "usr_a", "User a", 1}, {"user", "usr_b", "User b", 1},
		{"user", "usr_c", c.Actor.Name, 1}, {"user", "usr_d", "User d", 1},
	}, fc.Actors)
	fc, err = s.Facets(ctx, Filter{WorkspaceID: "ws", Events: []string{"Source Deleted"}})
	require.NoError(t, err)
	require.Equal(t, []EventCount{{"Source Deleted", 1}}, fc.Events)

	// The export (what the CSV is written from): newest first, each event
	// once, in one chunk and in chunks of a day.
	for _, chunk := range []uint64{200_000, 1} {
		s.exportChunkRows = chunk
		var got []string
		require.NoError(t, s.Export(ctx, Filter{WorkspaceID: "ws"}, func(r *migrations.Row) error {
			got = append(got, r.ID)
			return nil
		}))
		require.Equal(t, []string{"a", "b", "c", "d"}, got, "chunk rows %d", chunk)
	}

	// Single events.
	one, err := s.Get(ctx, "ws", "c")
	require.NoError(t, err)
	require.Equal(t, c.Actor, one.Actor)
	require.Equal(t, c.Timestamp.UnixNano(), one.Timestamp.UnixNano())
	_, err = s.Get(ctx, "ws", "expired")
	require.ErrorIs(t, err, ErrNotFound, "past the window")
	_, err = s.Get(ctx, "ws", "other")
	require.ErrorIs(t, err, ErrNotFound, "never across workspaces")
}

// MigratedChdb starts current ClickHouse in process (chdb) with database
// db migrated for a retention window of days (exported for the package's
// external tests).
func MigratedChdb(t *testing.T, db string, days int) *chdbtest.Server {
	t.Helper()
	srv := chdbtest.Start(t)
	_, err := migrations.Apply(context.Background(), srv, migrations.Options{Database: db, RetentionDays: days})
	require.NoError(t, err)
	return srv
}
