package migrations_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chconn"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
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
}

func TestIDRegistryIsFilledFromStoredEvents(t *testing.T) {
	stacktest.Require(t)
	conn, cfg := stacktest.ClickHouseConn(t)
	defer conn.Close()
	ctx := context.Background()
	defer func() { _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database) }()
	o := migrations.Options{Database: cfg.Database, RetentionDays: 90}
	v, err := migrations.ServerVersion(ctx, conn)
	require.NoError(t, err)

	// A database from before the registry: migration 1 only, events stored.
	require.NoError(t, conn.Exec(ctx, "CREATE DATABASE "+cfg.Database))
	for _, s := range migrations.All()[0].Statements(o, v) {
		require.NoError(t, conn.Exec(ctx, s))
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	var events []event.Event
	for i := range 3 {
		events = append(events, event.Event{
			ID: fmt.Sprintf("ev_%d", i), WorkspaceID: "ws_a", Event: "Source Created", Category: "Sources",
			Timestamp: now.Add(-time.Duration(i) * time.Hour), ReceivedAt: now,
			Actor: event.Actor{Type: event.ActorUser, ID: "usr_1"},
		})
	}
	batch, err := conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.%s (%s)", cfg.Database, migrations.Table, strings.Join(migrations.InsertColumns, ", ")))
	require.NoError(t, err)
	for i := range events {
		row := migrations.RowOf(&events[i])
		require.NoError(t, batch.Append(row.Values()...))
	}
	require.NoError(t, batch.Send())

	res, err := migrations.Apply(ctx, conn, o)
	require.NoError(t, err)
	require.Contains(t, res.Versions, uint32(2))
	rows, err := conn.Query(ctx, fmt.Sprintf("SELECT workspace_id, id, timestamp_ns FROM %s.%s ORDER BY id", cfg.Database, migrations.IDsTable))
	require.NoError(t, err)
	defer rows.Close()
	var got []string
	for rows.Next() {
		var ws, id string
		var ns int64
		require.NoError(t, rows.Scan(&ws, &id, &ns))
		got = append(got, fmt.Sprintf("%s/%s@%d", ws, id, ns))
	}
	require.NoError(t, rows.Err())
	var want []string
	for _, e := range events {
		want = append(want, fmt.Sprintf("%s/%s@%d", e.WorkspaceID, e.ID, e.Timestamp.UnixNano()))
	}
	require.Equal(t, want, got)
}
