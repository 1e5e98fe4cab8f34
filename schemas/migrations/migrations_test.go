// Package migrations_test tests the ClickHouse migrations: version
// detection, DDL that adapts to the server (TTL on 19.6+, none on 18.16),
// the cluster variant, and, against the real server (integration tests, run
// when AUDITTRAIL_INTEGRATION=1), that applying them again or from two
// services at once is harmless.
package migrations_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

func TestParseVersion(t *testing.T) {
	for s, want := range map[string]migrations.Version{
		"18.16.1": {18, 16}, "19.6.2.11": {19, 6}, "24.8.4.13": {24, 8}, " 25.10.1 ": {25, 10},
	} {
		v, err := migrations.ParseVersion(s)
		require.NoError(t, err, s)
		require.Equal(t, want, v)
	}
	_, err := migrations.ParseVersion("unknown")
	require.Error(t, err)
	require.False(t, migrations.Version{18, 16}.SupportsTTL())
	require.False(t, migrations.Version{19, 5}.SupportsTTL())
	require.True(t, migrations.Version{19, 6}.SupportsTTL())
	require.True(t, migrations.Version{24, 8}.SupportsTTL())
}

func TestDDLAdaptsToTheServer(t *testing.T) {
	o := migrations.Options{Database: "audittrail", RetentionDays: 90}
	m := migrations.All()[0]
	old := strings.Join(m.Statements(o, migrations.Version{18, 16}), "\n")
	current := strings.Join(m.Statements(o, migrations.Version{24, 8}), "\n")
	require.NotContains(t, old, "TTL")
	require.Contains(t, current, "TTL timestamp + toIntervalDay(90)")
	ids := migrations.All()[1]
	require.NotContains(t, strings.Join(ids.Statements(o, migrations.Version{18, 16}), "\n"), "TTL")
	idsDDL := strings.Join(ids.Statements(o, migrations.Version{24, 8}), "\n")
	require.Contains(t, idsDDL, "TTL stored_at + toIntervalDay(91)")
	require.Contains(t, idsDDL, "ORDER BY (topic, partition, stored_at)")
	for _, col := range migrations.EventIDs.InsertColumns() {
		require.Contains(t, idsDDL, "\n    "+col+" ", "registry column %s is created", col)
	}
	for _, ddl := range []string{old, current} {
		require.Contains(t, ddl, "ReplacingMergeTree")
		require.Contains(t, ddl, "PARTITION BY toYYYYMMDD(timestamp)")
		require.Contains(t, ddl, "ORDER BY (workspace_id, timestamp_ns, id)")
		for _, col := range migrations.InsertColumns {
			require.Contains(t, ddl, "\n    "+col+" ", "column %s is created", col)
		}
	}
}

func TestApplyIsIdempotentOnTheRealServer(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90) // applies once
	ctx := context.Background()
	res, err := migrations.Apply(ctx, conn, migrations.Options{Database: cfg.Database, RetentionDays: 90})
	require.NoError(t, err)
	require.Empty(t, res.Versions, "nothing left to apply")
	require.NotZero(t, res.Server.Major)

	// Two services starting at once on a fresh database both succeed.
	fresh := stacktest.ClickHouseConfig(t)
	c2, err := chconn.Open(ctx, fresh)
	require.NoError(t, err)
	defer c2.Close()
	defer func() { _ = c2.Exec(context.Background(), "DROP DATABASE IF EXISTS "+fresh.Database) }()
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := migrations.Apply(ctx, c2, migrations.Options{Database: fresh.Database, RetentionDays: 30})
			errs <- err
		}()
	}
	for range 2 {
		select {
		case err := <-errs:
			require.NoError(t, err)
		case <-time.After(time.Minute):
			t.Fatal("migrations did not finish")
		}
	}
	var n uint64
	require.NoError(t, c2.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", fresh.Database, migrations.Table).Scan(&n))
	require.Equal(t, uint64(1), n)
	require.NoError(t, c2.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name IN (?, ?)", fresh.Database, migrations.LegacyTable, migrations.NextTable).Scan(&n))
	require.Zero(t, n, "a new deployment keeps no old or spare events table")
}

func TestWeekEnd(t *testing.T) {
	end, err := migrations.WeekEnd("20787") // Monday 2026-11-30
	require.NoError(t, err)
	require.Equal(t, "20261207", end)
	for _, bad := range []string{"20261130", "", "x", "-1"} {
		_, err := migrations.WeekEnd(bad)
		require.Error(t, err, bad)
	}
}
