package retention_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/internal/stacktest"
)

// switchConn is a ClickHouse connection that fails every query once down
// is set, as when the server is unreachable.
type switchConn struct {
	retention.Conn
	down bool
}

func (c *switchConn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	if c.down {
		return nil, errors.New("dial tcp: connection refused")
	}
	return c.Conn.Query(ctx, query, args...)
}

// TestMetricsTellTheRunsAndTheOldestDay checks the job's metrics, which
// the alert rules read: a run counts, stamps its success and the oldest
// day kept; a failed run (the database is gone) counts as failed and keeps
// the last success.
func TestMetricsTellTheRunsAndTheOldestDay(t *testing.T) {
	t.Parallel()
	conn, ch := stacktest.ClickHouse(t, 90)
	now := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
	stacktest.InsertEvents(t, conn, ch.Database,
		ev("expired", time.Date(2026, 8, 20, 12, 0, 0, 0, time.UTC)),
		ev("oldest_kept", time.Date(2026, 9, 3, 8, 0, 0, 0, time.UTC)),
		ev("recent", now.Add(-time.Hour)))
	sw := &switchConn{Conn: conn}
	enf := retention.New(sw, ch.Database, 90, func() time.Time { return now }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(enf.Collectors()...)
	gauge := func(name string) float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("%s not gathered", name)
		return 0
	}
	runs := func(result string) int {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if mf.GetName() == "audittrail_writer_retention_runs_total" && m.GetLabel()[0].GetValue() == result {
					return int(m.GetCounter().GetValue())
				}
			}
		}
		return -1
	}
	require.Equal(t, float64(90*24*3600), gauge("audittrail_writer_retention_window_seconds"))
	require.Zero(t, gauge("audittrail_writer_retention_last_success_timestamp_seconds"), "no success yet")

	_, err := enf.RunOnce(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, runs("ok"))
	require.Equal(t, float64(now.Unix()), gauge("audittrail_writer_retention_last_success_timestamp_seconds"))
	// The oldest week kept (migration 5's week partitions) starts on the
	// Monday before the oldest event kept.
	require.Equal(t, float64(time.Date(2026, 8, 31, 0, 0, 0, 0, time.UTC).Unix()), gauge("audittrail_writer_oldest_partition_timestamp_seconds"))

	sw.down = true
	_, err = enf.RunOnce(context.Background())
	require.Error(t, err, "ClickHouse unreachable")
	require.Equal(t, 1, runs("failed"))
	require.Equal(t, 1, runs("ok"))
	require.Equal(t, float64(now.Unix()), gauge("audittrail_writer_retention_last_success_timestamp_seconds"), "a failure keeps the last success")
}
