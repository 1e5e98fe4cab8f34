// Package retention_test checks retention on the real ClickHouse server
// (integration tests, run when AUDITTRAIL_INTEGRATION=1): only whole weeks
// (events and lookup tables) and days (id registry) past the window are
// dropped, on schedule.
package retention_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

func ev(id string, ts time.Time) event.Event {
	return event.Event{ID: id, WorkspaceID: "ws", Event: "Source Created", Category: "Sources", Timestamp: ts, ReceivedAt: ts,
		Actor: event.Actor{Type: "user", ID: "u"}}
}

func TestDropsWholeWeeksPastTheWindowOnly(t *testing.T) {
	t.Parallel()
	conn, ch := stacktest.ClickHouse(t, 90)
	now := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
	cutoff := now.Add(-90 * 24 * time.Hour) // 2026-08-27T15:00Z, in the week of Monday 2026-08-24
	events := []event.Event{
		ev("old_week", time.Date(2026, 8, 20, 12, 0, 0, 0, time.UTC)),
		ev("week_before_cutoff", time.Date(2026, 8, 23, 23, 59, 59, 0, time.UTC)),
		ev("cutoff_week_early", time.Date(2026, 8, 24, 1, 0, 0, 0, time.UTC)), // expired, but its week is not whole
		ev("inside", cutoff.Add(time.Hour)),
		ev("recent", now.Add(-time.Hour)),
	}
	stacktest.InsertEvents(t, conn, ch.Database, events...)
	// Id registry rows stored on the days around the registry's cutoff
	// (the window and a day: 91 days, 2026-08-26).
	reg, err := conn.PrepareBatch(context.Background(), migrations.EventIDs.Insert(ch.Database))
	require.NoError(t, err)
	for _, at := range []time.Time{now.Add(-93 * 24 * time.Hour), now.Add(-92 * 24 * time.Hour), now.Add(-91*24*time.Hour + time.Hour), now.Add(-3 * 24 * time.Hour), now.Add(-time.Hour)} {
		require.NoError(t, reg.Append(migrations.EventIDs.Values(&migrations.StoredID{Topic: "t", StoredAt: at, WorkspaceID: "ws", ID: at.Format("20060102")})...))
	}
	require.NoError(t, reg.Send())
	registered := func() []string { return column(t, conn, ch.Database, migrations.IDsTable, "id") }

	enf := retention.New(conn, ch.Database, 90, func() time.Time { return now }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.Equal(t, "20260827", enf.Cutoff())
	dropped, err := enf.RunOnce(context.Background())
	require.NoError(t, err)
	require.Equal(t, []string{weekID("2026-08-17")}, dropped)

	waitForMutations(t, conn, ch.Database)
	ids := stacktest.VisibleIDs(t, conn, ch.Database)
	require.Equal(t, map[string]int{"ws/inside": 1, "ws/recent": 1}, ids,
		"whole expired weeks are dropped; the partly expired week's rows before the cutoff's day are deleted")
	for _, l := range migrations.Lookups {
		require.Equal(t, []string{"inside", "recent"}, column(t, conn, ch.Database, l.Table, "id"), "%s drops the same weeks and deletes the same rows", l.Table)
	}
	require.Equal(t, []string{"20260826", "20261122", "20261125"}, registered(), "the id registry keeps the window and a day, in whole days")

	again, err := enf.RunOnce(context.Background())
	require.NoError(t, err)
	require.Empty(t, again, "idempotent")

	// A week later the cutoff's week is whole and goes too.
	enf = retention.New(conn, ch.Database, 90, func() time.Time { return now.Add(7 * 24 * time.Hour) }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	dropped, err = enf.RunOnce(context.Background())
	require.NoError(t, err)
	require.Equal(t, []string{weekID("2026-08-24")}, dropped)
	require.Equal(t, map[string]int{"ws/recent": 1}, stacktest.VisibleIDs(t, conn, ch.Database))
}

func TestRunDropsOnASchedule(t *testing.T) {
	t.Parallel()
	conn, ch := stacktest.ClickHouse(t, 1)
	now := time.Now().UTC()
	stacktest.InsertEvents(t, conn, ch.Database, ev("ten_days_old", now.Add(-10*24*time.Hour)), ev("fresh", now)) // its week is whole past the window
	enf := retention.New(conn, ch.Database, 1, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); enf.Run(ctx, 50*time.Millisecond) }()
	require.Eventually(t, func() bool {
		return fmt.Sprint(stacktest.VisibleIDs(t, conn, ch.Database)) == "map[ws/fresh:1]"
	}, 30*time.Second, 50*time.Millisecond)
	cancel()
	<-done
}

// column returns a column of db.table, sorted, each value once.
func column(t *testing.T, conn driver.Conn, db, table, name string) []string {
	rows, err := conn.Query(context.Background(), fmt.Sprintf("SELECT DISTINCT %s FROM %s.%s ORDER BY %s", name, db, table, name))
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		require.NoError(t, rows.Scan(&v))
		out = append(out, v)
	}
	require.NoError(t, rows.Err())
	return out
}

// weekID is the partition id of the week starting on monday (YYYY-MM-DD):
// its day number (migrations.WeekPartition).
func weekID(monday string) string {
	t, err := time.Parse("2006-01-02", monday)
	if err != nil || t.Weekday() != time.Monday {
		panic("weekID: want a Monday, got " + monday)
	}
	return fmt.Sprint(t.Unix() / 86400)
}
