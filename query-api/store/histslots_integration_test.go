package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/audittrail/audittrail/internal/stacktest"
	"github.com/audittrail/audittrail/schemas/event"
	"github.com/audittrail/audittrail/schemas/migrations"
)

// slotTestNow is the clock of the slot cache tests: the events lie in the
// 40 days before it, across Paris's clocks going back (25 October 2026).
var slotTestNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// slotConn is what the slot cache tests need of a server.
type slotConn interface {
	Conn
	stacktest.Batcher
	Exec(ctx context.Context, query string, args ...any) error
}

// countingConn counts the statements that count parts by slot.
type countingConn struct {
	Conn
	mu    sync.Mutex
	fills int
}

func (c *countingConn) Query(ctx context.Context, q string, args ...any) (driver.Rows, error) {
	if strings.Contains(q, "GROUP BY _part, slot") {
		c.mu.Lock()
		c.fills++
		c.mu.Unlock()
	}
	return c.Conn.Query(ctx, q, args...)
}

func (c *countingConn) fillCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fills
}

// slotWorld is the events of a slot cache test, each once (the model the
// histograms must count), and a random source.
type slotWorld struct {
	rng    *rand.Rand
	events []event.Event
	n      int
}

var slotNames = []string{"Source Created", "Source Deleted", "Warehouses Disabled"}

// add makes n events of ws at random seconds of the 40 days before
// slotTestNow (some at a slot's first or last second) and returns them.
func (w *slotWorld) add(ws string, n int) []event.Event {
	return w.addIn(ws, n, slotTestNow.AddDate(0, 0, -40), 40*24*time.Hour)
}

// addIn makes n events of ws at random instants of [from, from+width).
func (w *slotWorld) addIn(ws string, n int, from time.Time, width time.Duration) []event.Event {
	var out []event.Event
	for range n {
		at := from.Add(time.Duration(w.rng.Int64N(int64(width))))
		switch w.rng.IntN(8) {
		case 0:
			at = at.Truncate(15 * time.Minute)
		case 1:
			at = at.Truncate(15 * time.Minute).Add(15*time.Minute - time.Nanosecond)
		}
		out = append(out, w.event(ws, at))
	}
	return out
}

// event makes one event of ws at at, kept in the model when ws is "ws".
func (w *slotWorld) event(ws string, at time.Time) event.Event {
	w.n++
	e := mkSlotEvent(ws, fmt.Sprintf("e%d", w.n), slotNames[w.rng.IntN(len(slotNames))], at)
	if w.rng.IntN(3) == 0 {
		e.Actor.Type = "access_token"
	}
	if ws == "ws" {
		w.events = append(w.events, e)
	}
	return e
}

// copies returns copies of n random events of ws.
func (w *slotWorld) copies(n int) []event.Event {
	out := make([]event.Event, n)
	for i := range out {
		out[i] = w.events[w.rng.IntN(len(w.events))]
	}
	return out
}

// copiesIn returns copies of up to n random events of ws in [from,
// from+width).
func (w *slotWorld) copiesIn(n int, from time.Time, width time.Duration) []event.Event {
	var in, out []event.Event
	for _, e := range w.events {
		if !e.Timestamp.Before(from) && e.Timestamp.Before(from.Add(width)) {
			in = append(in, e)
		}
	}
	for range min(n, len(in)) {
		out = append(out, in[w.rng.IntN(len(in))])
	}
	return out
}

func mkSlotEvent(ws, id, name string, ts time.Time) event.Event {
	return event.Event{ID: id, WorkspaceID: ws, Event: name, Category: "Sources", Timestamp: ts, ReceivedAt: ts,
		Actor: event.Actor{Type: "user", ID: "usr_" + id, Name: "Alice"}, Resource: event.Resource{Type: "source", ID: "src_1"}}
}

// want is the histogram of the model: each event of ws matching f once,
// in the bucket of the zone's clock the histogram documents.
func (w *slotWorld) want(f Filter, iv Interval, zone *time.Location) []Bucket {
	byStart := map[time.Time]uint64{}
	for _, e := range w.events {
		if (len(f.Events) > 0 && !slices.Contains(f.Events, e.Event)) || (f.ActorType != "" && e.Actor.Type != f.ActorType) ||
			(!f.Since.IsZero() && e.Timestamp.Before(f.Since)) || (!f.Until.IsZero() && !e.Timestamp.Before(f.Until)) {
			continue
		}
		local := e.Timestamp.In(zone)
		var start time.Time
		if iv == Day {
			y, m, d := local.Date()
			start = time.Date(y, m, d, 0, 0, 0, 0, zone)
		} else {
			_, off := local.Zone()
			w := int64(iv.Duration() / time.Second)
			sec := e.Timestamp.Unix()
			start = time.Unix((sec+int64(off))/w*w-int64(off), 0)
		}
		byStart[start.UTC()]++
	}
	out := []Bucket{}
	for s, n := range byStart {
		out = append(out, Bucket{Start: s, Count: n})
	}
	slices.SortFunc(out, func(a, b Bucket) int { return a.Start.Compare(b.Start) })
	return out
}

// slotCase is one histogram the tests ask for.
type slotCase struct {
	f    Filter
	iv   Interval
	zone *time.Location
}

func slotCases(t *testing.T, wide bool) []slotCase {
	filters := []Filter{
		{WorkspaceID: "ws"},
		{WorkspaceID: "ws", Events: []string{"Source Deleted"}}, // the lookup table
		{WorkspaceID: "ws", ActorType: "access_token"},
		{WorkspaceID: "ws", Since: slotTestNow.AddDate(0, 0, -7)},
		{WorkspaceID: "ws", Since: slotTestNow.AddDate(0, 0, -30).Add(-17 * time.Second), Until: slotTestNow.AddDate(0, 0, -3).Add(7 * time.Minute)},
	}
	ivs := []Interval{Hour, Day}
	if wide {
		ivs = append(ivs, Minute, FiveMinutes)
	}
	var out []slotCase
	for _, name := range []string{"UTC", "Europe/Paris", "Asia/Kathmandu"} {
		z, err := time.LoadLocation(name)
		require.NoError(t, err)
		for _, iv := range ivs {
			for _, f := range filters {
				out = append(out, slotCase{f: f, iv: iv, zone: z})
			}
		}
	}
	return out
}

// checkSlots asks cached for every case and requires the model's counts,
// the same as an uncached store's and, for the first cases, the rows'
// uniqExact count.
func checkSlots(t *testing.T, phase string, conn Conn, db string, w *slotWorld, cached *Store, cases []slotCase) {
	ctx := context.Background()
	uncached := New(conn, db, 90, cached.now).WithSlotCache(0, 0, nil)
	for _, c := range cases {
		name := fmt.Sprintf("%s: %s %s %+v", phase, c.zone, c.iv, c.f)
		got, err := cached.Histogram(ctx, c.f, c.iv, c.zone)
		require.NoError(t, err, name)
		require.Equal(t, w.want(c.f, c.iv, c.zone), got, name)
		plain, err := uncached.Histogram(ctx, c.f, c.iv, c.zone)
		require.NoError(t, err, name)
		require.Equal(t, plain, got, "%s: as counted from rows", name)
	}
	// The brute force: every row of the workspace de-duplicated.
	var n uint64
	require.NoError(t, conn.(interface {
		QueryRow(context.Context, string, ...any) driver.Row
	}).QueryRow(ctx, "SELECT uniqExact(timestamp_ns, id) FROM "+db+"."+migrations.Table+" WHERE workspace_id = 'ws'").Scan(&n))
	require.EqualValues(t, len(w.events), n, phase)
}

// runSlotCache is the differential test of the slot cache on one server:
// random events and copies across parts, merged and unmerged, asked
// through a cached store cold and warm, after the parts changed, and while
// merges run.
func runSlotCache(t *testing.T, conn slotConn, db string) {
	ctx := context.Background()
	for _, table := range slotTables() {
		require.NoError(t, conn.Exec(ctx, "SYSTEM STOP MERGES "+db+"."+table))
	}
	w := &slotWorld{rng: rand.New(rand.NewPCG(7, 19))}
	for range 4 {
		stacktest.InsertEvents(t, conn, db, w.add("ws", 300)...)
		stacktest.InsertEvents(t, conn, db, w.add("ws_other", 50)...)
	}
	optimize(t, conn, db) // a merged part per week: its slots are cached
	// Copies and new events in unmerged parts over a day or two: their
	// slots are counted from rows.
	day := slotTestNow.AddDate(0, 0, -12)
	dayCopies := w.copiesIn(20, day, 24*time.Hour)
	stacktest.InsertEvents(t, conn, db, dayCopies...)
	stacktest.InsertEvents(t, conn, db, w.addIn("ws", 40, slotTestNow.AddDate(0, 0, -2), 48*time.Hour)...)
	// Two parts sharing a second, their last and first, alone in their week
	// (the random events lie in the 40 days before now): the second holds
	// an event of each and a copy in both; its slot is summed from the
	// parts' counts and their keys at that second.
	edge := slotTestNow.AddDate(0, 0, -50).Truncate(time.Hour).Add(7*time.Minute + 3*time.Second)
	a := append(w.addIn("ws", 30, edge.Add(-6*time.Hour), 6*time.Hour), w.event("ws", edge.Add(time.Millisecond)))
	shared := w.event("ws", edge.Add(2*time.Millisecond))
	stacktest.InsertEvents(t, conn, db, append(a, shared)...)
	stacktest.InsertEvents(t, conn, db, append(w.addIn("ws", 30, edge.Add(time.Second), 6*time.Hour), shared, w.event("ws", edge.Add(3*time.Millisecond)))...)

	cc := &countingConn{Conn: conn}
	cached := New(cc, db, 90, func() time.Time { return slotTestNow })
	cached.slots.minRows = 0
	cases := slotCases(t, true)
	checkSlots(t, "cold", conn, db, w, cached, cases)
	require.Positive(t, cc.fillCount(), "the parts' slots were counted")
	require.Positive(t, cached.slots.order.Len(), "and cached")
	fills := cc.fillCount()
	checkSlots(t, "warm", conn, db, w, cached, cases)
	require.Equal(t, fills, cc.fillCount(), "warm: every count taken from the cache")
	parts, err := cached.activeParts(ctx, db+"."+migrations.Table)
	require.NoError(t, err)
	plan := planSlots(parts, 0, span{lo: 0, hi: slotTestNow.UnixNano()}, bucketing{off: offsets{offs: []int{0}}, width: 3600})
	require.Contains(t, plan.slots, edge.Unix()/slotSeconds, "the shared second's slot is summed from the parts")
	for _, c := range dayCopies {
		require.NotContains(t, plan.slots, c.Timestamp.Unix()/slotSeconds, "a copy's slot is counted from rows")
	}

	// The parts change: events and copies inside the merged weeks, then
	// merged into new parts.
	stacktest.InsertEvents(t, conn, db, append(w.add("ws", 200), w.copies(30)...)...)
	stacktest.InsertEvents(t, conn, db, w.addIn("ws", 20, day, 3*time.Hour)...)
	checkSlots(t, "new parts beside the cached ones", conn, db, w, cached, slotCases(t, false))
	optimize(t, conn, db)
	stacktest.InsertEvents(t, conn, db, w.copies(10)...)
	checkSlots(t, "after a merge", conn, db, w, cached, slotCases(t, false))

	// Merges while the histograms are counted.
	stacktest.InsertEvents(t, conn, db, append(w.add("ws", 100), w.copies(10)...)...)
	done := make(chan error)
	go func() { done <- merge(conn, db) }()
	checkSlots(t, "during merges", conn, db, w, cached, slotCases(t, false))
	require.NoError(t, <-done)
	checkSlots(t, "after them", conn, db, w, cached, slotCases(t, false))
}

// TestHistogramSlotCacheIsExact: the slot cache's histograms equal the
// model's, the rows' count and an uncached store's on ClickHouse 18.16.
func TestHistogramSlotCacheIsExact(t *testing.T) {
	conn, cfg := stacktest.ClickHouse(t, 90)
	runSlotCache(t, conn, cfg.Database)
}

// TestHistogramSlotCacheOnCurrentClickHouse: the same on current
// ClickHouse (chdb).
func TestHistogramSlotCacheOnCurrentClickHouse(t *testing.T) {
	runSlotCache(t, MigratedChdb(t, "audittrail", 90), "audittrail")
}

// slotTables are the events table and the lookup tables.
func slotTables() []string {
	out := []string{migrations.Table}
	for _, l := range migrations.Lookups {
		out = append(out, l.Table)
	}
	return out
}

// optimize merges every partition of slotTables into one part.
func optimize(t *testing.T, conn slotConn, db string) {
	require.NoError(t, merge(conn, db))
}

// merge merges every partition of slotTables into one part; merges are
// stopped otherwise, so that the tests choose when parts change.
func merge(conn slotConn, db string) error {
	ctx := context.Background()
	for _, table := range slotTables() {
		t := db + "." + table
		for _, sql := range []string{"SYSTEM START MERGES " + t, "OPTIMIZE TABLE " + t + " FINAL", "SYSTEM STOP MERGES " + t} {
			if err := conn.Exec(ctx, sql); err != nil {
				return fmt.Errorf("%s: %w", sql, err)
			}
		}
	}
	return nil
}
