package retention_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestCapacityOfKeptEvents measures what keeping events past the
// deployment's window costs on ClickHouse 18.16 (the capacity figure of
// docs/retention.md): realistic events (the load generator's) and their
// log, stored (compressed column bytes, system.parts, after merges) in the
// events table with its lookup tables and leaves, then moved by the
// retention job into the long-term tables for a workspace with a 400-day
// policy. A kept event costs its row and its leaf in the long-term tables
// (no lookup rows); its stored hashes stay as for any live event.
func TestCapacityOfKeptEvents(t *testing.T) {
	t.Parallel()
	conn, ch := stacktest.ClickHouse(t, 90)
	ctx := context.Background()
	const n = 100 * 256
	now := time.Now().UTC()
	old := now.Add(-200 * 24 * time.Hour)
	// Spread over 50 days, as a busy workspace's events are.
	logOf(t, conn, ch.Database, events(t, "ws_m", n, func(i int) time.Time { return old.Add(time.Duration(i) * 50 * 24 * time.Hour / n) }))
	optimize := func(tables ...string) {
		for _, table := range tables {
			require.NoError(t, conn.Exec(ctx, "OPTIMIZE TABLE "+ch.Database+"."+table+" FINAL"))
		}
	}
	live := []string{migrations.Table, migrations.LeavesTable, migrations.HashesTable}
	for _, l := range migrations.Lookups {
		live = append(live, l.Table)
	}
	optimize(live...)
	bytes := func(table string) float64 {
		var b uint64
		require.NoError(t, conn.QueryRow(ctx, "SELECT sum(data_compressed_bytes) FROM system.parts WHERE database = ? AND table = ? AND active",
			ch.Database, table).Scan(&b))
		return float64(b)
	}
	lookups := 0.0
	for _, l := range migrations.Lookups {
		lookups += bytes(l.Table)
	}
	eventsB, leavesB, hashesB := bytes(migrations.Table), bytes(migrations.LeavesTable), bytes(migrations.HashesTable)

	require.NoError(t, retentionpolicy.Set(ctx, conn, ch.Database, retentionpolicy.Policy{Workspace: "ws_m", Days: 400, ChangedBy: "capacity", ChangedAt: now}))
	e := retention.New(conn, ch.Database, 90, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	_, err := e.RunOnce(ctx)
	require.NoError(t, err)
	optimize(migrations.KeptTable, migrations.KeptLeavesTable)
	keptB, keptLeavesB := bytes(migrations.KeptTable), bytes(migrations.KeptLeavesTable)
	require.Zero(t, bytes(migrations.Table), "every week moved")
	var rows uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM "+ch.Database+"."+migrations.KeptTable).Scan(&rows))
	require.EqualValues(t, n, rows, "every event kept, once")

	const million = 1e6
	mb := func(b float64) float64 { return b / n * million / 1e6 }
	t.Logf("per million events (MB, compressed): live window: events %.1f + lookups %.1f + leaves %.1f + stored hashes %.1f = %.1f; "+
		"kept past the window: events %.1f + leaves %.1f + stored hashes %.1f = %.1f (%.0f%% of live)",
		mb(eventsB), mb(lookups), mb(leavesB), mb(hashesB), mb(eventsB+lookups+leavesB+hashesB),
		mb(keptB), mb(keptLeavesB), mb(hashesB), mb(keptB+keptLeavesB+hashesB), 100*(keptB+keptLeavesB+hashesB)/(eventsB+lookups+leavesB+hashesB))
	require.Less(t, keptB+keptLeavesB, eventsB+lookups+leavesB, "a kept event costs less than a live one: no lookup rows")
	require.Greater(t, keptB, 0.5*eventsB, "the kept table holds the whole rows")
}
