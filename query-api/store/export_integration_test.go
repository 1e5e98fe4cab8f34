package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestExportAndPagesWalkTheWindowNewestFirst exports (in chunks of a few
// rows) and pages through events spread over many days, so chunk and probe
// edges, empty days, copies, other workspaces and the window's edge are all
// crossed.
func TestExportAndPagesWalkTheWindowNewestFirst(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	now := time.Now().UTC()
	var evs []event.Event
	var want []string
	// 3 events on every 7th day back to day 84, plus two at the window edge.
	for d := 0; d <= 84; d += 7 {
		for i := range 3 {
			ts := now.Add(-time.Duration(d)*24*time.Hour - time.Duration(i)*time.Minute - time.Minute)
			id := fmt.Sprintf("d%02d_%d", d, i)
			evs = append(evs, event.Event{ID: id, WorkspaceID: "ws", Event: "Source Created", Category: "Sources",
				Timestamp: ts, ReceivedAt: ts, Actor: event.Actor{Type: "user", ID: "usr_1"}})
			want = append(want, id)
		}
	}
	edge := now.Add(-90*24*time.Hour + time.Minute)
	evs = append(evs,
		event.Event{ID: "inside", WorkspaceID: "ws", Event: "Source Created", Timestamp: edge, ReceivedAt: edge, Actor: event.Actor{Type: "user", ID: "u"}},
		event.Event{ID: "outside", WorkspaceID: "ws", Event: "Source Created", Timestamp: edge.Add(-2 * time.Minute), ReceivedAt: edge, Actor: event.Actor{Type: "user", ID: "u"}},
		event.Event{ID: "other_ws", WorkspaceID: "ws_other", Event: "Source Created", Timestamp: now.Add(-time.Hour), ReceivedAt: now, Actor: event.Actor{Type: "user", ID: "u"}},
	)
	want = append(want, "inside")
	stacktest.InsertEvents(t, conn, cfg.Database, evs...)
	stacktest.InsertEvents(t, conn, cfg.Database, evs[:10]...) // unmerged copies

	for _, chunk := range []uint64{1, 4, 1000} {
		s := New(conn, cfg.Database, 90, time.Now)
		s.exportChunkRows = chunk
		var got []string
		require.NoError(t, s.Export(context.Background(), Filter{WorkspaceID: "ws"}, func(r *migrations.Row) error {
			got = append(got, r.ID)
			return nil
		}))
		require.Equal(t, want, got, "chunk rows %d", chunk)
	}

	// Pages probe the newest day first, then further back: walking them
	// crosses every probe edge.
	for _, limit := range []int{1, 4, 50} {
		s := New(conn, cfg.Database, 90, time.Now)
		var got []string
		var after *Cursor
		for {
			p, err := s.List(context.Background(), Filter{WorkspaceID: "ws"}, after, limit)
			require.NoError(t, err)
			for _, e := range p.Events {
				got = append(got, e.ID)
			}
			if p.Next == nil {
				break
			}
			after = p.Next
		}
		require.Equal(t, want, got, "limit %d", limit)
	}

	// Filters apply; fn's error stops the export and comes back.
	s := New(conn, cfg.Database, 90, time.Now)
	s.exportChunkRows = 2
	n := 0
	stop := errors.New("stop")
	err := s.Export(context.Background(), Filter{WorkspaceID: "ws"}, func(*migrations.Row) error {
		if n++; n == 5 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	var got []string
	require.NoError(t, s.Export(context.Background(), Filter{WorkspaceID: "ws", Since: now.Add(-8 * 24 * time.Hour), ActorID: "usr_1"},
		func(r *migrations.Row) error { got = append(got, r.ID); return nil }))
	require.Equal(t, want[:6], got)
}
