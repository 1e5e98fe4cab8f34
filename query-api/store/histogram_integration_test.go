package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/chdbtest"
	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/search"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// histogramEvents are 7 events of ws around a Kolkata midnight (UTC+05:30)
// two days ago, one also resent (an unmerged copy), plus another
// workspace's event, and the buckets they make.
func histogramEvents(now time.Time) (all, resent []event.Event, midnight time.Time) {
	ist := time.FixedZone("IST", 5*3600+1800)
	d := now.In(ist).AddDate(0, 0, -2)
	midnight = time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, ist)
	offsets := []time.Duration{-61 * time.Minute, -59 * time.Minute, -30 * time.Second, 0, 4 * time.Minute, 5 * time.Minute, 61 * time.Minute}
	for i, off := range offsets {
		e := mkEvent("ws", fmt.Sprintf("h%d", i), "Source Created", midnight.Add(off).UTC())
		if i == 6 {
			e.Event, e.Category = "Warehouses Disabled", "Warehouses"
		}
		all = append(all, e)
	}
	all = append(all, mkEvent("ws_other", "o", "Source Created", midnight.UTC()))
	return all, all[3:4], midnight
}

// checkHistogram asks s for every interval and compares with the counts
// the events make.
func checkHistogram(t *testing.T, s *store.Store, midnight time.Time) {
	ctx := context.Background()
	ist, err := time.LoadLocation("Asia/Kolkata")
	require.NoError(t, err)
	b := func(t time.Time, n uint64) store.Bucket { return store.Bucket{Start: t.UTC(), Count: n} }
	cases := []struct {
		iv   store.Interval
		zone *time.Location
		f    store.Filter
		want []store.Bucket
	}{
		{store.Day, ist, store.Filter{WorkspaceID: "ws"}, []store.Bucket{b(midnight.AddDate(0, 0, -1), 3), b(midnight, 4)}},
		{store.Hour, ist, store.Filter{WorkspaceID: "ws"}, []store.Bucket{
			b(midnight.Add(-2*time.Hour), 1), b(midnight.Add(-time.Hour), 2), b(midnight, 3), b(midnight.Add(time.Hour), 1)}},
		{store.Hour, time.UTC, store.Filter{WorkspaceID: "ws"}, []store.Bucket{ // UTC hours start at :30 in Kolkata
			b(midnight.Add(-90*time.Minute), 2), b(midnight.Add(-30*time.Minute), 4), b(midnight.Add(30*time.Minute), 1)}},
		{store.FiveMinutes, time.UTC, store.Filter{WorkspaceID: "ws", Since: midnight.Add(-time.Minute), Until: midnight.Add(10 * time.Minute)},
			[]store.Bucket{b(midnight.Add(-5*time.Minute), 1), b(midnight, 2), b(midnight.Add(5*time.Minute), 1)}},
		{store.Minute, time.UTC, store.Filter{WorkspaceID: "ws", Search: []search.Clause{{Field: search.Event, Values: []string{"warehouses disabled"}}}},
			[]store.Bucket{b(midnight.Add(61*time.Minute), 1)}},
	}
	for _, c := range cases {
		got, err := s.Histogram(ctx, c.f, c.iv, c.zone)
		require.NoError(t, err, "%s in %s", c.iv, c.zone)
		require.Equal(t, c.want, got, "%s in %s", c.iv, c.zone)
	}
}

// TestHistogramCountsEachEventOnce: buckets per minute, 5 minutes, hour
// and day in a zone with a half-hour offset, each event once, with the
// view's filters, on ClickHouse 18.16.
func TestHistogramCountsEachEventOnce(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	all, resent, midnight := histogramEvents(time.Now())
	stacktest.InsertEvents(t, conn, cfg.Database, all...)
	stacktest.InsertEvents(t, conn, cfg.Database, resent...) // an unmerged copy
	checkHistogram(t, store.New(conn, cfg.Database, 90, time.Now), midnight)
}

// TestHistogramOnCurrentClickHouse: the same on current ClickHouse (chdb),
// merges stopped.
func TestHistogramOnCurrentClickHouse(t *testing.T) {
	srv := chdbtest.Start(t)
	ctx := context.Background()
	const db = "audittrail"
	_, err := migrations.Apply(ctx, srv, migrations.Options{Database: db, RetentionDays: 90})
	require.NoError(t, err)
	srv.StopMerges(t, db, migrations.Table)
	all, resent, midnight := histogramEvents(time.Now())
	stacktest.InsertEvents(t, srv, db, all...)
	stacktest.InsertEvents(t, srv, db, resent...)
	checkHistogram(t, store.New(srv, db, 90, time.Now), midnight)
}
