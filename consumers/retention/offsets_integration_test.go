package retention_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/retention"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// TestOffsetsRecordKeepsItsDaysOnly: the retention job drops the offsets
// record's day partitions stored more than OffsetsRetentionDays days ago,
// whatever the events' window, and keeps the others.
func TestOffsetsRecordKeepsItsDaysOnly(t *testing.T) {
	t.Parallel()
	conn, ch := stacktest.ClickHouse(t, 90)
	now := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
	b, err := conn.PrepareBatch(context.Background(), migrations.Offsets.Insert(ch.Database))
	require.NoError(t, err)
	days := migrations.OffsetsRetentionDays
	for i, at := range []time.Time{
		now.Add(-time.Duration(days+2) * 24 * time.Hour), // 2026-11-16: dropped
		now.Add(-time.Duration(days+1) * 24 * time.Hour), // 2026-11-17: dropped
		now.Add(-time.Duration(days) * 24 * time.Hour),   // 2026-11-18, the cutoff's day: kept
		now.Add(-time.Hour),
	} {
		o := migrations.StoredOffset{Topic: "t", Offset: int64(i), StoredAt: at, ID: at.Format("20060102")}
		require.NoError(t, b.Append(migrations.Offsets.Values(&o)...))
	}
	require.NoError(t, b.Send())

	enf := retention.New(conn, ch.Database, 90, func() time.Time { return now }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	_, err = enf.RunOnce(context.Background())
	require.NoError(t, err)
	require.Equal(t, []string{"20261118", "20261125"}, column(t, conn, ch.Database, migrations.OffsetsTable, "id"))
}
