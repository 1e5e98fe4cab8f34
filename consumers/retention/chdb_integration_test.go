package retention_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestDropsExpiredDaysOnCurrentClickHouse runs the enforcer on current
// ClickHouse (26.9, in process through chdb), on the schema the migrations
// create there: it lists the partitions in system.parts and drops the
// expired weeks of the events and lookup tables and the expired days of
// the id registry with the statements it builds.
func TestDropsExpiredDaysOnCurrentClickHouse(t *testing.T) {
	t.Parallel()
	srv := chdbtest.Start(t)
	ctx := context.Background()
	const db, days = "audittrail", 30
	// The tables' TTL would remove the expired rows at a merge of the
	// server's choosing; with merges stopped only the enforcer removes them.
	_, err := migrations.Apply(ctx, srv, migrations.Options{Database: db, RetentionDays: days})
	require.NoError(t, err)
	tables := []string{migrations.Table, migrations.IDsTable}
	for _, l := range migrations.Lookups {
		tables = append(tables, l.Table)
	}
	srv.StopMerges(t, db, tables...)

	now := time.Now().UTC()
	old := now.Add(-40 * 24 * time.Hour)
	stacktest.InsertEvents(t, srv, db, ev("old", old), ev("recent", now.Add(-time.Hour)))
	reg, err := srv.PrepareBatch(ctx, migrations.EventIDs.Insert(db))
	require.NoError(t, err)
	for _, at := range []time.Time{old, now.Add(-time.Hour)} {
		require.NoError(t, reg.Append(migrations.EventIDs.Values(&migrations.StoredID{Topic: "t", StoredAt: at, WorkspaceID: "ws", ID: "id_" + at.Format("20060102"), TimestampNs: at.UnixNano()})...))
	}
	require.NoError(t, reg.Send())

	ids := func(table string) []string {
		rows, err := srv.Query(ctx, "SELECT id FROM "+db+"."+table+" ORDER BY id")
		require.NoError(t, err)
		var out []string
		for rows.Next() {
			var id string
			require.NoError(t, rows.Scan(&id))
			out = append(out, id)
		}
		return out
	}
	enf := retention.New(srv, db, days, func() time.Time { return now }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	dropped, err := enf.RunOnce(ctx)
	require.NoError(t, err)
	oldDay := old.Format("20060102")
	oldWeek := weekID(old.AddDate(0, 0, -(int(old.Weekday())+6)%7).Format("2006-01-02")) // its Monday's day number
	require.Equal(t, []string{oldWeek}, dropped)
	ran := srv.Statements()
	require.Contains(t, ran, fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION ID '%s'", db, migrations.IDsTable, oldDay))
	for _, table := range tables[2:] {
		require.Contains(t, ran, fmt.Sprintf("ALTER TABLE %s.%s DROP PARTITION ID '%s'", db, table, oldWeek))
		require.Equal(t, []string{"recent"}, ids(table))
	}

	require.Equal(t, []string{"recent"}, ids(migrations.Table))
	require.Equal(t, []string{"id_" + now.Add(-time.Hour).Format("20060102")}, ids(migrations.IDsTable))

	// No partition of the events or lookup tables has an 8-digit id, which
	// the enforcer of releases before migration 5 (still running on a
	// writer during a rolling deploy or after a rollback) would drop when
	// before its cutoff day: it would take whole weeks inside the window.
	stacktest.InsertEvents(t, srv, db, ev("edge", now.Add(-days*24*time.Hour+2*time.Hour)))
	for _, table := range append(tables[:1:1], tables[2:]...) {
		ids, err := migrations.Partitions(ctx, srv, migrations.Options{Database: db}, table)
		require.NoError(t, err)
		require.NotEmpty(t, ids)
		for _, id := range ids {
			require.NotRegexp(t, `^\d{8}$`, id, "%s partition %s", table, id)
		}
	}

	again, err := enf.RunOnce(ctx)
	require.NoError(t, err)
	require.Empty(t, again, "idempotent")
}
