package idwindow_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/consumers/handover"
	"github.com/audittrail/audittrail/consumers/idwindow"
	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// The history records each larger count once, with when it was first
// noticed, per topic; a smaller count is not recorded. On ClickHouse
// 18.16 here, on current ClickHouse below.
func TestHistoryRecordsEachNewCount(t *testing.T) {
	conn, ch := stacktest.ClickHouse(t, 90)
	testHistory(t, idwindow.NewHistory(conn, ch.Database))
}

func TestHistoryRecordsEachNewCountOnCurrentClickHouse(t *testing.T) {
	srv := chdbtest.Start(t)
	_, err := migrations.Apply(context.Background(), srv, migrations.Options{Database: "audittrail", RetentionDays: 90})
	require.NoError(t, err)
	testHistory(t, idwindow.NewHistory(srv, "audittrail"))
}

func testHistory(t *testing.T, h *idwindow.History) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

	got, err := h.Observe(ctx, "events", 2, t0)
	require.NoError(t, err)
	require.Equal(t, []idwindow.Count{{Partitions: 2, NoticedAt: t0}}, got)
	got, err = h.Observe(ctx, "events", 2, t0.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, []idwindow.Count{{Partitions: 2, NoticedAt: t0}}, got, "an unchanged count is not recorded again")
	got, err = h.Observe(ctx, "other", 3, t0)
	require.NoError(t, err)
	require.Equal(t, []idwindow.Count{{Partitions: 3, NoticedAt: t0}}, got, "each topic has its own history")

	t1 := t0.Add(2 * time.Hour)
	got, err = h.Observe(ctx, "events", 4, t1)
	require.NoError(t, err)
	require.Equal(t, []idwindow.Count{{Partitions: 2, NoticedAt: t0}, {Partitions: 4, NoticedAt: t1}}, got)
	require.Equal(t, []int{2}, handover.Older(got, 4, t1.Add(time.Minute), handover.Window))

	// A stale answer (a broker that has not seen the increase yet) is not
	// recorded: counts only grow.
	got, err = h.Observe(ctx, "events", 2, t1.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, []idwindow.Count{{Partitions: 2, NoticedAt: t0}, {Partitions: 4, NoticedAt: t1}}, got)
}
