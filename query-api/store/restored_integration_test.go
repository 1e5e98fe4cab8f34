package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// restoredConn is a connection of either server.
type restoredConn interface {
	stacktest.Batcher
	store.Conn
	Exec(ctx context.Context, query string, args ...any) error
}

func TestRestoredEventsOnClickHouse18(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	checkRestored(t, conn, ch.Database)
}

func TestRestoredEventsOnCurrentClickHouse(t *testing.T) {
	checkRestored(t, store.MigratedChdb(t, "rs", 90), "rs")
}

// checkRestored: an event restored into the long-term table (as the
// admin restore does) is served, marked "restored", by every read until
// its kept_until day, whatever its age, and not from that day on; a kept
// row that is not restored follows the window; an event both in the
// events table and in the long-term table is served once.
func checkRestored(t *testing.T, conn restoredConn, db string) {
	ctx := context.Background()
	now := time.Now().UTC()
	ev := func(id string, age time.Duration) event.Event {
		ts := now.Add(-age)
		return event.Event{ID: id, WorkspaceID: "ws", Event: "Source Created", Category: "Sources", Timestamp: ts, ReceivedAt: ts,
			Actor: event.Actor{Type: "user", ID: "usr_1"}}
	}
	live := ev("live", time.Hour)
	restored := ev("restored", 200*24*time.Hour)
	keptOld := ev("kept_old", 200*24*time.Hour+time.Hour) // kept, not restored: past the window
	both := ev("both", 2*time.Hour)                       // copied, its week not dropped yet
	stacktest.InsertEvents(t, conn, db, live, both)
	until := now.AddDate(0, 0, 10).Truncate(24 * time.Hour)
	batch, err := conn.PrepareBatch(ctx, migrations.KeptInsert(db))
	require.NoError(t, err)
	for _, k := range []struct {
		e        event.Event
		restored bool
		until    time.Time
	}{{restored, true, until}, {keptOld, false, time.Time{}}, {both, false, time.Time{}}} {
		row := migrations.RowOf(&k.e)
		require.NoError(t, batch.Append(migrations.KeptValues(&row, k.restored, k.until)...))
	}
	require.NoError(t, batch.Send())

	clock := now
	s := store.New(conn, db, 90, func() time.Time { return clock })
	f := store.Filter{WorkspaceID: "ws"}
	p, err := s.List(ctx, f, nil, 50)
	require.NoError(t, err)
	var ids []string
	for _, e := range p.Events {
		ids = append(ids, e.ID)
		require.Equal(t, e.ID == "restored", e.Restored, e.ID)
	}
	require.Equal(t, []string{"live", "both", "restored"}, ids, "newest first, each once, the old kept row hidden")
	e, err := s.Get(ctx, "ws", "restored")
	require.NoError(t, err)
	require.True(t, e.Restored)
	e, err = s.Get(ctx, "ws", "both")
	require.NoError(t, err)
	require.False(t, e.Restored)
	_, err = s.Get(ctx, "ws", "kept_old")
	require.ErrorIs(t, err, store.ErrNotFound)
	n, err := s.Count(ctx, f)
	require.NoError(t, err)
	require.EqualValues(t, 3, n)
	buckets, err := s.Histogram(ctx, f, store.Day, time.UTC)
	require.NoError(t, err)
	var inBuckets uint64
	for _, b := range buckets {
		inBuckets += b.Count
	}
	require.EqualValues(t, 3, inBuckets, "the histogram counts the restored event, and an event in both tables once")
	facets, err := s.Facets(ctx, f)
	require.NoError(t, err)
	require.Equal(t, []store.EventCount{{Name: "Source Created", Count: 3}}, facets.Events, "facets count the restored event, and an event in both tables once")
	var exported []string
	require.NoError(t, s.Export(ctx, f, func(r *migrations.Row) error {
		exported = append(exported, r.ID)
		return nil
	}))
	require.Equal(t, ids, exported)

	// Restoring an archived day that holds an event its policy kept
	// never shortens it: merges keep the copy kept longest.
	batch, err = conn.PrepareBatch(ctx, migrations.KeptInsert(db))
	require.NoError(t, err)
	row := migrations.RowOf(&both)
	require.NoError(t, batch.Append(migrations.KeptValues(&row, true, now.AddDate(0, 0, 1))...))
	require.NoError(t, batch.Send())
	require.NoError(t, conn.Exec(ctx, "OPTIMIZE TABLE "+db+"."+migrations.KeptTable+" FINAL"))
	var restoredFlags []uint8
	rows, err := conn.Query(ctx, "SELECT restored FROM "+db+"."+migrations.KeptTable+" WHERE id = 'both'")
	require.NoError(t, err)
	for rows.Next() {
		var r uint8
		require.NoError(t, rows.Scan(&r))
		restoredFlags = append(restoredFlags, r)
	}
	require.NoError(t, rows.Close())
	require.Equal(t, []uint8{0}, restoredFlags, "the policy-kept copy outlives the restored one")

	clock = until // kept until that day: expired from its first instant
	p, err = s.List(ctx, f, nil, 50)
	require.NoError(t, err)
	require.Len(t, p.Events, 2, "live and both; the restored event expired")
	_, err = s.Get(ctx, "ws", "restored")
	require.ErrorIs(t, err, store.ErrNotFound)
}
