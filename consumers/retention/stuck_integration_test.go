package retention_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/internal/retentionpolicy"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestAStuckDeleteIsReported (18.16): a delete that does not finish (the
// table's merges are stopped) holds back the table's next deletes, and
// every run reports since when, by table, until it finished.
func TestAStuckDeleteIsReported(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, ch := stacktest.ClickHouse(t, 90)
	db := ch.Database
	now := time.Now().UTC()
	require.NoError(t, retentionpolicy.Set(ctx, conn, db, retentionpolicy.Policy{Workspace: "ws_30", Days: 30, ChangedBy: "operator", ChangedAt: now.Add(-time.Hour)}))
	stacktest.InsertEvents(t, conn, db, lateEvent("ws_30", "old", now, 40*24*time.Hour))
	require.NoError(t, conn.Exec(ctx, fmt.Sprintf("SYSTEM STOP MERGES %s.%s", db, migrations.Table)))
	t.Cleanup(func() { _ = conn.Exec(ctx, fmt.Sprintf("SYSTEM START MERGES %s.%s", db, migrations.Table)) })

	enf := retention.New(conn, db, 90, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	reg := prometheus.NewRegistry()
	reg.MustRegister(enf.Collectors()...)
	since := func() map[string]float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		out := map[string]float64{}
		for _, mf := range mfs {
			if mf.GetName() != "audittrail_writer_retention_mutation_pending_since_timestamp_seconds" {
				continue
			}
			for _, m := range mf.GetMetric() {
				out[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
		return out
	}
	require.Zero(t, since()[migrations.Table], "nothing pending before the first run")
	require.Contains(t, since(), migrations.KeptTable, "every table the job deletes from is reported from the start")

	_, err := enf.RunOnce(ctx) // queues the delete, which cannot run
	require.NoError(t, err)
	_, err = enf.RunOnce(ctx)
	require.NoError(t, err)
	var issued time.Time
	require.NoError(t, conn.QueryRow(ctx, "SELECT min(create_time) FROM system.mutations WHERE database = ? AND table = ? AND is_done = 0", db, migrations.Table).Scan(&issued))
	require.Equal(t, float64(issued.Unix()), since()[migrations.Table], "the pending delete is reported from when it was issued")
	var n uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND table = ?", db, migrations.Table).Scan(&n))
	require.EqualValues(t, 1, n, "no second delete while the first is unfinished")

	require.NoError(t, conn.Exec(ctx, fmt.Sprintf("SYSTEM START MERGES %s.%s", db, migrations.Table)))
	require.Eventually(t, func() bool {
		require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0", db).Scan(&n))
		return n == 0
	}, 2*time.Minute, 50*time.Millisecond)
	_, err = enf.RunOnce(ctx)
	require.NoError(t, err)
	require.Zero(t, since()[migrations.Table], "reported finished at the next run")
}
