package store_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/query-api/search"
	"github.com/audittrail/audittrail/query-api/store"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// histogramNow is the clock of the histogram tests: the events lie at fixed
// instants around two offset changes and a half-hour zone's midnight.
var histogramNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// kolkataMidnight is 2026-11-10 00:00 in Asia/Kolkata (UTC+05:30).
var kolkataMidnight = time.Date(2026, 11, 9, 18, 30, 0, 0, time.UTC)

// histogramEvents are the events of ws: seven around kolkataMidnight (in
// the week of Monday 9 November) and three across New York's clocks going
// back on 1 November 2026 at 06:00 UTC (in the week of Monday 26
// October), plus another workspace's event.
func histogramEvents() []event.Event {
	var all []event.Event
	offsets := []time.Duration{-61 * time.Minute, -59 * time.Minute, -30 * time.Second, 0, 4 * time.Minute, 5 * time.Minute, 61 * time.Minute}
	for i, off := range offsets {
		e := mkEvent("ws", fmt.Sprintf("h%d", i), "Source Created", kolkataMidnight.Add(off))
		if i == 6 {
			e.Event, e.Category = "Warehouses Disabled", "Warehouses"
		}
		all = append(all, e)
	}
	for i, at := range []string{"2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z", "2026-11-01T07:10:00Z"} {
		ts, _ := time.Parse(time.RFC3339, at)
		all = append(all, mkEvent("ws", fmt.Sprintf("ny%d", i), "Source Deleted", ts))
	}
	return append(all, mkEvent("ws_other", "o", "Source Created", kolkataMidnight))
}

func zone(t *testing.T, name string) *time.Location {
	l, err := time.LoadLocation(name)
	require.NoError(t, err)
	return l
}

// checkHistogram asks s for every interval and compares with the counts
// the events make, and each histogram's total with the events List pages
// through for the same filter.
func checkHistogram(t *testing.T, s *store.Store) {
	ctx := context.Background()
	ist, ny := zone(t, "Asia/Kolkata"), zone(t, "America/New_York")
	m := kolkataMidnight
	b := func(t time.Time, n uint64) store.Bucket { return store.Bucket{Start: t.UTC(), Count: n} }
	at := func(s string) time.Time { ts, _ := time.Parse(time.RFC3339, s); return ts }
	ws := store.Filter{WorkspaceID: "ws"}
	kolkata := store.Filter{WorkspaceID: "ws", Events: []string{"Source Created", "Warehouses Disabled"}}
	created := store.Filter{WorkspaceID: "ws", Events: []string{"Source Created"}} // one event name: the lookup table
	cases := []struct {
		name string
		iv   store.Interval
		zone *time.Location
		f    store.Filter
		want []store.Bucket
	}{
		{"Kolkata days", store.Day, ist, kolkata, []store.Bucket{b(m.AddDate(0, 0, -1), 3), b(m, 4)}},
		{"Kolkata hours", store.Hour, ist, kolkata, []store.Bucket{
			b(m.Add(-2*time.Hour), 1), b(m.Add(-time.Hour), 2), b(m, 3), b(m.Add(time.Hour), 1)}},
		{"UTC hours start at :30 in Kolkata", store.Hour, time.UTC, kolkata, []store.Bucket{
			b(m.Add(-90*time.Minute), 2), b(m.Add(-30*time.Minute), 4), b(m.Add(30*time.Minute), 1)}},
		{"5 minutes in a window", store.FiveMinutes, time.UTC, store.Filter{WorkspaceID: "ws", Since: m.Add(-time.Minute), Until: m.Add(10 * time.Minute)},
			[]store.Bucket{b(m.Add(-5*time.Minute), 1), b(m, 2), b(m.Add(5*time.Minute), 1)}},
		{"minutes of a search", store.Minute, time.UTC, store.Filter{WorkspaceID: "ws", Search: []search.Clause{{Field: search.Event, Values: []string{"warehouses disabled"}}}},
			[]store.Bucket{b(m.Add(61*time.Minute), 1)}},
		{"one event name (lookup table), Kolkata days", store.Day, ist, created, []store.Bucket{b(m.AddDate(0, 0, -1), 3), b(m, 3)}},
		{"New York days: 1 November has 25 hours", store.Day, ny, ws, []store.Bucket{
			b(at("2026-11-01T04:00:00Z"), 3), b(at("2026-11-09T05:00:00Z"), 7)}}, // Kolkata's midnight is 13:30 in New York
		{"New York hours: 01:00 twice", store.Hour, ny, store.Filter{WorkspaceID: "ws", Until: at("2026-11-02T00:00:00Z")}, []store.Bucket{
			b(at("2026-11-01T05:00:00Z"), 1), b(at("2026-11-01T06:00:00Z"), 1), b(at("2026-11-01T07:00:00Z"), 1)}},
		{"outside the retention window", store.Day, ny, store.Filter{WorkspaceID: "ws", Until: histogramNow.AddDate(0, 0, -91)}, []store.Bucket{}},
	}
	for _, c := range cases {
		got, err := s.Histogram(ctx, c.f, c.iv, c.zone)
		require.NoError(t, err, c.name)
		require.Equal(t, c.want, got, c.name)
		var total uint64
		for _, bk := range got {
			total += bk.Count
		}
		p, err := s.List(ctx, c.f, nil, 1000)
		require.NoError(t, err)
		require.EqualValues(t, len(p.Events), total, "%s: the histogram counts what the list serves", c.name)
	}
}

// recorder records the statements a store runs.
type recorder struct {
	store.Conn
	mu   sync.Mutex
	sqls []string
}

func (r *recorder) Query(ctx context.Context, q string, args ...any) (driver.Rows, error) {
	r.mu.Lock()
	r.sqls = append(r.sqls, q)
	r.mu.Unlock()
	return r.Conn.Query(ctx, q, args...)
}

func (r *recorder) countedSettled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, q := range r.sqls {
		if strings.Contains(q, "UNION ALL") {
			return true
		}
	}
	return false
}

// execer runs a statement.
type execer interface {
	Exec(ctx context.Context, query string, args ...any) error
}

// settle merges every partition of the events and lookup tables into one
// part, as ClickHouse does in time.
func settle(t *testing.T, conn execer, db string) {
	for _, table := range append([]string{migrations.Table}, lookupTables()...) {
		require.NoError(t, conn.Exec(context.Background(), "OPTIMIZE TABLE "+db+"."+table+" FINAL"))
	}
}

func lookupTables() []string {
	var out []string
	for _, l := range migrations.Lookups {
		out = append(out, l.Table)
	}
	return out
}

// TestHistogramCountsEachEventOnce: buckets per minute, 5 minutes, hour
// and day in a zone with a half-hour offset and one whose clocks go back,
// each event once, with the view's filters, on ClickHouse 18.16: first
// with every part unmerged (those checked to hold each event once counted
// as they are, one with a copy inside de-duplicated), then with the
// partitions merged and a copy of one event sent again.
func TestHistogramCountsEachEventOnce(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	all := histogramEvents()
	stacktest.InsertEvents(t, conn, cfg.Database, all...)
	stacktest.InsertEvents(t, conn, cfg.Database, all[3], all[8]) // unmerged copies
	// One insert holding an event twice: a part with a copy inside, in a
	// week of its own.
	dup := mkEvent("ws_dup", "d", "Source Created", time.Date(2026, 11, 18, 10, 0, 0, 0, time.UTC))
	stacktest.InsertEvents(t, conn, cfg.Database, dup, dup)
	rec := &recorder{Conn: conn}
	s := store.New(rec, cfg.Database, 90, func() time.Time { return histogramNow })
	checkHistogram(t, s)
	require.True(t, rec.countedSettled(), "unmerged parts checked to hold each event once are counted as they are")
	got, err := s.Histogram(context.Background(), store.Filter{WorkspaceID: "ws_dup"}, store.Day, time.UTC)
	require.NoError(t, err)
	require.Equal(t, []store.Bucket{{Start: time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC), Count: 1}}, got, "the part with a copy inside is de-duplicated")

	settle(t, conn, cfg.Database)
	stacktest.InsertEvents(t, conn, cfg.Database, all[3]) // a copy in the week of 9 November
	rec = &recorder{Conn: conn}
	checkHistogram(t, store.New(rec, cfg.Database, 90, func() time.Time { return histogramNow }))
	require.True(t, rec.countedSettled(), "the merged week of 26 October is counted as it is")
}

// TestHistogramOnCurrentClickHouse: the same on current ClickHouse (chdb),
// merged partitions first, then merges stopped and copies sent again.
func TestHistogramOnCurrentClickHouse(t *testing.T) {
	const db = "audittrail"
	srv := store.MigratedChdb(t, db, 90)
	all := histogramEvents()
	stacktest.InsertEvents(t, srv, db, all...)
	settle(t, srv, db)
	srv.StopMerges(t, db, append([]string{migrations.Table}, lookupTables()...)...)
	stacktest.InsertEvents(t, srv, db, all[3], all[0]) // unmerged copies in the week of 9 November
	rec := &recorder{Conn: srv}
	checkHistogram(t, store.New(rec, db, 90, func() time.Time { return histogramNow }))
	require.True(t, rec.countedSettled(), "the merged week of 26 October is counted as it is")
	stacktest.InsertEvents(t, srv, db, all[8]) // and one inside the merged week's range
	rec = &recorder{Conn: srv}
	checkHistogram(t, store.New(rec, db, 90, func() time.Time { return histogramNow }))
	require.True(t, rec.countedSettled(), "the merged week's seconds before and after the copy's are counted as they are")
}
