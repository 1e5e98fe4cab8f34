package migrations_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/schemas/migrations"
	"github.com/audittrail/audittrail/schemas/migrations/migrationstest"
)

// stopAfterExchange is a connection whose process stops right after the
// EXCHANGE of migration 5, before the old table is renamed away.
type stopAfterExchange struct{ *chdbtest.Server }

func (c stopAfterExchange) Exec(ctx context.Context, q string, args ...any) error {
	if strings.HasPrefix(q, "RENAME TABLE rv.audit_events_v5 TO rv.audit_events_v4") {
		return errors.New("process killed")
	}
	return c.Server.Exec(ctx, q, args...)
}

// TestRunStoppedBetweenExchangeAndRenameOnCurrentClickHouse: a run of
// migration 5 stopped between EXCHANGE and RENAME left the old table
// under audit_events_v5; the next run renames it to audit_events_v4, so
// MoveLegacy moves its rows.
func TestRunStoppedBetweenExchangeAndRenameOnCurrentClickHouse(t *testing.T) {
	srv := chdbtest.Start(t)
	ctx := context.Background()
	o := migrations.Options{Database: "rv", RetentionDays: 30}
	require.NoError(t, migrationstest.BeforeLayout(ctx, srv, o))
	now := time.Now()
	require.NoError(t, srv.Exec(ctx, "INSERT INTO rv.audit_events (workspace_id, timestamp, timestamp_ns, id, event) VALUES ('ws_1', toDateTime(?), ?, 'old', 'x')", now.Unix()-60, now.UnixNano()-60e9))
	_, err := migrations.Apply(ctx, stopAfterExchange{srv}, o)
	require.ErrorContains(t, err, "process killed")
	_, err = migrations.Apply(ctx, srv, o) // the restart
	require.NoError(t, err)
	_, err = migrations.MoveLegacy(ctx, srv, o, now.AddDate(0, 0, -30).UTC().Format("20060102"))
	require.NoError(t, err)
	var n uint64
	require.NoError(t, srv.QueryRow(ctx, "SELECT count() FROM rv.audit_events WHERE id = 'old'").Scan(&n))
	require.EqualValues(t, 1, n, "the old event reached the events table")
	require.NoError(t, srv.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = 'rv' AND name IN ('audit_events_v4', 'audit_events_v5')").Scan(&n))
	require.Zero(t, n)
}

// lateInsert is a connection on which an insert that found audit_events
// before the swap (Atomic: the swap does not wait for it) commits into
// the old table right after MoveLegacy copied the day.
type lateInsert struct {
	*chdbtest.Server
	done bool
}

func (c *lateInsert) Exec(ctx context.Context, q string, args ...any) error {
	err := c.Server.Exec(ctx, q, args...)
	if err == nil && !c.done && strings.HasPrefix(q, "INSERT INTO rv.audit_events ") && strings.Contains(q, "audit_events_v4") {
		c.done = true
		now := time.Now()
		return c.Server.Exec(ctx, "INSERT INTO rv.audit_events_v4 (workspace_id, timestamp, timestamp_ns, id, event) VALUES ('ws_1', toDateTime(?), ?, 'late', 'x')", now.Unix()-30, now.UnixNano()-30e9)
	}
	return err
}

// TestMoveKeepsLateInsertsOnCurrentClickHouse: a row committed into the
// old table after its day was copied is copied too, not dropped.
func TestMoveKeepsLateInsertsOnCurrentClickHouse(t *testing.T) {
	srv := chdbtest.Start(t)
	ctx := context.Background()
	o := migrations.Options{Database: "rv", RetentionDays: 30}
	require.NoError(t, migrationstest.BeforeLayout(ctx, srv, o))
	now := time.Now()
	require.NoError(t, srv.Exec(ctx, "INSERT INTO rv.audit_events (workspace_id, timestamp, timestamp_ns, id, event) VALUES ('ws_1', toDateTime(?), ?, 'old', 'x')", now.Unix()-60, now.UnixNano()-60e9))
	_, err := migrations.Apply(ctx, srv, o)
	require.NoError(t, err)
	_, err = migrations.MoveLegacy(ctx, &lateInsert{Server: srv}, o, now.AddDate(0, 0, -30).UTC().Format("20060102"))
	require.NoError(t, err)
	var n uint64
	require.NoError(t, srv.QueryRow(ctx, "SELECT count() FROM (SELECT id FROM rv.audit_events WHERE id IN ('old', 'late') LIMIT 1 BY timestamp_ns, id)").Scan(&n))
	require.EqualValues(t, 2, n, "both events stored, once each")
}
