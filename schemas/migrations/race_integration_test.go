package migrations

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chdbtest"
)

// TestSecondMigratorDoesNotSwapTheLiveTableOutOnCurrentClickHouse: two
// services apply migration 5 at once on an Atomic database. B found the
// old layout before A swapped; A swaps and a writer stores an event; then
// B creates its new table and swaps. B must not exchange A's live table
// away, and its empty table goes at its next start.
func TestSecondMigratorDoesNotSwapTheLiveTableOutOnCurrentClickHouse(t *testing.T) {
	srv := chdbtest.Start(t)
	ctx := context.Background()
	o := Options{Database: "rv", RetentionDays: 30}
	count := func(q string) uint64 {
		var n uint64
		require.NoError(t, srv.QueryRow(ctx, q).Scan(&n))
		return n
	}
	_, err := Apply(ctx, srv, o) // service A
	require.NoError(t, err)
	require.NoError(t, srv.Exec(ctx, "INSERT INTO rv.audit_events (workspace_id, timestamp, timestamp_ns, id, event) VALUES ('ws_1', now(), toInt64(now())*1000000000, 'after_swap', 'x')"))
	require.NoError(t, swap(ctx, srv, o, current)) // service B, after its layout check
	require.EqualValues(t, 1, count("SELECT count() FROM rv.audit_events WHERE id = 'after_swap'"), "the event is in the table readers read")
	_, err = Apply(ctx, srv, Options{Database: "rv", RetentionDays: 30, Reapply: true}) // B's next start
	require.NoError(t, err)
	require.Zero(t, count("SELECT count() FROM system.tables WHERE database = 'rv' AND name = 'audit_events_v5'"))
	require.EqualValues(t, 1, count("SELECT count() FROM rv.audit_events WHERE id = 'after_swap'"))
}
