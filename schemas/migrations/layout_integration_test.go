package migrations_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/migrations/migrationstest"
)

// TestLayoutMoveUnderIngestOnTheRealServer moves a schema made before
// migration 5 (day partitions) to the events layout on 18.16 while a
// writer goes on inserting into audit_events: every event, old or new,
// ends up in the new table exactly once, the lookup tables hold each once,
// and the old table is gone.
func TestLayoutMoveUnderIngestOnTheRealServer(t *testing.T) {
	conn, cfg := stacktest.UnmigratedClickHouse(t)
	testMoveUnderIngest(t, conn, cfg.Database)
}

// TestLayoutMoveUnderIngestOnCurrentClickHouse is the same on current
// ClickHouse (chdb), where the swap is EXCHANGE TABLES.
func TestLayoutMoveUnderIngestOnCurrentClickHouse(t *testing.T) {
	srv := chdbtest.Start(t)
	testMoveUnderIngest(t, srv, "audittrail")
}

func testMoveUnderIngest(t *testing.T, conn migrations.Conn, db string) {
	ctx := context.Background()
	o := migrations.Options{Database: db, RetentionDays: 30}
	require.NoError(t, migrationstest.BeforeLayout(ctx, conn, o))

	// Old rows: 40 over the last 20 days, one past the window, a copy of
	// one (not merged yet, or merged: either way one event).
	now := time.Now().UTC()
	var old []event.Event
	for i := range 40 {
		old = append(old, layoutEvent(fmt.Sprintf("old_%02d", i), now.Add(-time.Duration(i)*12*time.Hour)))
	}
	expired := layoutEvent("expired", now.Add(-40*24*time.Hour))
	require.NoError(t, insert(conn, db, append(old, expired, old[3])))

	// The writer: batches of new events until stopped, each retried until
	// stored, as the writer does. On 18.16 an insert that meets the
	// creation of a view fails ("..._mv doesn't exist": the server
	// registers the view as a dependency before it exists) and writes
	// nothing; the writer retries it. The swap itself fails no insert.
	var stored atomic.Int64
	var failures atomic.Int64
	var mu sync.Mutex
	var otherFailure error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := 0; ; b++ {
			select {
			case <-stop:
				return
			default:
			}
			batch := []event.Event{layoutEvent(fmt.Sprintf("new_%04d_a", b), time.Now()), layoutEvent(fmt.Sprintf("new_%04d_b", b), time.Now().Add(-5*24*time.Hour))}
			for err := insert(conn, db, batch); err != nil; err = insert(conn, db, batch) {
				t.Logf("insert failed (retried): %v", err)
				failures.Add(1)
				if !strings.Contains(err.Error(), "_mv doesn't exist") {
					mu.Lock()
					otherFailure = err
					mu.Unlock()
				}
			}
			stored.Add(int64(len(batch)))
		}
	}()
	require.Eventually(t, func() bool { return stored.Load() >= 10 }, time.Minute, time.Millisecond)

	res, err := migrations.Apply(ctx, conn, o)
	require.NoError(t, err)
	require.Equal(t, []uint32{5, 6, 7, 8, 9}, res.Versions, "the events layout, the integrity log's tables, the retention policies, the tile notes, the offsets record")
	swapped := stored.Load()
	require.Eventually(t, func() bool { return stored.Load() >= swapped+10 }, time.Minute, time.Millisecond, "inserts go on after the swap")
	cutoff := now.Add(-30 * 24 * time.Hour).Format("20060102")
	moved, err := migrations.MoveLegacy(ctx, conn, o, cutoff)
	require.NoError(t, err)
	require.NotEmpty(t, moved)
	copied := stored.Load()
	require.Eventually(t, func() bool { return stored.Load() >= copied+10 }, time.Minute, time.Millisecond, "inserts go on after the move")
	close(stop)
	wg.Wait()
	require.NoError(t, otherFailure, "no insert failed but those meeting a view's creation")
	t.Logf("%d events inserted during the move, %d inserts retried", stored.Load(), failures.Load())

	want := map[string]int{}
	for _, e := range old {
		want[e.ID] = 1
	}
	for b := 0; b < int(stored.Load())/2; b++ {
		want[fmt.Sprintf("new_%04d_a", b)], want[fmt.Sprintf("new_%04d_b", b)] = 1, 1
	}
	require.Equal(t, want, visible(t, conn, db, migrations.Table), "every event once, the expired one dropped")
	for _, l := range migrations.Lookups {
		require.Equal(t, want, visible(t, conn, db, l.Table), "%s holds every event once", l.Table)
	}
	var n uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", db, migrations.LegacyTable).Scan(&n))
	require.Zero(t, n, "the old table is dropped")

	// Later starts and moves change nothing.
	res, err = migrations.Apply(ctx, conn, o)
	require.NoError(t, err)
	require.Empty(t, res.Versions)
	moved, err = migrations.MoveLegacy(ctx, conn, o, cutoff)
	require.NoError(t, err)
	require.Empty(t, moved)
	require.Equal(t, want, visible(t, conn, db, migrations.Table))
}

func layoutEvent(id string, ts time.Time) event.Event {
	return event.Event{ID: id, WorkspaceID: "ws_1", Event: "Source Created", Category: "Sources", Timestamp: ts, ReceivedAt: ts,
		Actor: event.Actor{Type: "user", ID: "usr_1"}, Resource: event.Resource{Type: "source", ID: "src_1"}}
}

// insert writes events into audit_events as the writer does.
func insert(conn migrations.Conn, db string, events []event.Event) error {
	ctx := context.Background()
	batch, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", db, migrations.Table, strings.Join(migrations.InsertColumns, ", ")))
	if err != nil {
		return err
	}
	for i := range events {
		r := migrations.RowOf(&events[i])
		if err := batch.Append(r.Values()...); err != nil {
			_ = batch.Abort()
			return err
		}
	}
	return batch.Send()
}

// visible counts each id as a reader sees the table: copies of one key
// collapsed.
func visible(t *testing.T, conn migrations.Conn, db, table string) map[string]int {
	rows, err := conn.Query(context.Background(), fmt.Sprintf(
		"SELECT id, count() FROM (SELECT id FROM %s.%s LIMIT 1 BY workspace_id, timestamp_ns, id) GROUP BY id", db, table))
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n uint64
		require.NoError(t, rows.Scan(&id, &n))
		out[id] = int(n)
	}
	require.NoError(t, rows.Err())
	return out
}
