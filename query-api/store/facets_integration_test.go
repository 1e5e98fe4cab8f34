package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestFacetsCountSettledPartsAsTheyAre: facets over a merged week (its
// part counted as it is) and a week of unmerged copies (de-duplicated)
// equal both the expected counts and the facets read through the union of
// both tables with LIMIT 1 BY (the path taken when the long-term table
// holds matching events), on ClickHouse 18.16.
func TestFacetsCountSettledPartsAsTheyAre(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	now := time.Now().UTC()
	ev := func(id, name string, actor event.Actor, ts time.Time) event.Event {
		return event.Event{ID: id, WorkspaceID: "ws", Event: name, Category: "Sources", Timestamp: ts, ReceivedAt: ts, Actor: actor}
	}
	alice := event.Actor{Type: "user", ID: "usr_a", Name: "Alice"}
	token := event.Actor{Type: "access_token", ID: "tok_1", Name: "CI"}
	old := now.AddDate(0, 0, -20)
	var merged []event.Event
	for i := range 6 {
		a := alice
		if i == 5 {
			a.Name = "Alice Renamed" // the newest name wins
		}
		merged = append(merged, ev(fmt.Sprintf("a%d", i), "Source Created", a, old.Add(time.Duration(i)*time.Minute)))
	}
	merged = append(merged, ev("t0", "Warehouses Disabled", token, old), ev("t1", "Warehouses Disabled", token, old.Add(time.Second)))
	stacktest.InsertEvents(t, conn, cfg.Database, merged...)
	stacktest.InsertEvents(t, conn, cfg.Database, merged[2]) // a copy, merged away below
	require.NoError(t, conn.Exec(ctx, "OPTIMIZE TABLE "+cfg.Database+"."+migrations.Table+" FINAL"))
	bob := event.Actor{Type: "user", ID: "usr_b", Name: "Bob"}
	recent := now.Add(-2 * time.Hour)
	var copies []event.Event
	for i := range 3 {
		copies = append(copies, ev(fmt.Sprintf("b%d", i), "Source Created", bob, recent.Add(time.Duration(i)*time.Second)))
	}
	stacktest.InsertEvents(t, conn, cfg.Database, copies...)
	stacktest.InsertEvents(t, conn, cfg.Database, copies...) // unmerged copies

	s := New(conn, cfg.Database, 90, time.Now)
	parts, err := s.activeParts(ctx, cfg.Database+"."+migrations.Table)
	require.NoError(t, err)
	require.NotEmpty(t, settledRanges(parts), "the merged week's part owns its seconds")
	want := Facets{
		Events: []EventCount{{Name: "Source Created", Count: 9}, {Name: "Warehouses Disabled", Count: 2}},
		Actors: []ActorCount{{Type: "user", ID: "usr_a", Name: "Alice Renamed", Count: 6}, {Type: "user", ID: "usr_b", Name: "Bob", Count: 3}, {Type: "access_token", ID: "tok_1", Name: "CI", Count: 2}},
	}
	for _, f := range []Filter{{WorkspaceID: "ws"}, {WorkspaceID: "ws", ActorType: "user"}} {
		got, err := s.Facets(ctx, f)
		require.NoError(t, err)
		sc, err := s.scope(ctx, f)
		require.NoError(t, err)
		table, _, err := s.source(ctx)
		require.NoError(t, err)
		union, err := s.unionFacets(ctx, table, f, sc)
		require.NoError(t, err)
		require.Equal(t, union, got, "%+v: the same counts as the union read", f)
		if f.ActorType == "" {
			require.Equal(t, want, got)
		} else {
			require.Equal(t, []EventCount{{Name: "Source Created", Count: 9}}, got.Events)
			require.Len(t, got.Actors, 2)
		}
	}
}
